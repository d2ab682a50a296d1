"""The JAX backend: users' losses and the catalogue as custom JVPs, against jax.grad of the
naive losses, an mpmath reference at logits far from 0, jit, vmap, jvp, the derivation's
Hessian, labels against one-hot rows, half precision, and a short training loop."""
import functools
from types import SimpleNamespace

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import derive  # noqa: E402
import test_stability as stable  # noqa: E402
from backend_losses import FOCAL, IDS, LOSSES, data, labels_only, values  # noqa: E402

stable.BY_ID.setdefault("focal-0", ("focal-0", LOSSES["focal-0"][0], {"gamma": 0.0},
                                    "probability"))

F = SimpleNamespace(softmax=lambda z: jax.nn.softmax(z, -1), log=jnp.log, exp=jnp.exp,
                    sum=lambda x: x.sum(-1), sigmoid=jax.nn.sigmoid,
                    take=lambda x, c: jnp.take_along_axis(x, c[..., None], -1)[..., 0])


@pytest.fixture(autouse=True, scope="module")
def x64():
    with jax.enable_x64(True):
        yield


@functools.cache
def built(name):
    text, _, assume, _ = LOSSES[name]
    return derive.jax_module(text, assume=assume, name=name.replace("-", "_").replace(".", ""))


@functools.cache
def catalogue():
    return derive.jax_module()


def targets(name, c, one_hot, probs):
    out = [("labels", c, one_hot)]
    if not labels_only(name):
        out.append(("probabilities", probs, probs))
    return out


def naive(name, z, rows, c, value=None):
    value = values(name, jnp.asarray) if value is None else value
    return LOSSES[name][3](F, z, rows, jnp.asarray(c), value)


@pytest.mark.parametrize("name", IDS)
def test_grad_jit_and_vmap_agree_with_the_naive_loss(name):
    z, c, one_hot, probs = data()
    m = built(name)
    value = values(name, jnp.asarray)
    for kind, target, rows in targets(name, c, one_hot, probs):
        def total(z):
            return m.loss(z, target, **value).sum()
        expected = naive(name, z, rows, c)
        expected_grad = jax.grad(lambda z: naive(name, z, rows, c).sum())(z)
        np.testing.assert_allclose(m.loss(z, target, **value), expected, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(jax.grad(total)(z), expected_grad, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(jax.jit(jax.grad(total))(z), expected_grad, rtol=1e-10,
                                   atol=1e-12)
        one = jax.vmap(lambda z, t: m.loss(z, t, **value))(z, target)
        np.testing.assert_allclose(one, expected, rtol=1e-10, atol=1e-12)
        tangent = np.random.default_rng(2).normal(size=z.shape)
        _, directional = jax.jvp(total, (jnp.asarray(z),), (jnp.asarray(tangent),))
        np.testing.assert_allclose(directional, np.sum(expected_grad * tangent), rtol=1e-10)


@pytest.mark.parametrize("name", IDS)
def test_finite_and_exact_at_large_logits(name):
    z = stable.logits("float64")
    rows, classes = z.shape
    c = np.argmax(z, axis=-1)
    c[::2] = np.argmin(z, axis=-1)[::2]
    value = {key: jnp.asarray(v) if isinstance(v, np.ndarray) else v
             for key, v in stable.values_for(name).items()}
    loss, grad = jax.jit(lambda z: built(name).loss_with_grad(z, c, **value))(z)
    loss, grad = np.asarray(loss), np.asarray(grad)
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    for n in range(rows):
        exact_loss, exact_grad = stable.exact_row(name, z[n], int(c[n]))
        exact_grad = np.array([float(g) for g in exact_grad])
        assert abs(loss[n] - float(exact_loss)) <= 1e-8 * max(1.0, abs(float(exact_loss)))
        assert np.abs(grad[n] - exact_grad).max() <= 1e-8 * max(np.abs(exact_grad).max(),
                                                                np.finfo(np.float64).tiny)
    if name in FOCAL + ["focal-label", "generalised-ce", "weighted-focal-label"]:
        bad = jax.grad(lambda z: naive(name, z, np.eye(classes)[c], c, value).sum())(z)
        assert not np.isfinite(bad).all()


def test_hessian_of_cross_entropy_is_the_derivations():
    """jax.hessian (forward over reverse through the custom JVP) against the catalogue's NumPy
    cross_entropy_hessian, the derivation's ∂²E/∂z_l∂z_k = (Σy) q_k (δ_kl - q_l)."""
    z, c, one_hot, probs = data(rows=3)
    reference = derive.numpy_module()
    m = catalogue()
    for target in (c, probs):
        for n in range(3):
            hessian = jax.hessian(lambda row: m.cross_entropy(row, target[n]))(z[n])
            expected = reference.cross_entropy_hessian(z[n:n + 1], target[n:n + 1])[0]
            np.testing.assert_allclose(hessian, expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", [n for n in IDS if not labels_only(n) and n != "sigmoid-bce"])
def test_labels_against_one_hot_probabilities(name):
    z, c, one_hot, _ = data()
    m = built(name)
    value = values(name, jnp.asarray)
    for a, b in zip(m.loss_with_grad(z, c, **value), m.loss_with_grad(z, one_hot, **value)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("name", ["focal-2", "focal-label", "z-loss"])
def test_half_precision_against_float32(name, dtype):
    z, c, *_ = data()
    m = built(name)
    value = values(name, jnp.asarray)
    x = jnp.asarray(z, dtype=dtype)
    loss, grad = m.loss_with_grad(x, c, **value)
    assert loss.dtype == grad.dtype == dtype
    loss32, grad32 = m.loss_with_grad(x.astype(jnp.float32), c, **value)
    tolerance = 1e-2 if dtype == jnp.bfloat16 else 2e-3
    np.testing.assert_allclose(np.asarray(loss, np.float32), loss32, rtol=tolerance,
                               atol=tolerance)
    np.testing.assert_allclose(np.asarray(grad, np.float32), grad32, rtol=tolerance,
                               atol=tolerance * 0.1)


def test_the_catalogue_agrees_with_jax():
    m = catalogue()
    z, c, one_hot, probs = data()
    np.testing.assert_allclose(m.softmax(z), jax.nn.softmax(z), rtol=1e-12)
    np.testing.assert_allclose(m.log_softmax(z, axis=0), jax.nn.log_softmax(z, 0), rtol=1e-12)
    expected = -np.sum(probs * jax.nn.log_softmax(z / 2.0), -1)
    np.testing.assert_allclose(m.tempered_cross_entropy(z, probs, 2.0), expected, rtol=1e-12)
    weight = np.array([0.5, 1.0, 2.0, 1.5, 0.25])
    np.testing.assert_allclose(m.weighted_cross_entropy(z, c, weight),
                               -weight[c] * np.asarray(jax.nn.log_softmax(z))[np.arange(6), c],
                               rtol=1e-12)
    smoothed = 0.9 * one_hot + 0.1 / 5
    np.testing.assert_allclose(m.smoothed_cross_entropy(z, c, 0.1),
                               -np.sum(smoothed * jax.nn.log_softmax(z), -1), rtol=1e-12)


def test_bad_arguments_are_refused():
    m = built("focal-2")
    z, c, *_ = data()
    for call, message in [(lambda: m.loss(z, c, gamma=-1.0), "gamma must be"),
                          (lambda: m.loss(z, c), "missing value"),
                          (lambda: m.loss(z, c + 5, gamma=2.0), "must lie in 0..4"),
                          (lambda: m.loss(z, c[:2], gamma=2.0), "must have shape"),
                          (lambda: built("focal-label").loss(z, z, gamma=2.0), "label c")]:
        with pytest.raises(ValueError, match=message):
            call()


def _train(loss_fn, steps=60):
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(4, 3)) * 2
    labels = rng.integers(0, 4, 200)
    inputs = jnp.asarray(centres[labels] + rng.normal(size=(200, 3)), dtype=jnp.float32)
    params = (jnp.zeros((3, 4), jnp.float32), jnp.zeros(4, jnp.float32))

    @jax.jit
    def step(params):
        loss, grads = jax.value_and_grad(
            lambda p: loss_fn(inputs @ p[0] + p[1], labels).mean())(params)
        return loss, jax.tree_util.tree_map(lambda p, g: p - 0.5 * g, params, grads)
    history = []
    for _ in range(steps):
        loss, params = step(params)
        history.append(float(loss))
    return history


def test_training_with_the_generated_focal_loss():
    generated = _train(lambda z, c: built("focal-2").loss(z, c, gamma=2.0))
    by_hand = _train(lambda z, c: naive("focal-2", z, jax.nn.one_hot(c, 4), c))
    assert generated[-1] < 0.5 * generated[0]
    np.testing.assert_allclose(generated, by_hand, rtol=1e-4)
