"""Stage 3: the derivation scripts and the records they produce."""
import dataclasses

import pytest
from sympy import Derivative, KroneckerDelta, Piecewise, Sum, simplify

import derive
from derive.errors import UnknownDerivationError
from derive.model import E, PROBABILITY, K, i, k, q, y, z


def test_names():
    assert derive.names() == ["logsumexp", "any-target", "chain", "softmax-jacobian",
                              "shift-invariance", "hessian", "temperature", "class-weights",
                              "label-smoothing", "log-sigmoid", "sigmoid-derivative",
                              "sigmoid-bce", "batch-mean", "linear-layer"]


def test_hessian(derivations):
    from derive.model import diag_q, l, outer_q
    d = derivations["hessian"]
    assert d.main_steps[-2].expr == q[k] * KroneckerDelta(k, l) - q[k] * q[l]
    assert d.result == diag_q[k, l] - outer_q[k, l]  # diag(q) - q qᵀ, entry (k, l)
    assert d.steps[0].lhs == Derivative(E, z[k], z[l])
    general = derivations["any-target"].result  # what the code uses for any target
    assert general == Sum(y[i], (i, 1, K)) * q[k] * (KroneckerDelta(k, l) - q[l])


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
    if name not in ("log-sigmoid", "sigmoid-derivative", "hessian", "batch-mean"):  # no K in these
        assert any(s.expr.has(K) for s in derivations[name].steps)


def test_logsumexp_reads_as_its_article(derivations):
    """At most 8 lines for a probability target: Σ_i y_i = 1 is used as soon as the loss is
    rewritten, and nothing carries (Σ_i y_i) after it."""
    steps = derivations["logsumexp"].main_steps
    assert len(steps) <= 8
    first = next(n for n, s in enumerate(steps) if PROBABILITY in s.facts)
    assert first <= 3 and all(PROBABILITY in s.facts for s in steps[first:])
    assert not any(s.expr.has(Sum(y[i], (i, 1, K))) for s in steps[first:])


def test_any_target_keeps_the_general_gradient(derivations):
    d = derivations["any-target"]
    gradient = [s.expr for s in d.steps if s.lhs == Derivative(E, z[k])][-1]
    assert gradient == Sum(y[i], (i, 1, K)) * q[k] - y[k]
    assert not any(PROBABILITY in s.facts for s in d.steps)


@pytest.mark.parametrize("name", ["logsumexp", "chain"])
def test_both_routes_close_with_the_one_hot_form(derivations, name):
    from derive.model import ONE_HOT, c
    (aside,) = [s for s in derivations[name].steps if s.aside]
    assert aside is derivations[name].steps[-1] and ONE_HOT in aside.facts
    assert aside.expr == q[k] - KroneckerDelta(k, c)


def test_class_weights_close_with_the_one_hot_form(derivations):
    from derive.model import c, w
    first, selected, factored = [s for s in derivations["class-weights"].steps if s.aside]
    assert first.expr == w[c] * q[k] - w[k] * KroneckerDelta(k, c)
    assert factored.expr == w[c] * (q[k] - KroneckerDelta(k, c))
    assert factored.rules == ("factor-common",)


def test_the_linear_layer_is_written_in_matrix_form(derivations):
    from derive.model import d, outer_grad
    from derive.render.printers import latex
    last = derivations["linear-layer"].steps[-1]
    assert last.aside and last.expr == outer_grad[k, d]
    assert latex(last.expr) == r"\left[\left(q - y\right) x^{\top}\right]_{kd}"
    assert not derivations["linear-layer"].special(len(derivations["linear-layer"].steps) - 1)


def test_the_sigmoid_derivative_shows_its_sign_turn_and_cites_no_other_index(derivations):
    steps = derivations["sigmoid-derivative"].steps
    assert [s.rules for s in steps[4:6]] == [("constant-factor",), ("logit-self-derivative",)]
    assert not steps[4].expr.could_extract_minus_sign()  # -(...)·∂(-z_k) is +(...)·∂z_k


def test_label_smoothing_shows_its_target_sums_to_one_in_three_rows(derivations):
    steps = derivations["label-smoothing"].steps
    ones = [n for n, s in enumerate(steps) if s.expr == 1]
    assert ones == [2]


def test_the_sigmoid_derivative_is_derived(derivations):
    from derive.model import sig
    assert derivations["sigmoid-derivative"].result == sig[k] * (1 - sig[k])
    assert "sigmoid-derivative" in derivations["sigmoid-bce"].lemmas


@pytest.mark.parametrize("name", derive.names())
def test_one_idea_a_line(derivations, name):
    """A step cites at most two rules, unless they are all of one kind."""
    from derive import rules
    for step in derivations[name].steps:
        kinds = {rules.get(r).kind for r in step.rules}
        assert len(step.rules) <= 2 or len(kinds) == 1, (name, step.rules)


@pytest.mark.parametrize("name, cancelled", [("chain", "q"), ("sigmoid-bce", "sigma")])
def test_a_cancellation_is_a_step_of_its_own(derivations, name, cancelled):
    from sympy import UnevaluatedExpr
    steps = derivations[name].steps
    n = next(n for n, s in enumerate(steps) if s.rules == ("cancel",))
    before, after = steps[n - 1].expr, steps[n].expr
    held = before.atoms(UnevaluatedExpr)
    assert held and all(cancelled in str(u) for u in held)  # 1/q_i (or 1/σ_i) still there
    assert not after.atoms(UnevaluatedExpr)


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
