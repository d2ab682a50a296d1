"""The JAX runtime (derive.codegen.backends.jax_runtime) against the NumPy one: the same values,
in float64 and float32, on plain, spread, masked (-inf) and non-finite rows, eagerly and under
jit; finite, correct derivatives where the true ones are finite; and its helpers' source runs
as a generated module holds it."""
import inspect
import math
import subprocess
import sys

import numpy
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy

from derive.codegen.backends import emit, jax_runtime, numpy_checks, numpy_runtime  # noqa: E402

NAMES = ["_shift", "_sum_xlogq", "_take", "_take_shifted", "_sum_off_label", "_class_at",
         "_one_hot", "_set_at_label", "_sum_off_top", "_sum_below_one", "_weighted_sum_off_top",
         "_balance_top", "_logsumexp",
         "_log_softmax", "_softmax", "_softplus", "_sigmoid", "_one_minus_exp",
         "_log_one_minus_exp", "_log_one_minus_softmax", "_log_ratio", "_xlogy"]
INF, NAN = numpy.inf, numpy.nan


@pytest.fixture(scope="module", autouse=True)
def x64():
    """float64 for these tests only: the setting is restored afterwards."""
    before = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def _numpy(name, *args):
    """What the NumPy runtime computes for the JAX helper ``name`` given ``args``."""
    args = [numpy.array(a) if isinstance(a, numpy.ndarray) else a for a in args]
    with numpy.errstate(all="ignore"):
        if name == "_sum_off_top":  # the JAX helper is also given the logits and the shift
            return numpy_runtime._sum_off_top(*args[:2])
        if name == "_take_shifted":
            logits, shift, labels = args
            return numpy_runtime._take(logits - shift, labels)
        if name == "_sum_below_one":  # the rows that need it summed without their top
            need, whole, logits, shift = args
            top = numpy.argmax(logits, axis=-1)[..., None]
            return numpy.where(need, numpy_runtime._sum_off_top(numpy.exp(logits - shift), top),
                               whole)
        fn = numpy_checks._shift if name == "_shift" else getattr(numpy_runtime, name)
        return fn(*args)


def _logit_sets(dtype):
    """Rows of logits of shape (5, 7): plain, spread as N(0, 1) · 1000, with masked classes,
    and with +inf, NaN and all -inf rows."""
    rng = numpy.random.default_rng(7)
    plain = rng.standard_normal((5, 7))
    spread = rng.standard_normal((5, 7)) * 1000
    masked = rng.standard_normal((5, 7)) * 3
    masked[0, 2] = masked[2, [0, 5, 6]] = masked[4, :6] = -INF
    edge = rng.standard_normal((5, 7))
    edge[0, 3] = INF
    edge[1, 1] = NAN
    edge[2] = -INF
    edge[3, [1, 4]] = INF
    return {"plain": plain.astype(dtype), "spread": spread.astype(dtype),
            "masked": masked.astype(dtype), "edge": edge.astype(dtype)}


def _cases(dtype):
    """Each helper's arguments (NumPy arrays), as (label, args) pairs."""
    with numpy.errstate(all="ignore"):
        return _make_cases(dtype)


def _make_cases(dtype):
    rng = numpy.random.default_rng(11)
    sets = _logit_sets(dtype)
    labels = rng.integers(0, 7, (5, 1))
    row = rng.standard_normal(7).astype(dtype)
    cases = {name: [] for name in NAMES}
    for key, z in sets.items():
        top = _numpy("_shift", z)[1]
        log_probs = _numpy("_log_softmax", z)
        probs = _numpy("_softmax", z)
        for name in ("_shift", "_logsumexp", "_log_softmax", "_softmax", "_softplus",
                     "_sigmoid"):
            cases[name].append((key, (z,)))
        shift = _numpy("_shift", z)[0]
        exps = numpy.exp(z - shift)
        cases["_sum_off_top"].append((key, (exps, top, z, shift)))
        whole = (exps.sum(-1, keepdims=True) - 1).astype(dtype)
        need = (whole >= 0) & (whole < 0.5)
        cases["_sum_below_one"] += [(key, (need, whole, z, shift)),
                                    (key + "-all", (numpy.isfinite(whole), whole, z, shift))]
        cases["_take_shifted"] += [(key, (z, shift, labels))]
        finite = numpy.where(numpy.isfinite(z), z, 0).astype(dtype)
        cases["_take"] += [(key, (z, labels)), (key + "-row", (row, labels))]
        cases["_sum_off_label"] += [(key, (z, labels)), (key + "-row", (row, labels))]
        cases["_class_at"] += [(key, (z, labels)), (key + "-row", (row, labels))]
        cases["_one_hot"].append((key, (labels, z)))
        cases["_set_at_label"] += [(key, (z, labels, finite[:, :1], z)),
                                   (key + "-row", (row, labels, finite[:, :1], z))]
        if key == "edge":
            continue  # the rest take log-probabilities: those of rows that can be normalised
        weights = numpy.where(numpy.isfinite(z), rng.random((5, 7)), 0).astype(dtype)
        cases["_weighted_sum_off_top"] += [
            (key, (weights, log_probs, top)),
            (key + "-row", (numpy.where(numpy.arange(7) % 3, row, 0).astype(dtype),
                            numpy.where(numpy.arange(7) % 3, -numpy.abs(row), -INF), top))]
        grad = probs - numpy.eye(7, dtype=dtype)[labels[:, 0]]
        grad = numpy.where(numpy.isfinite(z), grad, NAN).astype(dtype)
        cases["_balance_top"] += [(key, (grad, top)), (key + "-row", (row, top))]
        target = numpy.where(numpy.isfinite(z), rng.random((5, 7)), 0).astype(dtype)
        cases["_sum_xlogq"] += [(key, (target, log_probs)), (key + "-row", (row ** 2, log_probs))]
        cases["_log_one_minus_softmax"].append((key, (log_probs, top)))
        for name in ("_one_minus_exp", "_log_one_minus_exp", "_log_ratio"):
            cases[name].append((key, (log_probs,)))
        cases["_xlogy"].append((key, (target, probs)))
    cut = math.log(0.5)
    ls = numpy.array([0, -0.0, -1e-300, -1e-20, -1e-5, -0.01, cut, numpy.nextafter(cut, 0),
                      numpy.nextafter(cut, -1), -1, -50, -800, -INF, NAN]).astype(dtype)
    for name in ("_one_minus_exp", "_log_one_minus_exp", "_log_ratio", "_softplus", "_sigmoid"):
        cases[name].append(("points", (ls,)))
    cases["_softplus"].append(("points+", (-ls,)))
    cases["_sigmoid"].append(("points+", (-ls,)))
    x = numpy.array([0, 0, 0, 0, 0, 0.5, 2, 0.5, -1, NAN]).astype(dtype)
    y = numpy.array([0, INF, NAN, 0.5, 3, 0, 3, INF, 0.25, 0]).astype(dtype)
    cases["_xlogy"].append(("points", (x, y)))
    lp = numpy.array([[0, -INF, -INF], [NAN, -1, -2], [-INF] * 3]).astype(dtype)
    cases["_sum_xlogq"].append(("edge", (numpy.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]],
                                                     dtype=dtype), lp)))
    return cases


def _same(got, want, dtype):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w, dtype)
        return
    got = numpy.asarray(got)
    assert got.shape == want.shape
    if want.dtype.kind in "iu":
        assert got.dtype.kind in "iu"
        numpy.testing.assert_array_equal(got, want)
        return
    assert got.dtype == want.dtype  # float32 stays float32
    rtol, atol = (1e-12, 1e-300) if dtype == numpy.float64 else (2e-5, 1e-37)
    numpy.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
@pytest.mark.parametrize("name", NAMES)
def test_matches_numpy(name, dtype):
    fn = getattr(jax_runtime, name)
    cases = _cases(dtype)[name]
    assert cases
    for key, args in cases:
        want = _numpy(name, *args)
        jargs = [jnp.asarray(a) for a in args]
        _same(fn(*jargs), want, dtype)
        _same(jax.jit(fn)(*jargs), want, dtype)


def _grad(f, x):
    return numpy.asarray(jax.grad(lambda v: jnp.sum(f(v)))(jnp.asarray(x)))


def _finite(array):
    assert numpy.isfinite(array).all()
    return array


@pytest.mark.parametrize("key", ["plain", "spread", "masked"])
def test_grad_of_logsumexp_is_softmax(key):
    z = _logit_sets(numpy.float64)[key]
    numpy.testing.assert_allclose(_finite(_grad(jax_runtime._logsumexp, z)),
                                  _numpy("_softmax", z), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("key", ["plain", "spread"])
def test_grad_of_log_softmax(key):
    z = _logit_sets(numpy.float64)[key]
    w = numpy.random.default_rng(3).random((5, 7))
    got = numpy.asarray(jax.grad(lambda v: jnp.sum(w * jax_runtime._log_softmax(v)))(z))
    want = w - _numpy("_softmax", z) * w.sum(axis=-1, keepdims=True)
    numpy.testing.assert_allclose(_finite(got), want, rtol=1e-10, atol=1e-12)


def test_grad_of_xlogy():
    x = numpy.array([0, 0, 0, 0.5, 2, 1e-300])
    y = numpy.array([0, 0.5, 3, 0.25, 3, 1e-300])
    gx, gy = (numpy.asarray(g) for g in jax.grad(
        lambda a, b: jnp.sum(jax_runtime._xlogy(a, b)), argnums=(0, 1))(x, y))
    numpy.testing.assert_allclose(_finite(gx)[1:], numpy.log(y[1:]), rtol=1e-14)
    numpy.testing.assert_allclose(_finite(gy)[1:], x[1:] / y[1:], rtol=1e-14)
    assert gy[0] == 0


def test_grad_of_log_ratio():
    l = numpy.array([0, -0.0, -1e-300, -1e-8, -1e-3, -0.1, -1, -3, -40])
    got = _finite(_grad(jax_runtime._log_ratio, l))
    e = numpy.exp(l)
    with numpy.errstate(all="ignore"):
        want = numpy.where(l == 0, 0.5, (1 - e + l * e) / numpy.expm1(l) ** 2)
    want[2:4] = 0.5 + l[2:4] * (-1 / 6)  # the series where the formula cancels
    numpy.testing.assert_allclose(got, want, rtol=1e-7)
    h = jax.hessian(lambda v: jax_runtime._log_ratio(v))(0.0)
    assert abs(float(h) + 1 / 6) < 1e-12
    for v in (-1e-3, -0.5):  # finite differences either side of the switch to the series
        step = 1e-6
        fd = (jax_runtime._log_ratio(v + step) - jax_runtime._log_ratio(v - step)) / (2 * step)
        assert abs(float(jax.grad(jax_runtime._log_ratio)(v)) - float(fd)) < 1e-8


def test_grad_of_sigmoid_and_softplus():
    u = numpy.array([-800, -30, -1, -1e-9, 0, 1e-9, 1, 30, 800.0])
    with numpy.errstate(over="ignore"):
        s = 1 / (1 + numpy.exp(-u))
    e = numpy.exp(-numpy.abs(u))  # σ'(u) = σ(u) σ(-u), without 1 - σ's cancellation
    numpy.testing.assert_allclose(_finite(_grad(jax_runtime._sigmoid, u)), e / (1 + e) ** 2,
                                  rtol=1e-14, atol=1e-300)
    numpy.testing.assert_allclose(_finite(_grad(jax_runtime._softplus, u)), s, rtol=1e-14)
    assert float(jax.grad(jax_runtime._sigmoid)(0.0)) == 0.25


def test_grad_of_log_one_minus_exp_and_softmax():
    l = numpy.array([-1e-300, -1e-8, -0.5, math.log(0.5), -0.75, -3, -800, -INF])
    with numpy.errstate(all="ignore"):
        want = numpy.where(l == -INF, 0, -numpy.exp(l) / -numpy.expm1(l))
    numpy.testing.assert_allclose(_finite(_grad(jax_runtime._log_one_minus_exp, l)), want,
                                  rtol=1e-12)
    for key in ("plain", "spread", "masked"):  # spread: log q_top is exactly 0 in some rows
        z = _logit_sets(numpy.float64)[key]
        log_probs, top = _numpy("_log_softmax", z), _numpy("_shift", z)[1]
        rows = numpy.isfinite(z).sum(axis=-1) > 1  # one class left: log(1 - 1), not finite
        got = jax.grad(lambda v: jnp.sum(jnp.where(
            jnp.isfinite(z), jax_runtime._log_one_minus_softmax(v, top), 0)))(log_probs)
        _finite(numpy.asarray(got)[rows])


def test_grad_through_masks_is_finite():
    z = _logit_sets(numpy.float64)["masked"]
    log_probs, top = _numpy("_log_softmax", z), _numpy("_shift", z)[1]
    target = numpy.where(numpy.isfinite(z), 0.1, 0)
    got = jax.grad(lambda v: jnp.sum(jax_runtime._sum_xlogq(target, v)))(log_probs)
    numpy.testing.assert_array_equal(numpy.asarray(got), target)
    weights = numpy.where(numpy.isfinite(z), 1.0, 0)
    gw = jax.grad(lambda w: jnp.sum(jax_runtime._weighted_sum_off_top(w, log_probs, top)))(
        weights)
    _finite(numpy.asarray(gw))


def test_transformations():
    z = jnp.asarray(_logit_sets(numpy.float64)["plain"])
    q = numpy.asarray(jax_runtime._softmax(z))
    h = numpy.asarray(jax.hessian(lambda v: jax_runtime._logsumexp(v)[0])(z[0]))
    numpy.testing.assert_allclose(h, numpy.diag(q[0]) - numpy.outer(q[0], q[0]), atol=1e-14)
    mapped = jax.vmap(jax_runtime._log_softmax)(z)
    numpy.testing.assert_allclose(mapped, jax_runtime._log_softmax(z), rtol=1e-15)
    _, tangent = jax.jvp(jax_runtime._logsumexp, (z,), (jnp.ones_like(z),))
    numpy.testing.assert_allclose(tangent, numpy.ones((5, 1)), rtol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_source_runs_alone(name):
    """As a generated module holds it: the emitted source of the helper and those it calls,
    in a namespace holding only jax, jnp and math."""
    fn = jax_runtime.HELPERS[name]
    assert fn.__doc__ and not fn.__annotations__
    assert not {"out"} & set(inspect.signature(fn).parameters)
    namespace = {"jax": jax, "jnp": jnp, "math": math}
    exec(compile(emit.sources(jax_runtime.HELPERS, {name}), "<generated>", "exec"), namespace)
    assert set(namespace) - {"__builtins__"} <= set(NAMES) | {"jax", "jnp", "math"}
    for dtype in (numpy.float64, numpy.float32):
        for key, args in _cases(dtype)[name]:
            jargs = [jnp.asarray(a) for a in args]
            _same(namespace[name](*jargs), _numpy(name, *args), dtype)


def test_helpers():
    assert list(jax_runtime.HELPERS) == NAMES
    assert all(fn.__module__ == jax_runtime.__name__ for fn in jax_runtime.HELPERS.values())


def test_imports_without_jax():
    code = ("import sys; sys.modules['jax'] = sys.modules['jax.numpy'] = None\n"
            "from derive.codegen.backends import jax_runtime as r\n"
            "assert r.jax is None and r.jnp is None and len(r.HELPERS) == 22")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("dominated", [280, 140])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_sum_off_top_keeps_the_digits_of_rows_whose_top_dominates(dtype, dominated):
    """300 rows, most or fewer than half (three or two blocks of rows computed again) with a
    top so large that the others sum to less than 1/2, among rows that do not need it, ties,
    and a NaN: the tiny sums keep their digits where the whole sum less 1 loses them, eagerly,
    under jit, under vmap and over a batch of batches."""
    rng = numpy.random.default_rng(3)
    z = rng.standard_normal((300, 9))
    z[:dominated, 0] += rng.uniform(20, 60, dominated)
    z[290, :2] = 4.0  # a tie: the others sum to at least 1
    z[291, 3] = NAN
    z = z.astype(dtype)
    shift = z.max(-1, keepdims=True)
    exps = numpy.exp(z - shift)
    top = numpy.argmax(z, -1)[:, None]
    want = _numpy("_sum_off_top", exps, top)
    plain = exps.sum(-1, keepdims=True) - 1
    lost = numpy.abs(plain - want) > 1e-3 * numpy.abs(want)
    assert lost.sum() > dominated // 2  # the data need the exact sums
    args = [jnp.asarray(a) for a in (exps, top, z, shift)]
    _same(jax_runtime._sum_off_top(*args), want, dtype)
    _same(jax.jit(jax_runtime._sum_off_top)(*args), want, dtype)
    mapped = jax.vmap(jax_runtime._sum_off_top)(*[a.reshape(30, 10, -1) for a in args])
    _same(mapped.reshape(300, 1), want, dtype)
    _same(jax_runtime._sum_off_top(*[a.reshape(3, 100, -1) for a in args]).reshape(300, 1),
          want, dtype)


def test_logsumexp_of_dominated_rows_under_derivatives():
    """log Σ e^u at rows whose top dominates: its value, gradient (the softmax) and Hessian
    (diag q - q qᵀ) as the NumPy runtime and the formulas give them, through the exact sums."""
    rng = numpy.random.default_rng(5)
    z = rng.standard_normal((4, 6))
    z[:, 2] += 40
    q = _numpy("_softmax", z)
    _same(jax_runtime._logsumexp(jnp.asarray(z)), _numpy("_logsumexp", z), numpy.float64)
    numpy.testing.assert_allclose(_grad(jax_runtime._logsumexp, z), q, rtol=1e-12, atol=1e-300)
    h = numpy.asarray(jax.hessian(lambda v: jax_runtime._logsumexp(v)[0])(jnp.asarray(z[0])))
    numpy.testing.assert_allclose(h, numpy.diag(q[0]) - numpy.outer(q[0], q[0]), atol=1e-30,
                                  rtol=1e-10)
