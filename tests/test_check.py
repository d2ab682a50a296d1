"""Stage 4: the checker proves correct steps and rejects wrong ones."""
import dataclasses

import pytest
from sympy import Derivative, KroneckerDelta, Sum, exp, log

import derive
from derive import check
from derive.derivations import build
from derive.errors import CheckError
from derive.model import (E, PROBABILITY, K, Q, SumExcept, Y, m, x, T, c, epsilon, i, j, k, l, p, q, sig, w,
                          y, z)
from derive.records import Derivation, Step


@pytest.mark.parametrize("name", derive.names())
def test_every_step_is_checked(name):
    d = build(name)
    report = check.check(d)
    assert [s.number for s in report.steps] == list(range(1, len(d.steps) + 1))
    # five sizes, two index assignments each, two samples each
    assert all(s.numeric == 20 for s in report.steps)


def _tamper(d: Derivation, number: int, **changes) -> Derivation:
    steps = list(d.steps)
    steps[number - 1] = dataclasses.replace(steps[number - 1], **changes)
    return dataclasses.replace(d, steps=tuple(steps))


WRONG = [
    # name, step, replacement expression, why it is wrong
    ("chain", 9, q[k] + y[k], "sign of y_k"),
    ("chain", 5, -Sum(y[i] * (KroneckerDelta(i, k) + q[k]), (i, 1, K)), "Jacobian sign"),
    ("chain", 6, -y[k] * (1 - q[k]) - SumExcept(y[i] * (KroneckerDelta(i, k) - q[k]), (i, 1, K), k)
     + y[k], "an extra term"),
    ("softmax-jacobian", 7, q[i] * (1 - q[k]), "diagonal case used for every i"),
    ("hessian", 3, Sum(y[i], (i, 1, K)) * q[k] * (KroneckerDelta(k, l) + q[l]), "Hessian sign"),
    ("temperature", 13, (p[k] - y[k]) * T, "times T instead of divided"),
    ("class-weights", 11, q[k] * Sum(y[i], (i, 1, K)) - w[k] * y[k], "weights lost in the sum"),
    ("label-smoothing", 6, q[k] - (1 - epsilon) * KroneckerDelta(k, c), "ε/K forgotten"),
    ("log-sigmoid", 5, -log(1 + exp(-z[k])), "complement taken for the sigmoid itself"),
    ("sigmoid-bce", 5, -Sum(y[i] * KroneckerDelta(i, k) * (1 - sig[i]), (i, 1, K)), "a term lost"),
    ("batch-mean", 6, Q[m, k] - Y[m, k], "the 1/N of the mean lost"),
    ("linear-layer", 8, (q[k] - y[k]) * x[k], "input index mixed up"),
    ("logsumexp", 3, -Sum(y[i] * (z[i] + log(Sum(exp(z[j]), (j, 1, K)))), (i, 1, K)), "log of quotient"),
]


@pytest.mark.parametrize("name, number, expr, what", WRONG, ids=[w[3] for w in WRONG])
def test_wrong_step_is_rejected_by_name_number_and_rule(name, number, expr, what):
    d = build(name)
    bad = _tamper(d, number, expr=expr)
    rule = d.steps[number - 1].rule
    with pytest.raises(CheckError, match=rf"derivation '{name}', step {number} \({rule}\) does not hold"):
        check.check(bad)


def test_probability_identity_without_the_fact_is_rejected():
    # Claim Σ_{i≠k} y_i = 1 - y_k without assuming Σ y = 1: false for arbitrary targets.
    d = build("chain")
    bad = _tamper(d, 8, facts=frozenset())
    with pytest.raises(CheckError, match="step 8"):
        check.check(bad)


def test_a_derivative_of_an_abbreviation_is_not_taken_as_zero():
    # SymPy alone would say ∂q_i/∂z_k = 0 because q is a separate symbol.
    lhs = Derivative(q[i], z[k])
    bad = Derivation("bad", "t", "d", goal=0 * q[i],
                     steps=(Step(lhs, lhs, ("definition-softmax",)),
                            Step(lhs, 0 * q[i], ("logit-derivative",))))
    assert not check.symbolically_equal(lhs, 0 * q[i])
    with pytest.raises(CheckError, match="step 2"):
        check.check(bad)


def test_result_must_be_proved_equal_to_the_goal():
    d = dataclasses.replace(build("chain"), goal=q[k] - 2 * y[k])
    with pytest.raises(CheckError, match="not proved equal to the goal"):
        check.check(d)


def test_targets_follow_the_facts():
    import numpy as np
    rng = np.random.default_rng(1)
    probs = check.sample_targets(frozenset({PROBABILITY}), 5, {}, rng)
    assert abs(probs.sum() - 1) < 1e-12 and (probs >= 0).all()
    free = check.sample_targets(frozenset(), 50, {}, rng)
    assert (free < 0).any() and abs(free.sum() - 1) > 1e-3


def test_fingerprint_changes_with_any_step():
    d = build("chain")
    assert check.fingerprint(d) == check.fingerprint(build("chain"))
    assert check.fingerprint(_tamper(d, 9, expr=q[k] + y[k])) != check.fingerprint(d)


def test_concretize_expands_everything():
    expr = check.concretize(Derivative(E, z[k]), 3, {k: 2})
    assert not expr.has(Derivative, Sum, q)
    value = check.numeric_value(expr, {z: [1.0, 2.0, 0.5], y: [0.0, 1.0, 0.0]})
    assert value == pytest.approx(-0.3714682866)
