"""Stage 4: the checker proves correct steps and rejects wrong ones."""
import dataclasses

import pytest
from sympy import Derivative, KroneckerDelta, Max, Sum, exp, log

import derive
from derive import check
from derive.derivations import build
from derive.errors import CheckError
from derive.model import (E, PROBABILITY, K, Q, SumExcept, Y, m, x, T, c, epsilon, i, j, k, l, p, q, sig, w,
                          y, z)
from derive.records import Derivation, Step


@pytest.mark.parametrize("name", derive.names())
def test_every_step_is_checked(name, reports):
    d, report = build(name), reports[name]
    assert [s.number for s in report.steps] == list(range(1, len(d.steps) + 1))
    # K = 2..8, at least 100 samples for each assignment of the free indices
    for step, step_report in zip(d.steps, report.steps):
        names = check.core._free_indices(check.core._reference(d.steps, step_report.number - 1),
                                         step.expr)
        assignments = sum(min(check.sampling.ASSIGNMENTS, size ** len(names)) for size in range(2, 9))
        assert step_report.numeric >= 100 * assignments >= 700
    assert report.samples == sum(s.numeric for s in report.steps)


def test_assignments_cover_equal_and_distinct_indices():
    import numpy as np
    rng = np.random.default_rng(0)
    assert check.sampling.assignments([k], 4, rng) == [{k: v} for v in (1, 2, 3, 4)]
    chosen = check.sampling.assignments([k, l], 5, rng)
    assert len(chosen) == check.sampling.ASSIGNMENTS
    assert chosen[0][k] == chosen[0][l] and chosen[1][k] != chosen[1][l]


def _tamper(d: Derivation, number: int, **changes) -> Derivation:
    steps = list(d.steps)
    steps[number - 1] = dataclasses.replace(steps[number - 1], **changes)
    return dataclasses.replace(d, steps=tuple(steps))


WRONG = [
    # name, step, replacement expression, why it is wrong
    ("chain", 10, q[k] + y[k], "sign of y_k"),
    ("chain", 5, -Sum(y[i] * (KroneckerDelta(i, k) + q[k]), (i, 1, K)), "Jacobian sign"),
    ("chain", 7, -y[k] * (1 - q[k]) - SumExcept(y[i] * (KroneckerDelta(i, k) - q[k]), (i, 1, K), k)
     + y[k], "an extra term"),
    ("softmax-jacobian", 7, q[i] * (1 - q[k]), "diagonal case used for every i"),
    ("hessian", 3, Sum(y[i], (i, 1, K)) * q[k] * (KroneckerDelta(k, l) + q[l]), "Hessian sign"),
    ("temperature", 9, (p[k] - y[k]) * T, "times T instead of divided"),
    ("class-weights", 8, q[k] * Sum(y[i], (i, 1, K)) - w[k] * y[k], "weights lost in the sum"),
    ("label-smoothing", 6, q[k] - (1 - epsilon) * KroneckerDelta(k, c), "ε/K forgotten"),
    ("log-sigmoid", 6, -log(1 + exp(-z[k])), "complement taken for the sigmoid itself"),
    ("sigmoid-bce", 5, -Sum(y[i] * KroneckerDelta(i, k) * (1 - sig[i]), (i, 1, K)), "a term lost"),
    ("batch-mean", 5, Q[m, k] - Y[m, k], "the 1/N of the mean lost"),
    ("linear-layer", 11, (q[k] - y[k]) * x[k], "input index mixed up"),
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
    bad = _tamper(d, 9, facts=frozenset())
    with pytest.raises(CheckError, match="step 9"):
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


def test_evaluator_differentiates_the_definitions():
    value = derive.evaluate(Derivative(E, z[k]), [1.0, 2.0, 0.5], [0.0, 1.0, 0.0], k=1)
    import numpy as np
    q1 = np.exp(2.0) / np.exp([1.0, 2.0, 0.5]).sum()
    assert value == pytest.approx(q1 - 1, abs=1e-14)


def _central(f, z0, n, h=1e-5):
    import numpy as np
    up, down = np.array(z0, dtype=float), np.array(z0, dtype=float)
    up[n] += h
    down[n] -= h
    return (f(up) - f(down)) / (2 * h)


@pytest.mark.parametrize("expr", [E, Sum(exp(z[i]) * log(q[i]) ** 2, (i, 1, K)),
                                  log(Sum(q[j] ** 3 / (1 + sig[j]), (j, 1, K)))])
def test_evaluator_derivatives_match_central_differences(expr):
    """The checker's derivatives are automatic differentiation of the expression itself:
    compare them with finite differences of its values."""
    z0, y0 = [0.3, -1.2, 2.0, 0.7], [0.1, 0.2, 0.3, 0.4]
    for n in range(4):
        exact = derive.evaluate(Derivative(expr, z[k]), z0, y0, k=n)
        approx = _central(lambda v: derive.evaluate(expr, v, y0), z0, n)
        assert exact == pytest.approx(approx, rel=1e-7, abs=1e-8)


def test_evaluator_second_derivatives_and_derivatives_by_an_abbreviation():
    z0, y0 = [0.3, -1.2, 2.0], [0.2, 0.5, 0.3]
    for kk, ll in [(0, 0), (0, 2), (1, 2)]:
        mixed = derive.evaluate(Derivative(E, z[k], z[l]), z0, y0, k=kk, l=ll)
        approx = _central(lambda v: derive.evaluate(Derivative(E, z[k]), v, y0, k=kk), z0, ll)
        assert mixed == pytest.approx(approx, rel=1e-7, abs=1e-8)
    # ∂ log q_i / ∂q_i = 1/q_i: q is held fixed as a variable, z does not move
    by_q = derive.evaluate(Derivative(log(q[i]), q[i]), z0, y0, i=1)
    assert by_q == pytest.approx(1 / derive.evaluate(q[i], z0, y0, i=1), rel=1e-12)


def test_a_step_not_proved_symbolically_is_still_checked_numerically():
    # log-sum-exp route step 6 (differentiate term by term) holds different derivatives on its
    # two sides: no symbolic proof is attempted, and the step passes numerically.
    d = build("chain")
    report = check.check(d)
    assert not report.steps[1].symbolic and report.steps[1].numeric > 0
    assert report.proved == tuple(s.number for s in report.steps if s.symbolic)


def test_a_symbolic_attempt_that_would_blow_up_is_not_made():
    import time
    from derive.check import symbolic
    from derive.model import y, z
    huge = (q[i] + y[i] + z[i]) ** 64
    assert symbolic.expanded_terms(huge) > symbolic.TERMS
    assert symbolic.expanded_terms((q[i] + y[i]) ** 2 * (z[i] + 1)) == 6
    start = time.monotonic()
    assert not check.symbolically_equal(huge, huge.expand(power_exp=False, mul=False,
                                                            multinomial=False) + 0 * q[k] + 1)
    assert time.monotonic() - start < 1.0
    # the same equality, small enough, is proved
    assert check.symbolically_equal((q[i] + y[i]) ** 2, q[i]**2 + 2*q[i]*y[i] + y[i]**2)


WRONG_NUMERICALLY = [
    # name, step, change to the step's expression, why only some samples see it
    ("chain", 10, lambda e: e * (1 + 1e-6), "wrong by 1e-6 relative"),
    ("hessian", 5, lambda e: e + (1 - KroneckerDelta(k, l)) * q[k] * q[l], "only for k ≠ l"),
    ("logsumexp", 8, lambda e: e + (K - 2) * (K - 3) * q[k], "only for K >= 4"),
    ("chain", 10, lambda e: e + Sum(Max(0, z[i] - 3), (i, 1, K)), "only where some z_i > 3"),
    ("softmax-jacobian", 7, lambda e: e + 1e-6 * KroneckerDelta(i, k) * q[i],
     "only on the diagonal, by 1e-6"),
]


@pytest.mark.parametrize("name, number, change, what", WRONG_NUMERICALLY,
                         ids=[w[3] for w in WRONG_NUMERICALLY])
def test_a_step_wrong_somewhere_only_is_rejected(name, number, change, what):
    d = build(name)
    bad = _tamper(d, number, expr=change(d.steps[number - 1].expr))
    with pytest.raises(CheckError, match=rf"step {number} .* does not hold"):
        check.check(bad)


def test_a_bound_index_is_never_taken_for_a_free_index_of_the_same_name():
    """SymPy may hold two equal index symbols that are different objects; inside a sum over i
    the index is the sum's, even where the point also gives a free i a value."""
    import numpy as np
    from sympy import Symbol
    from sympy.core.cache import clear_cache

    from derive.check.numeric import Point, evaluate
    clear_cache()
    other_i = Symbol("i", integer=True, positive=True)
    assert other_i == i and other_i is not i
    expr = Sum(y[i] * z[i], (other_i, 1, K))  # the body's i and the limit's i: two objects
    z0, y0 = np.array([[1.0, 2.0, 3.0]]), np.array([[0.5, 0.25, 0.25]])
    point = Point(3, 1, {z: z0, y: y0}, indices={i: np.array([2])})
    assert evaluate(expr, point)[0] == pytest.approx(0.5 + 0.5 + 0.75)


def test_an_aside_after_an_aside_is_checked_against_it():
    d = build("class-weights")
    assert [s.aside for s in d.steps[-3:]] == [True, True, True]
    assert d.steps[-1].expr == w[c] * (q[k] - KroneckerDelta(k, c))
    assert d.continues(len(d.steps) - 1) and not d.continues(len(d.steps) - 3)
    check.check(d)
    # w_k (q_k - δ_kc) equals the main result's special case only at k = c: caught at that step
    bad = _tamper(d, len(d.steps), expr=w[k] * (q[k] - KroneckerDelta(k, c)))
    with pytest.raises(CheckError, match=f"step {len(d.steps)}"):
        check.check(bad)
