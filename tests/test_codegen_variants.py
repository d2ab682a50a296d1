"""Generated code for the variants: Hessian aside, temperature, class weights, label smoothing.

Each is checked against central differences of its own loss and against an independent
reference built on SciPy (and on PyTorch, where it is installed).
"""
import numpy as np
import pytest

from numerics import central_difference

scipy_special = pytest.importorskip("scipy.special")


RNG = np.random.default_rng(11)
LOGITS = RNG.normal(scale=3, size=(5, 4))
LABELS = np.array([0, 3, 1, 1, 2])
PROBS = RNG.dirichlet(np.ones(4), size=5)
WEIGHT = np.array([0.5, 2.0, 1.0, 0.25])


def variants(m):
    return {
        "temperature": lambda z, t, r="none": m.tempered_cross_entropy_with_grad(z, t, 2.5, r),
        "class-weights": lambda z, t, r="none": m.weighted_cross_entropy_with_grad(z, t, WEIGHT, r),
        "label-smoothing": lambda z, t, r="none": m.smoothed_cross_entropy_with_grad(z, t, 0.1, r),
        "sigmoid-bce": lambda z, t, r="none": m.sigmoid_binary_cross_entropy_with_grad(z, t, r),
    }


@pytest.mark.parametrize("name", ["temperature", "class-weights", "label-smoothing", "sigmoid-bce"])
@pytest.mark.parametrize("kind", ["labels", "probabilities"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_gradient_matches_central_differences(m, name, kind, reduction):
    if (name, kind) in (("label-smoothing", "probabilities"), ("sigmoid-bce", "labels")):
        pytest.skip("label smoothing takes labels; binary cross-entropy one target a class")
    fn = variants(m)[name]
    target = LABELS if kind == "labels" else PROBS
    numeric = central_difference(lambda x: np.sum(fn(x, target, reduction)[0]), LOGITS)
    assert fn(LOGITS, target, reduction)[1] == pytest.approx(numeric, abs=1e-6)


def test_temperature_against_scipy(m):
    T = 2.5
    log_p = scipy_special.log_softmax(LOGITS / T, axis=-1)
    loss, grad = m.tempered_cross_entropy_with_grad(LOGITS, PROBS, T)
    assert loss == pytest.approx(-(PROBS * log_p).sum(axis=-1), rel=1e-12)
    assert grad == pytest.approx((np.exp(log_p) - PROBS) / T, abs=1e-14)
    loss1, _ = m.tempered_cross_entropy_with_grad(LOGITS, LABELS, 1.0)
    assert loss1 == pytest.approx(m.cross_entropy(LOGITS, LABELS), rel=1e-12)


def test_class_weights_against_scipy(m):
    log_q = scipy_special.log_softmax(LOGITS, axis=-1)
    per_row = -WEIGHT[LABELS] * log_q[np.arange(5), LABELS]
    loss, grad = m.weighted_cross_entropy_with_grad(LOGITS, LABELS, WEIGHT, "mean")
    assert loss == pytest.approx(per_row.sum() / WEIGHT[LABELS].sum(), rel=1e-12)
    one_hot = np.eye(4)[LABELS]
    expected = (np.exp(log_q) * WEIGHT[LABELS][:, None] - WEIGHT * one_hot) / WEIGHT[LABELS].sum()
    assert grad == pytest.approx(expected, abs=1e-14)
    loss_p, _ = m.weighted_cross_entropy_with_grad(LOGITS, PROBS, WEIGHT, "mean")
    assert loss_p == pytest.approx(-(WEIGHT * PROBS * log_q).sum(axis=-1).mean(), rel=1e-12)
    equal, _ = m.weighted_cross_entropy_with_grad(LOGITS, LABELS, np.ones(4))
    assert equal == pytest.approx(m.cross_entropy(LOGITS, LABELS), rel=1e-12)


def test_label_smoothing_against_scipy(m):
    eps = 0.1
    smoothed = (1 - eps) * np.eye(4)[LABELS] + eps / 4
    log_q = scipy_special.log_softmax(LOGITS, axis=-1)
    loss, grad = m.smoothed_cross_entropy_with_grad(LOGITS, LABELS, eps)
    assert loss == pytest.approx(-(smoothed * log_q).sum(axis=-1), rel=1e-12)
    assert grad == pytest.approx(np.exp(log_q) - smoothed, abs=1e-14)
    assert grad.sum(axis=-1) == pytest.approx(0, abs=1e-12)  # the smoothed target sums to 1
    plain, _ = m.smoothed_cross_entropy_with_grad(LOGITS, LABELS, 0.0)
    assert plain == pytest.approx(m.cross_entropy(LOGITS, LABELS), rel=1e-12)


def test_sigmoid_bce_against_scipy(m):
    y = RNG.uniform(size=LOGITS.shape)
    log_s, log_not_s = scipy_special.log_expit(LOGITS), scipy_special.log_expit(-LOGITS)
    loss, grad = m.sigmoid_binary_cross_entropy_with_grad(LOGITS, y)
    assert loss == pytest.approx(-(y * log_s + (1 - y) * log_not_s).sum(axis=-1), rel=1e-12)
    assert grad == pytest.approx(scipy_special.expit(LOGITS) - y, abs=1e-15)
    big = np.array([[1e300, -1e300, 0.0]])
    loss, grad = m.sigmoid_binary_cross_entropy_with_grad(big, np.array([[1.0, 0.0, 1.0]]))
    assert loss == pytest.approx([np.log(2)]) and grad == pytest.approx(np.array([[0, 0, -0.5]]))
    loss, grad = m.sigmoid_binary_cross_entropy_with_grad(big, np.array([[0.0, 1.0, 1.0]]))
    assert loss[0] == pytest.approx(2e300) and np.isfinite(grad).all()


def test_against_pytorch_where_installed(m):
    torch = pytest.importorskip("torch")
    z = torch.tensor(LOGITS, requires_grad=True)
    labels = torch.tensor(LABELS)
    for kwargs, ours in (({"weight": torch.tensor(WEIGHT)},
                          m.weighted_cross_entropy_with_grad(LOGITS, LABELS, WEIGHT, "mean")),
                         ({"label_smoothing": 0.1},
                          m.smoothed_cross_entropy_with_grad(LOGITS, LABELS, 0.1, "mean"))):
        z.grad = None
        loss = torch.nn.functional.cross_entropy(z, labels, **kwargs)
        loss.backward()
        assert float(ours[0]) == pytest.approx(loss.item(), rel=1e-12)
        assert ours[1] == pytest.approx(z.grad.numpy(), abs=1e-14)
    y = torch.tensor(PROBS)
    z.grad = None
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="sum")
    loss.backward()
    ours = m.sigmoid_binary_cross_entropy_with_grad(LOGITS, PROBS, "sum")
    assert float(ours[0]) == pytest.approx(loss.item(), rel=1e-12)
    assert ours[1] == pytest.approx(z.grad.numpy(), abs=1e-14)


@pytest.mark.parametrize("name", ["temperature", "class-weights", "label-smoothing"])
def test_conventions_large_masked_and_float32(m, name):
    fn = variants(m)[name]
    logits = np.array([[1e30, -1e30, 0.0, -np.inf]] * 2, dtype=np.float32)
    loss, grad = fn(logits, np.array([0, 2]))
    assert loss.dtype == np.float32 and grad.dtype == np.float32
    assert np.all(np.isfinite(grad))
    if name == "label-smoothing":  # the smoothed target puts ε/K on the masked class
        assert loss.tolist() == [np.inf, np.inf]
        loss, _ = fn(logits[:, :3], np.array([0, 2]))
    else:
        assert grad[:, 3].tolist() == [0.0, 0.0]
    assert np.all(np.isfinite(loss))


BAD = [
    (lambda m: m.tempered_cross_entropy_with_grad(LOGITS, LABELS, 0.0), r"temperature must lie in \(0"),
    (lambda m: m.tempered_cross_entropy_with_grad(LOGITS, LABELS, -1), "temperature must lie in"),
    (lambda m: m.tempered_cross_entropy_with_grad(LOGITS, LABELS, np.inf), "temperature must lie in"),
    (lambda m: m.tempered_cross_entropy_with_grad(LOGITS, LABELS, "hot"), "temperature must be a real number"),
    (lambda m: m.weighted_cross_entropy_with_grad(LOGITS, LABELS, np.ones(3)), "weight must have one entry"),
    (lambda m: m.weighted_cross_entropy_with_grad(LOGITS, LABELS, -np.ones(4)), "finite and not negative"),
    (lambda m: m.weighted_cross_entropy_with_grad(LOGITS, LABELS, WEIGHT, "avg"), "reduction must be"),
    (lambda m: m.smoothed_cross_entropy_with_grad(LOGITS, LABELS, 1.5), r"epsilon must lie in \[0, 1\]"),
    (lambda m: m.smoothed_cross_entropy_with_grad(LOGITS, PROBS, 0.1), "label smoothing takes integer"),
    (lambda m: m.smoothed_cross_entropy_with_grad(LOGITS, np.array([0, 1, 2, 3, 4]), 0.1),
     "must lie in 0..3"),
    (lambda m: m.sigmoid_binary_cross_entropy_with_grad(LOGITS, LABELS), "one target in"),
    (lambda m: m.sigmoid_binary_cross_entropy_with_grad(LOGITS, 2 * PROBS + 1), "one target in"),
    (lambda m: m.sigmoid_binary_cross_entropy_with_grad(LOGITS, -PROBS), "must not be negative"),
]


@pytest.mark.parametrize("call, message", BAD, ids=[b[1] for b in BAD])
def test_bad_input(m, call, message):
    with pytest.raises(ValueError, match=message):
        call(m)


# ---- the linear layer ------------------------------------------------------------------------

X = RNG.normal(size=(5, 3))
WEIGHTS = RNG.normal(size=(4, 3))
BIAS = RNG.normal(size=4)


@pytest.mark.parametrize("target", [LABELS, PROBS], ids=["labels", "probabilities"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_linear_layer_matches_central_differences(m, target, reduction):
    loss_of = lambda W, b: m.linear_cross_entropy_with_grad(X, W, b, target, reduction)[0]  # noqa: E731
    _, grad_w, grad_b = m.linear_cross_entropy_with_grad(X, WEIGHTS, BIAS, target, reduction)
    assert grad_w.shape == (4, 3) and grad_b.shape == (4,)
    assert grad_w == pytest.approx(central_difference(lambda W: loss_of(W, BIAS), WEIGHTS), abs=1e-6)
    assert grad_b == pytest.approx(central_difference(lambda b: loss_of(WEIGHTS, b), BIAS), abs=1e-6)


def test_linear_layer_against_an_independent_reference(m):
    probs = scipy_special.softmax(X @ WEIGHTS.T + BIAS, axis=-1)
    delta = (probs - np.eye(4)[LABELS]) / 5
    loss, grad_w, grad_b = m.linear_cross_entropy_with_grad(X, WEIGHTS, BIAS, LABELS)
    assert loss == pytest.approx(-np.log(probs[np.arange(5), LABELS]).mean(), rel=1e-12)
    assert grad_w == pytest.approx(delta.T @ X, abs=1e-14)
    assert grad_b == pytest.approx(delta.sum(axis=0), abs=1e-14)
    torch = pytest.importorskip("torch")
    layer = torch.nn.Linear(3, 4).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(WEIGHTS))
        layer.bias.copy_(torch.tensor(BIAS))
    torch.nn.functional.cross_entropy(layer(torch.tensor(X)), torch.tensor(LABELS)).backward()
    assert grad_w == pytest.approx(layer.weight.grad.numpy(), abs=1e-14)
    assert grad_b == pytest.approx(layer.bias.grad.numpy(), abs=1e-14)


def test_linear_layer_takes_any_leading_shape(m):
    stacked = np.stack([X, X[::-1]])
    labels = np.stack([LABELS, LABELS[::-1]])
    flat = m.linear_cross_entropy_with_grad(stacked.reshape(10, 3), WEIGHTS, BIAS, labels.ravel())
    for ours, expected in zip(m.linear_cross_entropy_with_grad(stacked, WEIGHTS, BIAS, labels), flat):
        assert ours == pytest.approx(expected, rel=1e-12)


def test_linear_layer_float32_and_bad_input(m):
    out = m.linear_cross_entropy_with_grad(X.astype(np.float32), WEIGHTS.astype(np.float32),
                                           BIAS.astype(np.float32), LABELS)
    assert [a.dtype for a in out] == [np.float32] * 3
    with pytest.raises(ValueError, match="shapes do not fit a linear layer"):
        m.linear_cross_entropy_with_grad(X, WEIGHTS.T, BIAS, LABELS)
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum'"):
        m.linear_cross_entropy_with_grad(X, WEIGHTS, BIAS, LABELS, "none")
    with pytest.raises(ValueError, match="weight must be real numbers"):
        m.linear_cross_entropy_with_grad(X, np.full((4, 3), "a"), BIAS, LABELS)
