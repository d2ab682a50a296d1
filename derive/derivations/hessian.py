"""The Hessian of the cross-entropy: differentiate the gradient once more.

Starts from the gradient (Σ_i y_i) q_k - y_k of ``any-target`` and uses the softmax Jacobian;
for a target that sums to 1 it is diag(q) - q qᵀ.
"""
from sympy import Derivative, KroneckerDelta

from ..model import E, k, l, q, z
from ..records import Derivation, Script


def build() -> Derivation:
    s = Script("hessian", "Hessian of the cross-entropy",
               "Differentiate the gradient of the cross-entropy once more, through the softmax "
               "Jacobian; for a target that sums to 1 it is $\\operatorname{diag}(q) - q q^{\\top}$.",
               lhs=Derivative(E, z[k], z[l]), goal=q[k] * KroneckerDelta(k, l) - q[k] * q[l],
               lemmas=("any-target", "softmax-jacobian"))
    s.step("gradient-lemma", "probability-sum")
    s.step("sum-rule", "constant-derivative")
    s.step("softmax-jacobian")
    s.step("expand")
    s.step("matrix-form")
    return s.done()
