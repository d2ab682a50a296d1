"""The last linear layer: z = W x + b, with W of symbolic shape K x D.

By the chain rule through the logits, every weight and bias gets the logits' gradient q - y
(from ``any-target``), times its input for a weight: ∂E/∂W = (q - y) xᵀ.
"""
from sympy import Derivative

from ..model import E_lin, W, b, d, g, i, k, q, x, y
from ..records import Derivation, Script


def build() -> Derivation:
    s = Script("linear-layer", "Gradient with respect to a linear layer's weights and biases",
               "Let the logits come from a linear layer $z = W x + b$; the chain rule through the "
               "logits gives each bias the logit's gradient and each weight that times its input.",
               lhs=Derivative(E_lin, b[k]), goal=(q[k] - y[k]) * x[d], lemmas=("any-target",))
    s.step("chain-through-logits")
    s.step("gradient-lemma", "probability-sum")
    s.step("sum-rule", "constant-derivative")
    s.step("bias-derivative")
    s.step("kronecker-collapse")
    s.step("chain-through-logits", lhs=Derivative(E_lin, W[k, d]), start=True)
    s.step("gradient-lemma", "probability-sum")
    s.step("sum-rule", "constant-factor", "constant-derivative")
    s.step("weight-derivative")
    s.step("kronecker-collapse", over=g)
    s.step("kronecker-collapse", over=i)
    s.aside("matrix-form")
    return s.done()
