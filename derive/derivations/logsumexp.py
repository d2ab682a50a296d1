"""The log-sum-exp route: rewrite E with log-sum-exp, then differentiate it term by term.

``logsumexp`` follows "Cross Entropy Loss Derivative" (R. Bahumi) for a probability target: the
fact Σ_i y_i = 1 enters as soon as the loss is rewritten, and the one-hot case closes it.
``any-target`` takes the same route without that fact, to the gradient (Σ_i y_i) q_k - y_k that
holds for any target, which the other derivations cite as a lemma and the generated code uses.
The two halves of the route are also used by ``temperature`` and ``class-weights``.
"""
from sympy import Derivative, KroneckerDelta, Sum

from ..model import E, E_T, K, i, k, l, q, y, z
from ..records import Derivation, Script


def rewrite_with_log_sum_exp(s: Script, *definitions: str, together: bool = False) -> None:
    """Unfold the loss and its softmax (``definitions``, in one step with ``together``), then
    split log q_i with log-sum-exp."""
    if together:
        s.step(*definitions)
    else:
        for definition in definitions:
            s.step(definition)
    s.step("log-quotient", "sum-linearity")


def differentiate_term_by_term(s: Script, loss, fold: str = "fold-softmax") -> None:
    """Differentiate the rewritten ``loss`` by z_k, one term at a time, back to the softmax."""
    s.step("differentiate", wrt=z[k], lhs=Derivative(loss, z[k]))
    s.step("sum-rule", "constant-factor")
    s.step("log-derivative", "logit-derivative")
    s.step("exp-sum-derivative", "kronecker-collapse")
    s.step(fold)


def build() -> Derivation:
    s = Script("logsumexp", "Gradient of the cross-entropy by log-sum-exp",
               "Rewrite the cross-entropy with log-sum-exp, use that the target sums to 1, then "
               "differentiate term by term.",
               lhs=E, goal=q[k] - y[k])
    rewrite_with_log_sum_exp(s, "definition-cross-entropy", "definition-softmax", together=True)
    s.step("probability-sum")
    differentiate_term_by_term(s, E)
    s.aside("one-hot-entry")
    return s.done()


def build_any_target() -> Derivation:
    s = Script("any-target", "Gradients of the cross-entropy for any target",
               "The gradient, the gradient at temperature T and the Hessian without assuming "
               "that the target sums to 1: the forms the generated code uses for probability "
               "targets.",
               lhs=E, goal=Sum(y[i], (i, 1, K)) * q[k] * (KroneckerDelta(k, l) - q[l]),
               lemmas=("softmax-jacobian",))
    rewrite_with_log_sum_exp(s, "definition-cross-entropy", "definition-softmax")
    differentiate_term_by_term(s, E)
    s.step("definition-tempered-cross-entropy", lhs=E_T, start=True)
    s.step("definition-tempered-softmax")
    s.step("log-quotient", "sum-linearity")
    differentiate_term_by_term(s, E_T, fold="fold-tempered-softmax")
    s.step("factor")
    s.step("gradient-lemma", lhs=Derivative(E, z[k], z[l]), start=True)
    s.step("sum-rule", "constant-factor", "constant-derivative")
    s.step("softmax-jacobian")
    return s.done()
