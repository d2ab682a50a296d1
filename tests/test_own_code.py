"""The generated modules of users' own losses: against central differences, the derived formulas,
float32, one-hot targets, their own conventions and bad input (logits far from 0, against an
mpmath reference: tests/test_stability.py)."""
import functools
import re

import numpy as np
import pytest
from sympy import Derivative

import derive
from numerics import central_difference

ALPHA = [0.5, 2.0, 1.0, 1.5, 0.8, 1.2]  # a per-class array, cut to the number of classes

LOSSES = [
    # id, text, values, assume
    ("focal-0.5", "-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)", {"gamma": 0.5}, "probability"),
    ("focal-1", "-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)", {"gamma": 1.0}, "probability"),
    ("focal-2", "-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)", {"gamma": 2.0}, "probability"),
    ("focal-label", "-(1 - q[c])**gamma*log(q[c])", {"gamma": 2.0}, "one-hot"),
    ("poly-1", "-sum(y[i]*log(q[i]), i) + eps*sum(y[i]*(1 - q[i]), i)", {"eps": 1.0},
     "probability"),
    ("z-loss", "-sum(y[i]*log(q[i]), i) + lam*log(sum(exp(z[i]), i))**2", {"lam": 0.1},
     "probability"),
    ("brier", "sum((q[i] - y[i])**2, i)", {}, "probability"),
    ("class-balanced", "-sum(alpha[i]*y[i]*log(q[i]), i)", {"alpha": ALPHA}, "probability"),
    ("sigmoid-bce", "-sum(y[i]*log(sigma[i]) + (1 - y[i])*log(1 - sigma[i]), i)", {}, "any"),
    ("label-smoothing", "-sum(((1 - eps)*y[i] + eps/K)*log(q[i]), i)", {"eps": 0.1},
     "probability"),
    ("tempered", "-sum(y[i]*log(exp(z[i]/T)/sum(exp(z[j]/T), j)), i)", {"T": 2.0},
     "probability"),
    ("entropy-regularised", "-sum(y[i]*log(q[i]), i) + beta*sum(q[i]*log(q[i]), i)",
     {"beta": 0.3}, "probability"),
    ("label-cross-entropy", "-log(q[c])", {}, "one-hot"),
    ("weighted-focal-label", "-alpha[c]*(1 - q[c])**gamma*log(q[c])",
     {"gamma": 2.0, "alpha": ALPHA}, "one-hot"),
    ("root-brier", "sqrt(sum((q[i] - y[i])**2, i))", {}, "probability"),
]
BY_ID = {loss[0]: loss for loss in LOSSES}
IDS = list(BY_ID)
WITH_PROBABILITIES = [name for name, text, _, _ in LOSSES
                      if not derive.uses_class(derive.parse(text))]
CLASSES, ROWS = 5, 3


def values_for(name, classes):
    """The loss's values for ``classes`` classes."""
    return {key: np.array(v[:classes]) if isinstance(v, list) else v
            for key, v in BY_ID[name][2].items()}


@functools.cache
def built(name):
    """The checked derivation of the loss ``name`` and its generated module."""
    _, text, _, assume = BY_ID[name]
    return derive.gradient(text, assume=assume), derive.numpy_module(text, assume=assume)


def targets(name, rng, shape):
    """Integer labels, and Dirichlet probabilities where the loss takes them."""
    out = [("labels", rng.integers(shape[-1], size=shape[:-1]))]
    if name in WITH_PROBABILITIES:
        out.append(("probabilities", rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])))
    return out


def derived_gradient(name, d):
    """The gradient as derived: for any target, or the one-hot form for a loss of the label."""
    if name not in WITH_PROBABILITIES:
        return d.result
    return [s for s in d.steps if not s.aside and not s.facts and isinstance(s.lhs, Derivative)
            and not s.expr.has(Derivative)][-1].expr


# ---- moderate logits -------------------------------------------------------------------------

@pytest.mark.parametrize("name", IDS)
def test_gradient_matches_central_differences(name):
    _, module = built(name)
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(ROWS, CLASSES))
    values = values_for(name, CLASSES)
    for kind, target in targets(name, rng, logits.shape):
        total = lambda x: module.loss(x, target, "sum", **values)  # noqa: E731
        _, grad = module.loss_with_grad(logits, target, **values)
        numeric = central_difference(total, logits)
        assert np.all(np.isfinite(grad)), kind
        np.testing.assert_allclose(grad, numeric, rtol=0, atol=1e-6, err_msg=kind)


@pytest.mark.parametrize("name", IDS)
def test_agrees_with_the_derived_formulas(name):
    d, module = built(name)
    symbol, gradient = d.steps[0].lhs, derived_gradient(name, d)
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(ROWS, CLASSES))
    values = values_for(name, CLASSES)
    for kind, target in targets(name, rng, logits.shape):
        loss, grad = module.loss_with_grad(logits, target, **values)
        for row in range(ROWS):
            if kind == "labels":
                label = int(target[row])
                y, index = np.eye(CLASSES)[label], {"c": label}
            else:
                y, index = target[row], {}
            at = dict(z=logits[row], y=y, **index, **values)
            assert loss[row] == pytest.approx(derive.evaluate(symbol, **at), rel=1e-10, abs=1e-10)
            expected = [derive.evaluate(gradient, k=kk, **at) for kk in range(CLASSES)]
            np.testing.assert_allclose(grad[row], expected, rtol=1e-10, atol=1e-10,
                                       err_msg=f"{kind}, row {row}")


@pytest.mark.parametrize("name", IDS)
def test_float32_stays_float32_and_agrees_with_float64(name):
    _, module = built(name)
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(ROWS, CLASSES)).astype(np.float32)
    values = values_for(name, CLASSES)
    for kind, target in targets(name, rng, logits.shape):
        loss32, grad32 = module.loss_with_grad(logits, target, **values)
        loss64, grad64 = module.loss_with_grad(logits.astype(np.float64), target, **values)
        assert loss32.dtype == grad32.dtype == np.float32, kind
        assert module.loss(logits, target, **values).dtype == np.float32
        assert module.grad(logits, target, **values).dtype == np.float32
        assert loss64.dtype == grad64.dtype == np.float64
        assert np.all(np.abs(loss32 - loss64) <= 1e-4 * np.maximum(1, np.abs(loss64))), kind
        assert np.max(np.abs(grad32 - grad64)) <= 1e-4 * np.max(np.abs(grad64)), kind


@pytest.mark.parametrize("name", WITH_PROBABILITIES)
def test_labels_equal_one_hot_targets(name):
    _, module = built(name)
    rng = np.random.default_rng(4)
    logits = rng.normal(scale=3, size=(4, CLASSES))
    labels = np.array([0, 4, 2, 2])
    values = values_for(name, CLASSES)
    by_label = module.loss_with_grad(logits, labels, **values)
    by_one_hot = module.loss_with_grad(logits, np.eye(CLASSES)[labels], **values)
    for ours, theirs in zip(by_label, by_one_hot):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", IDS)
def test_functions_reductions_and_batch_axes(name):
    _, module = built(name)
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(2, 3, CLASSES))
    values = values_for(name, CLASSES)
    for kind, target in targets(name, rng, logits.shape):
        loss, grad = module.loss_with_grad(logits, target, **values)
        assert loss.shape == (2, 3) and grad.shape == logits.shape, kind
        np.testing.assert_allclose(module.loss(logits, target, **values), loss, rtol=1e-14)
        np.testing.assert_allclose(module.grad(logits, target, **values), grad, rtol=1e-14,
                                   atol=1e-16)
        flat_loss, flat_grad = module.loss_with_grad(
            logits.reshape(6, CLASSES), target.reshape(6, *target.shape[2:]), **values)
        np.testing.assert_allclose(loss, flat_loss.reshape(2, 3), rtol=1e-14)
        np.testing.assert_allclose(grad, flat_grad.reshape(grad.shape), rtol=1e-14, atol=1e-16)
        for reduction, total, scale in (("sum", loss.sum(), 1), ("mean", loss.mean(), 6)):
            reduced, reduced_grad = module.loss_with_grad(logits, target, reduction, **values)
            assert np.shape(reduced) == () and reduced == pytest.approx(total, rel=1e-14)
            assert module.loss(logits, target, reduction, **values) == pytest.approx(reduced,
                                                                                   rel=1e-14)
            np.testing.assert_allclose(reduced_grad, grad / scale, rtol=1e-14, atol=1e-16)
            np.testing.assert_allclose(module.grad(logits, target, reduction, **values),
                                       grad / scale, rtol=1e-14, atol=1e-16)


# ---- bad input -------------------------------------------------------------------------------

LOGITS = np.random.default_rng(6).normal(size=(ROWS, CLASSES))
LABELS = np.array([0, 3, 1])
WITH_VALUES = [(name, key) for name, _, values, _ in LOSSES for key in values]
SCALARS = [(name, key) for name, key in WITH_VALUES if not isinstance(BY_ID[name][2][key], list)]
ARRAYS = [(name, key) for name, key in WITH_VALUES if isinstance(BY_ID[name][2][key], list)]


def functions(module):
    return (module.loss, module.grad, module.loss_with_grad)


@pytest.mark.parametrize("name", IDS)
def test_an_unknown_value_is_refused_by_name(name):
    _, module = built(name)
    for f in functions(module):
        with pytest.raises(ValueError, match="'bogus'"):
            f(LOGITS, LABELS, bogus=1.0, **values_for(name, CLASSES))


@pytest.mark.parametrize("name, key", WITH_VALUES, ids=[f"{n}-{k}" for n, k in WITH_VALUES])
def test_a_missing_value_is_refused_by_name(name, key):
    _, module = built(name)
    values = values_for(name, CLASSES)
    del values[key]
    for f in functions(module):
        with pytest.raises(ValueError, match=rf"missing value for {key}\b"):
            f(LOGITS, LABELS, **values)


#: Each scalar's domain (derive.domains: an exponent ≥ 0, a divisor inside a log > 0, a
#: coefficient any real), in the words of its error, and values outside it and inside it.
DOMAINS = {"gamma": ("a finite real number ≥ 0", (-1, -1.0, -1e-300), (0, 0.0, 0.25)),
           "eps": ("a finite real number", (), (0.0, -0.5)),
           "lam": ("a finite real number", (), (0.0, -0.1)),
           "T": ("a finite real number > 0", (0, 0.0, -1.0), (0.5,)),
           "beta": ("a finite real number", (), (0.0, -0.3))}


@pytest.mark.parametrize("name, key", SCALARS, ids=[f"{n}-{k}" for n, k in SCALARS])
def test_a_parameter_outside_its_domain_is_refused_by_name(name, key):
    _, module = built(name)
    words, outside, inside = DOMAINS[key]
    for bad in (*outside, np.inf, -np.inf, np.nan):
        for f in functions(module):
            with pytest.raises(ValueError, match=rf"^{key} must be {words}, not "):
                f(LOGITS, LABELS, **{**values_for(name, CLASSES), key: bad})
    for good in inside:
        loss, grad = module.loss_with_grad(LOGITS, LABELS, **{**values_for(name, CLASSES),
                                                               key: good})
        assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad)), good


@pytest.mark.parametrize("name, key", ARRAYS, ids=[f"{n}-{k}" for n, k in ARRAYS])
def test_an_array_of_the_wrong_shape_is_refused_by_name(name, key):
    _, module = built(name)
    for bad in (np.array(ALPHA[:CLASSES + 1]), np.array(ALPHA[:CLASSES - 1]), 1.0,
                np.ones((ROWS + 1, CLASSES))):
        shape = re.escape(str(np.shape(bad)))
        for f in functions(module):
            with pytest.raises(ValueError, match=rf"^{key} must have shape \(K,\) = \(5,\) or "
                               rf"the logits' shape \(3, 5\), not {shape}$"):
                f(LOGITS, LABELS, **{**values_for(name, CLASSES), key: bad})


@pytest.mark.parametrize("name", [n for n in IDS if n not in WITH_PROBABILITIES])
def test_a_loss_of_the_label_refuses_probability_targets(name):
    _, module = built(name)
    probabilities = np.eye(CLASSES)[LABELS]
    for f in functions(module):
        with pytest.raises(ValueError, match="^target: this loss uses the label c"):
            f(LOGITS, probabilities, **values_for(name, CLASSES))
