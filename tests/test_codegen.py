"""Stage 6: the generated NumPy module, against central differences, the derived formulas,
SciPy, the articles' numbers, and its own conventions."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import derive
from numerics import central_difference
from derive import codegen
from derive.model import E, k, q, z
from sympy import Derivative

OUTPUT = Path(__file__).resolve().parent.parent / "output"


# ---- the numbers ---------------------------------------------------------------------------

def test_worked_example_log_sum_exp_article(m):
    logits = np.array([1.0, 2.0, 0.5])
    assert np.round(m.softmax(logits), 2).tolist() == [0.23, 0.63, 0.14]
    assert round(float(m.cross_entropy(logits, 1)), 2) == 0.46
    assert np.round(m.cross_entropy_grad(logits, 1), 2).tolist() == [0.23, -0.37, 0.14]


def test_worked_example_chain_rule_article(m):
    logits = np.log([0.2, 0.6, 0.2])
    assert float(m.cross_entropy(logits, np.array([1.0, 0.0, 0.0]))) == pytest.approx(1.6094, abs=1e-4)
    assert m.cross_entropy_grad(logits, 0) == pytest.approx([-0.8, 0.6, 0.2])


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 6), (1, 1)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_gradient_matches_central_differences(m, shape, reduction):
    rng = np.random.default_rng(sum(shape))
    logits = rng.normal(scale=3, size=shape)
    target = rng.uniform(size=shape)            # arbitrary non-negative, not normalised
    total = lambda x: np.sum(m.cross_entropy(x, target, reduction))  # noqa: E731
    numeric = central_difference(total, logits)
    assert m.cross_entropy_grad(logits, target, reduction) == pytest.approx(numeric, abs=1e-6)


def test_jacobian_matches_central_differences(m):
    logits = np.random.default_rng(3).normal(size=(2, 4))
    jac = m.softmax_jacobian(logits)
    assert jac.shape == (2, 4, 4)
    for row in range(2):
        for kk in range(4):
            numeric = central_difference(lambda x: m.softmax(x)[row, kk], logits)
            assert jac[row, kk, :] == pytest.approx(numeric[row], abs=1e-7)


@pytest.mark.parametrize("shape", [(4,), (3, 5), (2, 2, 3)])
def test_hessian_matches_central_differences_of_the_gradient(m, shape):
    rng = np.random.default_rng(len(shape))
    logits = rng.normal(scale=2, size=shape)
    for target in (rng.uniform(size=shape), rng.integers(0, shape[-1], size=shape[:-1])):
        hess = m.cross_entropy_hessian(logits, target)
        assert hess.shape == shape + shape[-1:]
        for l_ in range(shape[-1]):
            numeric = central_difference(lambda x: np.sum(m.cross_entropy_grad(x, target)[..., l_]),
                                         logits)
            assert hess[..., l_] == pytest.approx(numeric, abs=1e-6)
        assert hess == pytest.approx(np.swapaxes(hess, -1, -2), abs=1e-15)


def test_hessian_against_an_independent_reference(m):
    scipy_special = pytest.importorskip("scipy.special")
    logits = np.random.default_rng(5).normal(scale=4, size=(6, 7))
    probs = scipy_special.softmax(logits, axis=-1)
    reference = np.stack([np.diag(p) - np.outer(p, p) for p in probs])
    assert m.cross_entropy_hessian(logits, np.arange(6)) == pytest.approx(reference, abs=1e-14)
    soft = np.full((6, 7), 0.3)  # sums to 2.1: the Hessian scales with Σy
    assert m.cross_entropy_hessian(logits, soft) == pytest.approx(2.1 * reference, abs=1e-14)
    assert m.cross_entropy_hessian(logits.astype(np.float32), np.arange(6)).dtype == np.float32


@pytest.mark.parametrize("size", range(2, 8))
def test_agrees_with_the_derived_expressions(m, derivations, size):
    rng = np.random.default_rng(size)
    logits, target = rng.normal(size=size), rng.uniform(size=size)
    general_grad = codegen.FORMULAS["grad"].expr()
    loss = derive.evaluate(E, logits, target)
    assert float(m.cross_entropy(logits, target)) == pytest.approx(loss, rel=1e-12)
    for n in range(size):
        assert m.softmax(logits)[n] == pytest.approx(derive.evaluate(q[k], logits, k=n), rel=1e-12)
        assert m.cross_entropy_grad(logits, target)[n] == pytest.approx(
            derive.evaluate(general_grad, logits, target, k=n), rel=1e-9, abs=1e-12)
        assert m.cross_entropy_grad(logits, target)[n] == pytest.approx(
            derive.evaluate(Derivative(E, z[k]), logits, target, k=n), rel=1e-9, abs=1e-12)
    jac = m.softmax_jacobian(logits)
    for a in range(size):
        for b in range(size):
            assert jac[a, b] == pytest.approx(
                derive.evaluate(derivations["softmax-jacobian"].result, logits, i=a, k=b), abs=1e-12)


def test_mean_reduction_is_the_batch_mean_derivation(m, derivations):
    rng = np.random.default_rng(4)
    logits, target = rng.normal(size=(3, 4)), rng.dirichlet(np.ones(4), size=3)
    grad = m.cross_entropy_grad(logits, target, "mean")
    result = derivations["batch-mean"].result
    for row in range(3):
        for col in range(4):
            assert grad[row, col] == pytest.approx(
                derive.evaluate(result, Z=logits, Y=target, m=row, k=col), rel=1e-12)


def test_agrees_with_scipy(m):
    scipy_special = pytest.importorskip("scipy.special")
    logits = np.random.default_rng(0).normal(scale=50, size=(7, 11))
    assert m.log_softmax(logits) == pytest.approx(scipy_special.log_softmax(logits, axis=-1), rel=1e-12)
    assert m.softmax(logits, axis=0) == pytest.approx(scipy_special.softmax(logits, axis=0), rel=1e-12)
    labels = np.arange(7) % 11
    expected = -scipy_special.log_softmax(logits, axis=-1)[np.arange(7), labels]
    assert m.cross_entropy(logits, labels) == pytest.approx(expected, rel=1e-12)


# ---- properties ----------------------------------------------------------------------------

finite_rows = arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 8)),
                     elements=st.floats(-1e3, 1e3))


@settings(max_examples=60, deadline=None)
@given(finite_rows, st.floats(-1e3, 1e3))
def test_softmax_rows_sum_to_one_and_shift_invariance(m, logits, shift):
    probs = m.softmax(logits)
    assert np.all(probs >= 0)
    assert probs.sum(axis=-1) == pytest.approx(1, abs=1e-12)
    assert m.softmax(logits + shift) == pytest.approx(probs, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(finite_rows, st.data())
def test_labels_equal_one_hot_and_gradient_rows_sum_to_zero(m, logits, data):
    n, size = logits.shape
    labels = np.array(data.draw(st.lists(st.integers(0, size - 1), min_size=n, max_size=n)))
    one_hot = np.eye(size)[labels]
    assert m.cross_entropy(logits, labels) == pytest.approx(m.cross_entropy(logits, one_hot))
    grad = m.cross_entropy_grad(logits, labels)
    assert grad == pytest.approx(m.cross_entropy_grad(logits, one_hot))
    assert grad.sum(axis=-1) == pytest.approx(0, abs=1e-12)  # Σy - Σy·Σq = 0 when Σy = 1
    assert np.all(np.isfinite(m.cross_entropy(logits, labels)))


@settings(max_examples=40, deadline=None)
@given(finite_rows)
def test_with_grad_is_loss_and_grad_together(m, logits):
    target = np.full(logits.shape, 1.0 / logits.shape[-1])
    loss, grad = m.cross_entropy_with_grad(logits, target, "mean")
    assert loss == pytest.approx(m.cross_entropy(logits, target, "mean"))
    assert grad == pytest.approx(m.cross_entropy_grad(logits, target, "mean"))


# ---- numerics --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, big", [(np.float64, 1e300), (np.float32, 1e30)])
def test_huge_logits_stay_finite(m, dtype, big):
    logits = np.array([[big, -big, 0.0], [big, big, -big]], dtype=dtype)
    loss, grad = m.cross_entropy_with_grad(logits, np.array([0, 1]))
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
    assert m.softmax(logits) == pytest.approx(np.array([[1, 0, 0], [0.5, 0.5, 0]]))
    assert loss.dtype == dtype and grad.dtype == dtype


def test_naive_formula_would_overflow_where_ours_does_not(m):
    logits = np.array([1000.0, 999.0, 0.0])
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(logits) / np.exp(logits).sum()
    assert np.isnan(naive).any()
    assert np.all(np.isfinite(m.softmax(logits)))


def test_minus_infinity_is_a_mask(m):
    logits = np.array([[0.0, -np.inf, 1.0], [0.0, -np.inf, 1.0]])
    probs = m.softmax(logits)
    assert probs[:, 1].tolist() == [0.0, 0.0]
    assert m.log_softmax(logits)[0, 1] == -np.inf
    loss = m.cross_entropy(logits, np.array([0, 1]))
    assert np.isfinite(loss[0]) and loss[1] == np.inf
    grad = m.cross_entropy_grad(logits, np.array([0, 1]))
    assert np.all(np.isfinite(grad))
    assert grad[0, 1] == 0.0 and grad[1, 1] == -1.0


@pytest.mark.parametrize("row", [[-np.inf, -np.inf], [np.inf, 0.0], [np.nan, 0.0]])
def test_rows_that_cannot_be_normalised_give_nan_there_only(m, row):
    logits = np.array([row, [0.0, 0.0]])
    with np.errstate(all="raise"):
        probs = m.softmax(logits)
        loss = m.cross_entropy(logits, np.array([0, 0]))
    assert np.isnan(probs[0]).all() and np.isnan(loss[0])
    assert probs[1].tolist() == [0.5, 0.5] and np.isfinite(loss[1])


def test_dtypes(m):
    f32 = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    loss, grad = m.cross_entropy_with_grad(f32, np.arange(4), "mean")
    assert loss.dtype == np.float32 and grad.dtype == np.float32
    f64_loss, f64_grad = m.cross_entropy_with_grad(f32.astype(np.float64), np.arange(4), "mean")
    assert loss == pytest.approx(f64_loss, rel=1e-5) and grad == pytest.approx(f64_grad, abs=1e-6)
    half = m.softmax(f32.astype(np.float16))
    assert half.dtype == np.float16 and half.sum(axis=-1) == pytest.approx(1, abs=1e-2)
    assert m.softmax(np.array([1, 2, 3])).dtype == np.float64
    assert m.softmax_jacobian(f32).dtype == np.float32


def test_reductions(m):
    logits = np.random.default_rng(1).normal(size=(6, 3))
    labels = np.array([0, 1, 2, 0, 1, 2])
    per_row = m.cross_entropy(logits, labels)
    assert per_row.shape == (6,)
    assert m.cross_entropy(logits, labels, "sum") == pytest.approx(per_row.sum())
    assert m.cross_entropy(logits, labels, "mean") == pytest.approx(per_row.mean())
    assert m.cross_entropy_grad(logits, labels, "mean") == pytest.approx(m.cross_entropy_grad(logits, labels) / 6)


def test_softmax_axis(m):
    logits = np.random.default_rng(2).normal(size=(3, 4))
    assert m.softmax(logits, axis=0) == pytest.approx(m.softmax(logits.T).T)
    assert m.log_softmax(logits, axis=0) == pytest.approx(m.log_softmax(logits.T).T)


# ---- bad input -------------------------------------------------------------------------------

BAD = [
    (lambda m: m.cross_entropy(np.zeros((2, 3)), np.zeros((3,), dtype=int)), "fits neither"),
    (lambda m: m.cross_entropy(np.zeros((2, 3)), np.array([0, 3])), "must lie in 0..2"),
    (lambda m: m.cross_entropy(np.zeros((2, 3)), np.array([0, -1])), "must lie in 0..2"),
    (lambda m: m.cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])), "labels must be integers"),
    (lambda m: m.cross_entropy(np.zeros(2), np.array([-0.5, 1.5])), "must not be negative"),
    (lambda m: m.cross_entropy(np.zeros(2), np.array([np.nan, 1.0])), "must be finite"),
    (lambda m: m.cross_entropy(np.zeros(2), np.array([np.inf, 1.0])), "must be finite"),
    (lambda m: m.cross_entropy(np.zeros(2), 0, reduction="avg"), "reduction must be one of"),
    (lambda m: m.cross_entropy_grad(np.zeros(2), 0, reduction="avg"), "reduction must be one of"),
    (lambda m: m.softmax(np.zeros((2, 0))), "empty class axis"),
    (lambda m: m.softmax(3.0), "must have a class axis"),
    (lambda m: m.softmax(np.zeros(3), axis=2), "axis 2 is out of range"),
    (lambda m: m.softmax(np.array(["a", "b"])), "logits must be real numbers"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_target_validation_in_each_float_width(m, dtype):
    logits = np.zeros((2, 3), dtype=dtype)
    for bad, message in (([[0.5, -1e-30, 0.5]], "negative"), ([[0.5, np.inf, 0]], "finite"),
                         ([[np.nan, 0, 0]], "finite"), ([[-np.inf, 0, 0]], "finite")):
        with pytest.raises(ValueError, match=message):
            m.cross_entropy(logits, np.array(bad * 2, dtype=dtype))
    negative_zero = np.array([[-0.0, 1.0, 0.0]] * 2, dtype=dtype)
    assert m.cross_entropy(logits, negative_zero) == pytest.approx(np.log(3))


@pytest.mark.parametrize("call, message", BAD, ids=[b[1] for b in BAD])
def test_bad_input_raises_value_error_naming_it(m, call, message):
    with pytest.raises(ValueError, match=message):
        call(m)


# ---- the generated file ------------------------------------------------------------------------

def test_source_is_deterministic_and_self_describing():
    first, second = codegen.source(), codegen.source()
    assert first == second
    assert "Do not edit" in first and f"derive {derive.__version__}" in first
    for name in ("shift-invariance, step 2", "shift-invariance, step 4", "any-target, step 1",
                 "any-target, step 8", "softmax-jacobian, step 7", "any-target, step 20"):
        assert name in first
    body = first[first.index("def softmax("):]
    computing = [line for line in body.splitlines() if line.startswith(" " * 8) and " = " in line
                 and not line.strip().startswith(('"', "raise", "if", "f\""))]
    assert computing and all("  # " in line for line in computing)


def test_committed_module_imports_with_numpy_only_and_is_current():
    path = OUTPUT / "softmax_cross_entropy.py"
    assert path.read_text(encoding="utf-8") == codegen.source(), "run `derive build`"
    spec = importlib.util.spec_from_file_location("generated_sce", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.__all__) == {"softmax", "log_softmax", "cross_entropy", "cross_entropy_grad",
                                   "cross_entropy_with_grad", "cross_entropy_hessian",
                                   "tempered_cross_entropy_with_grad",
                                   "weighted_cross_entropy_with_grad",
                                   "smoothed_cross_entropy_with_grad",
                                   "sigmoid_binary_cross_entropy_with_grad",
                                   "linear_cross_entropy_with_grad", "softmax_jacobian"}
    imported = {line.split()[1] for line in path.read_text().splitlines()
                if line.startswith(("import ", "from "))}
    assert imported == {"numpy"}
    assert "generated_sce" not in sys.modules
