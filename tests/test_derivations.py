"""Stage 3: the derivation scripts and the records they produce."""
import dataclasses

import pytest
from sympy import Derivative, KroneckerDelta, Piecewise, Sum, simplify

import derive
from derive.errors import UnknownDerivationError
from derive.model import E, PROBABILITY, K, i, k, q, y, z


def test_names():
    assert derive.names() == ["logsumexp", "chain", "softmax-jacobian", "shift-invariance",
                              "hessian", "temperature", "class-weights", "label-smoothing",
                              "log-sigmoid", "sigmoid-bce", "batch-mean", "linear-layer"]


def test_hessian(derivations):
    from derive.model import l
    d = derivations["hessian"]
    assert d.result == q[k] * KroneckerDelta(k, l) - q[k] * q[l]
    assert d.steps[0].lhs == Derivative(E, z[k], z[l])
    general = [s for s in d.main_steps if PROBABILITY not in s.facts][-1].expr
    assert simplify(general - Sum(y[i], (i, 1, K)) * q[k] * (KroneckerDelta(k, l) - q[l])) == 0


@pytest.mark.parametrize("name", ["logsumexp", "chain"])
def test_both_routes_end_at_q_minus_y(derivations, name):
    d = derivations[name]
    assert d.result == q[k] - y[k]
    assert d.main_steps[-1].lhs == Derivative(E, z[k])


def test_both_routes_agree(derivations):
    assert simplify(derivations["logsumexp"].result - derivations["chain"].result) == 0


def test_lemma(derivations):
    d = derivations["softmax-jacobian"]
    assert d.result == q[i] * (KroneckerDelta(i, k) - q[k])
    assert "softmax-jacobian" in derivations["chain"].lemmas
    assert any("softmax-jacobian" in s.rules for s in derivations["chain"].steps)


@pytest.mark.parametrize("name", derive.names())
def test_steps_are_for_symbolic_k_and_never_piecewise(derivations, name):
    for step in derivations[name].steps:
        assert not step.expr.has(Piecewise)
        assert step.rule and step.why and step.title
    if name != "log-sigmoid":  # an identity of one entry; the others sum over K classes
        assert any(s.expr.has(K) for s in derivations[name].steps)


@pytest.mark.parametrize("name", ["logsumexp", "chain"])
def test_probability_fact_enters_only_at_the_end(derivations, name):
    steps = derivations[name].main_steps
    first = next(n for n, s in enumerate(steps) if PROBABILITY in s.facts)
    assert first >= len(steps) - 2
    assert all(PROBABILITY in s.facts for s in steps[first:])
    assert derivations[name].facts == frozenset({PROBABILITY})


def test_one_hot_case_is_shown_aside(derivations):
    aside = [s for s in derivations["logsumexp"].steps if s.aside]
    assert len(aside) == 1 and aside[0].rules == ("one-hot-select",)


def test_records_are_immutable(derivations):
    with pytest.raises(dataclasses.FrozenInstanceError):
        derivations["chain"].steps[0].rules = ("x",)


def test_unknown_derivation():
    with pytest.raises(UnknownDerivationError, match="unknown derivation 'nope'"):
        derive.derivation("nope")


def test_latex_display_in_jupyter(derivations):
    shown = derivations["chain"]._repr_latex_()
    assert shown.startswith("$$\\begin{aligned}") and shown.endswith("\\end{aligned}$$")


def test_a_script_step_that_does_not_apply_names_the_step():
    from derive.errors import RuleDoesNotApplyError
    from derive.records import Script
    script = Script("demo", "t", "d", lhs=E, goal=E)
    script.step("definition-cross-entropy")
    with pytest.raises(RuleDoesNotApplyError, match=r"derivation 'demo', step 2: rule 'quotient-rule'"):
        script.step("quotient-rule")
