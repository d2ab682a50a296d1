"""Label smoothing: the target y' = (1 - ε) one-hot + ε/K sums to 1, so the gradient is q - y'.

First a short chain shows Σ_i y'_i = 1; then the gradient of ``any-target``, which holds for any
target, is used with y'.
"""
from sympy import Derivative, KroneckerDelta, Sum

from ..model import E_ls, K, c, epsilon, i, k, q, y_ls, z
from ..records import Derivation, Script


def build() -> Derivation:
    s = Script("label-smoothing", "Gradient of the cross-entropy with label smoothing",
               "Smooth the one-hot target at class $c$ by $\\epsilon$; the smoothed target "
               "still sums to 1, so the gradient is the softmax less the smoothed target.",
               lhs=Sum(y_ls[i], (i, 1, K)),
               goal=q[k] - (1 - epsilon) * KroneckerDelta(k, c) - epsilon / K,
               lemmas=("any-target",))
    s.step("definition-smoothed-target")
    s.step("sum-linearity", "kronecker-collapse", "sum-of-constant")
    s.step("cancel")
    s.step("gradient-lemma", lhs=Derivative(E_ls, z[k]), start=True)
    s.step("smoothed-sum")
    s.step("definition-smoothed-target")
    return s.done()
