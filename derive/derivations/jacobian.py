"""The softmax Jacobian ∂q_i/∂z_k = q_i(δ_ik - q_k), by the quotient rule.

A lemma of the chain-rule route, also available on its own.
"""
from sympy import Derivative, KroneckerDelta

from ..model import i, k, q, z
from ..records import Derivation, Script


def build() -> Derivation:
    s = Script("softmax-jacobian", "Jacobian of the softmax",
               "Differentiate the softmax by the quotient rule.",
               lhs=Derivative(q[i], z[k]), goal=q[i] * (KroneckerDelta(i, k) - q[k]))
    s.step("definition-softmax")
    s.step("quotient-rule")
    s.step("exp-derivative", "exp-sum-derivative")
    s.step("logit-derivative")
    s.step("expand")
    s.step("fold-softmax")
    s.step("factor")
    return s.done()
