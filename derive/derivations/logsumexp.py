"""The log-sum-exp route: rewrite E with log-sum-exp, then differentiate term by term.

Follows the order of "Cross Entropy Loss Derivative" (R. Bahumi), for any target y; the
probability fact Σ_i y_i = 1 enters only in the last step, and the one-hot case is shown aside.
"""
from sympy import Derivative

from ..model import E, q, y, z, k
from ..records import Derivation, Script


def build() -> Derivation:
    s = Script("logsumexp", "Gradient of the cross-entropy by log-sum-exp",
               "Rewrite the cross-entropy with log-sum-exp, then differentiate it term by term.",
               lhs=E, goal=q[k] - y[k])
    s.step("definition-cross-entropy")
    s.step("definition-softmax")
    s.step("log-quotient")
    s.step("sum-linearity")
    s.aside("one-hot-select")
    dE = Derivative(E, z[k])
    s.step("differentiate", wrt=z[k], lhs=dE)
    s.step("sum-rule", "constant-factor")
    s.step("logit-derivative", "log-derivative")
    s.step("kronecker-collapse", "sum-rule")
    s.step("exp-derivative", "logit-derivative")
    s.step("kronecker-collapse")
    s.step("fold-softmax")
    s.step("probability-sum")
    return s.done()
