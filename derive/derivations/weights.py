"""Class weights: E_w = -Σ_i w_i y_i log q_i, differentiated by log-sum-exp.

The weights go wherever the target goes: ∂E_w/∂z_k = q_k Σ_i w_i y_i - w_k y_k, for any
target and any weights.
"""
from sympy import Derivative, Sum

from ..model import E_w, K, i, k, q, w, y, z
from ..records import Derivation, Script


def build() -> Derivation:
    s = Script("class-weights", "Gradient of the class-weighted cross-entropy",
               "Weigh the loss on each class; the weights go wherever the target goes.",
               lhs=E_w, goal=q[k] * Sum(w[i] * y[i], (i, 1, K)) - w[k] * y[k])
    s.step("definition-weighted-cross-entropy")
    s.step("definition-softmax")
    s.step("log-quotient")
    s.step("sum-linearity")
    s.step("differentiate", wrt=z[k], lhs=Derivative(E_w, z[k]))
    s.step("sum-rule", "constant-factor")
    s.step("logit-derivative", "log-derivative")
    s.step("kronecker-collapse", "sum-rule")
    s.step("exp-derivative", "logit-derivative")
    s.step("kronecker-collapse")
    s.step("fold-softmax")
    return s.done()
