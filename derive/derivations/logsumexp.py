"""The log-sum-exp route: rewrite E with log-sum-exp, then differentiate term by term.

Follows the order of "Cross Entropy Loss Derivative" (R. Bahumi), for any target y; the
probability fact Σ_i y_i = 1 enters only in the last step, and the one-hot case is shown aside.
The two halves of the route are also used by ``temperature`` and ``class-weights``.
"""
from sympy import Derivative

from ..model import E, k, q, y, z
from ..records import Derivation, Script


def rewrite_with_log_sum_exp(s: Script, *definitions: str) -> None:
    """Unfold the loss and its softmax (``definitions``), then split log q_i with log-sum-exp."""
    for definition in definitions:
        s.step(definition)
    s.step("log-quotient")
    s.step("sum-linearity")


def differentiate_term_by_term(s: Script, loss, exponent_rules=("exp-derivative",
                                                                  "logit-derivative")) -> None:
    """Differentiate the rewritten ``loss`` by z_k, one term at a time, back to the softmax."""
    s.step("differentiate", wrt=z[k], lhs=Derivative(loss, z[k]))
    s.step("sum-rule", "constant-factor")
    s.step("logit-derivative", "log-derivative")
    s.step("kronecker-collapse", "sum-rule")
    s.step(*exponent_rules)
    s.step("kronecker-collapse")
    s.step("fold-softmax")


def build() -> Derivation:
    s = Script("logsumexp", "Gradient of the cross-entropy by log-sum-exp",
               "Rewrite the cross-entropy with log-sum-exp, then differentiate it term by term.",
               lhs=E, goal=q[k] - y[k])
    rewrite_with_log_sum_exp(s, "definition-cross-entropy", "definition-softmax")
    s.aside("one-hot-select")
    differentiate_term_by_term(s, E)
    s.step("probability-sum")
    return s.done()
