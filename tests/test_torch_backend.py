"""The PyTorch backend: users' losses and the catalogue as custom operators, against autograd
of the naive losses, gradcheck, an mpmath reference at logits far from 0, torch.compile,
F.cross_entropy's conventions, half precision, and a short training loop."""
import functools
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

import derive  # noqa: E402
import test_stability as stable  # noqa: E402
from backend_losses import FOCAL, IDS, LOSSES, data, labels_only, values  # noqa: E402
from derive.codegen import module as checking  # noqa: E402

stable.BY_ID.setdefault("focal-0", ("focal-0", LOSSES["focal-0"][0], {"gamma": 0.0},
                                    "probability"))

F = SimpleNamespace(softmax=lambda z: torch.softmax(z, -1), log=torch.log, exp=torch.exp,
                    sum=lambda x: x.sum(-1), sigmoid=torch.sigmoid,
                    take=lambda x, c: x.gather(-1, c[:, None])[:, 0])


@functools.cache
def built(name):
    text, _, assume, _ = LOSSES[name]
    return derive.torch_module(text, assume=assume, name=name.replace("-", "_").replace(".", ""))


@functools.cache
def catalogue():
    return derive.torch_module()


def tensor(a):
    return torch.tensor(a, dtype=torch.float64)


def targets(name, c, one_hot, probs):
    """(kind, target tensor, its one-hot or probability rows) the loss takes."""
    out = [("labels", torch.tensor(c), tensor(one_hot))]
    if not labels_only(name):
        out.append(("probabilities", tensor(probs), tensor(probs)))
    return out


def naive(name, z, rows, c, value=None):
    value = values(name, tensor) if value is None else value
    return LOSSES[name][3](F, z, rows, torch.as_tensor(c), value)


@pytest.mark.parametrize("name", IDS)
def test_gradcheck(name):
    z, c, one_hot, probs = data(rows=3)
    m = built(name)
    for kind, target, _ in targets(name, c, one_hot, probs):
        x = tensor(z).requires_grad_()
        assert torch.autograd.gradcheck(
            lambda x: m.loss(x, target, reduction="sum", **values(name, tensor)), (x,))


@pytest.mark.parametrize("name", IDS)
def test_agrees_with_autograd_of_the_naive_loss(name):
    z, c, one_hot, probs = data()
    m = built(name)
    for kind, target, rows in targets(name, c, one_hot, probs):
        x = tensor(z).requires_grad_()
        loss = m.loss(x, target, reduction="none", **values(name, tensor))
        (grad,) = torch.autograd.grad(loss.sum(), x)
        x2 = tensor(z).requires_grad_()
        expected = naive(name, x2, rows, c)
        (expected_grad,) = torch.autograd.grad(expected.sum(), x2)
        torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", IDS)
def test_finite_and_exact_at_large_logits(name):
    """N(0, 1)·1000 in float64, against mpmath; the naive loss is NaN or inf somewhere here."""
    z = stable.logits("float64")
    rows, classes = z.shape
    c = np.argmax(z, axis=-1)
    c[::2] = np.argmin(z, axis=-1)[::2]
    value = {key: tensor(v) if isinstance(v, np.ndarray) else v
             for key, v in stable.values_for(name).items()}
    m = built(name)
    loss, grad = m.loss_with_grad(tensor(z), torch.tensor(c), reduction="none", **value)
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    for n in range(rows):
        exact_loss, exact_grad = stable.exact_row(name, z[n], int(c[n]))
        exact_grad = np.array([float(g) for g in exact_grad])
        assert abs(loss[n].item() - float(exact_loss)) <= 1e-8 * max(1.0, abs(float(exact_loss)))
        scale = max(np.abs(exact_grad).max(), np.finfo(np.float64).tiny)
        assert np.abs(grad[n].numpy() - exact_grad).max() <= 1e-8 * scale
    x = tensor(z).requires_grad_()
    bad = naive(name, x, torch.eye(classes, dtype=torch.float64)[c], c, value)
    bad.sum().backward()
    if name in FOCAL + ["focal-label", "generalised-ce", "weighted-focal-label"]:
        assert not (torch.isfinite(bad).all() and torch.isfinite(x.grad).all())


@pytest.mark.parametrize("name", ["focal-0.5", "focal-label", "class-balanced", "tempered"])
def test_compile_fullgraph(name):
    z, c, one_hot, probs = data()
    m = built(name)
    value = values(name, tensor)

    def step(x, target):
        return m.loss(x, target, **value)
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    for kind, target, _ in targets(name, c, one_hot, probs):
        x, x2 = tensor(z).requires_grad_(), tensor(z).requires_grad_()
        got, expected = compiled(x, target), step(x2, target)
        got.backward()
        expected.backward()
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(x.grad, x2.grad, rtol=1e-12, atol=1e-14)


def test_compile_with_inductor_and_a_module():
    torch._dynamo.reset()
    z, c, *_ = data()
    loss_fn = built("focal-2").Loss(gamma=2.0)
    x = tensor(z).requires_grad_()
    labels = torch.tensor(c)
    compiled = torch.compile(lambda x: loss_fn(x, labels), fullgraph=True)
    compiled(x).backward()
    x2 = tensor(z).requires_grad_()
    loss_fn(x2, torch.tensor(c)).backward()
    torch.testing.assert_close(x.grad, x2.grad)


@pytest.mark.parametrize("name", [n for n in IDS if not labels_only(n) and n != "sigmoid-bce"])
def test_labels_against_one_hot_probabilities(name):
    z, c, one_hot, _ = data()
    m = built(name)
    by_labels = m.loss_with_grad(tensor(z), torch.tensor(c), reduction="none",
                                 **values(name, tensor))
    by_rows = m.loss_with_grad(tensor(z), tensor(one_hot), reduction="none",
                               **values(name, tensor))
    torch.testing.assert_close(by_labels, by_rows, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["focal-2", "focal-label", "z-loss"])
def test_half_precision_against_float32(name, dtype):
    z, c, *_ = data()
    m = built(name)
    x = torch.tensor(z, dtype=dtype)
    loss, grad = m.loss_with_grad(x, torch.tensor(c), **values(name, tensor))
    assert loss.dtype == grad.dtype == dtype
    loss32, grad32 = m.loss_with_grad(x.float(), torch.tensor(c), **values(name, tensor))
    tolerance = 1e-2 if dtype == torch.bfloat16 else 2e-3
    torch.testing.assert_close(loss.float(), loss32, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(grad.float(), grad32, rtol=tolerance, atol=tolerance * 1e-1)


def test_cross_entropy_has_the_conventions_of_F_cross_entropy():
    m = catalogue()
    rng = np.random.default_rng(5)
    for shape in [(5,), (4, 5), (3, 5, 2, 2)]:
        z = tensor(rng.normal(size=shape) * 3)
        rows = shape[:1] + shape[2:] if len(shape) > 1 else ()
        labels = torch.tensor(rng.integers(0, 5, rows))
        probs = torch.softmax(tensor(rng.normal(size=shape)), 1 if len(shape) > 1 else 0)
        for target in (labels, probs):
            for reduction in ("none", "mean", "sum"):
                x, x2 = z.clone().requires_grad_(), z.clone().requires_grad_()
                got = m.cross_entropy(x, target, reduction=reduction)
                expected = TF.cross_entropy(x2, target, reduction=reduction)
                torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)
                got.sum().backward()
                expected.sum().backward()
                torch.testing.assert_close(x.grad, x2.grad, rtol=1e-12, atol=1e-14)
    x = tensor(rng.normal(size=(4, 5))).requires_grad_()
    loss = m.CrossEntropyLoss()(x, torch.tensor([0, 1, 2, 3]))
    torch.testing.assert_close(loss, TF.cross_entropy(x, torch.tensor([0, 1, 2, 3])))


def test_weighted_mean_divides_by_the_total_weight_as_pytorch():
    m = catalogue()
    z, c, *_ = data()
    weight = tensor([0.5, 1.0, 2.0, 1.5, 0.25])
    x, x2 = tensor(z).requires_grad_(), tensor(z).requires_grad_()
    got = m.weighted_cross_entropy(x, torch.tensor(c), weight)
    expected = TF.cross_entropy(x2, torch.tensor(c), weight=weight)
    torch.testing.assert_close(got, expected)
    got.backward()
    expected.backward()
    torch.testing.assert_close(x.grad, x2.grad)


def test_the_catalogue_agrees_with_pytorch():
    m = catalogue()
    z, c, one_hot, probs = data()
    x = tensor(z)
    torch.testing.assert_close(m.softmax(x), torch.softmax(x, -1))
    torch.testing.assert_close(m.log_softmax(x, dim=0), torch.log_softmax(x, 0))
    torch.testing.assert_close(m.tempered_cross_entropy(x, torch.tensor(c), 2.0),
                               TF.cross_entropy(x / 2, torch.tensor(c)))
    torch.testing.assert_close(m.smoothed_cross_entropy(x, torch.tensor(c), 0.1),
                               TF.cross_entropy(x, torch.tensor(c), label_smoothing=0.1))
    multi = tensor(np.random.default_rng(1).uniform(size=z.shape))
    torch.testing.assert_close(m.sigmoid_binary_cross_entropy(x, multi) / z.shape[1],
                               TF.binary_cross_entropy_with_logits(x, multi))


def test_the_gradient_kept_for_backward_survives_a_graph_used_three_times():
    """A backward from the 1 of loss.backward() hands autograd the saved gradient itself:
    where the graph is kept, each pass must still add the same gradient."""
    m = catalogue()
    z, c, *_ = data()
    x = tensor(z).requires_grad_()
    loss = m.cross_entropy(x, torch.tensor(c))
    once = torch.autograd.grad(loss, x, retain_graph=True)[0].clone()
    for _ in range(3):
        loss.backward(retain_graph=True)
    torch.testing.assert_close(x.grad, 3 * once)
    x.grad = None
    (2.5 * loss).backward()  # an incoming gradient that is not 1
    torch.testing.assert_close(x.grad, 2.5 * once)
    reference = tensor(z).requires_grad_()
    TF.cross_entropy(reference, torch.tensor(c)).backward()
    torch.testing.assert_close(once, reference.grad)


def test_a_gradient_that_is_the_target_is_a_copy_of_it():
    """∂/∂z_k Σ_i y_i z_i = y_k: the operator may not return its input, nor change it."""
    m = derive.torch_module("sum(y[i]*z[i], i)", assume="any", name="linear_in_z")
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.rand(4, 3, dtype=torch.float64)
    kept = y.clone()
    m.loss(x, y).backward()
    assert torch.equal(y, kept)
    torch.testing.assert_close(x.grad, kept / 4)


def test_double_backward_says_it_is_not_supported():
    z, c, *_ = data()
    x = tensor(z).requires_grad_()
    loss = built("focal-2").loss(x, torch.tensor(c), gamma=2.0)
    (grad,) = torch.autograd.grad(loss, x, create_graph=True)
    with pytest.raises(RuntimeError, match="no second derivative"):
        grad.pow(2).sum().backward()


def test_bad_arguments_are_refused_with_one_line():
    m = built("focal-2")
    z, c, *_ = data()
    cases = [
        (lambda: m.loss(tensor(z), torch.tensor(c), gamma=-1.0), "gamma must be"),
        (lambda: m.loss(tensor(z), torch.tensor(c)), "missing value for gamma"),
        (lambda: m.loss(tensor(z), torch.tensor(c), gamma=2.0, beta=1.0), "unknown value"),
        (lambda: m.loss(tensor(z), torch.tensor(c) + 5, gamma=2.0), "must lie in 0..4"),
        (lambda: m.loss(tensor(z), torch.tensor(c)[:2], gamma=2.0), "fits neither"),
        (lambda: m.loss(tensor(z), torch.tensor(c), reduction="avg", gamma=2.0), "reduction"),
        (lambda: m.loss(torch.tensor(c), torch.tensor(c), gamma=2.0), "floating-point"),
        (lambda: built("focal-label").loss(tensor(z), tensor(z), gamma=2.0), "label c"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


def test_a_module_that_disagrees_with_its_derivation_is_refused():
    """The verification that runs every module before it is delivered rejects a wrong one."""
    m = built("focal-2")
    spec = derive.codegen.own.spec(derive.gradient(LOSSES["focal-2"][0]), "focal_2")

    class Wrong:
        def loss_with_grad(self, input, target, reduction="mean", **kw):
            loss, grad = m.loss_with_grad(input, target, reduction, **kw)
            return loss, grad * 1.001
    with pytest.raises(derive.CheckError):
        checking.verify_own(checking.Proxy(Wrong(), "torch"), spec)


def _train(loss_fn, steps=60):
    torch.manual_seed(0)
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(4, 3)) * 2
    labels = rng.integers(0, 4, 200)
    inputs = torch.tensor(centres[labels] + rng.normal(size=(200, 3)), dtype=torch.float32)
    labels = torch.tensor(labels)
    layer = torch.nn.Linear(3, 4)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    history = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(layer(inputs), labels)
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    return history


def test_training_with_the_generated_focal_loss():
    generated = _train(built("focal-2").Loss(gamma=2.0))
    by_hand = _train(lambda z, c: naive("focal-2", z, torch.eye(4)[c], c).mean())
    assert generated[-1] < 0.5 * generated[0]
    np.testing.assert_allclose(generated, by_hand, rtol=1e-4)
