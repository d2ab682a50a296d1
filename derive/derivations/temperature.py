"""Temperature: the cross-entropy of p = softmax(z / T), differentiated by log-sum-exp.

The same route as ``logsumexp``; the factor 1/T comes out of ∂(z_j / T)/∂z_k.
"""
from sympy import Derivative

from ..model import E_T, T, k, p, y, z
from ..records import Derivation, Script


def build() -> Derivation:
    s = Script("temperature", "Gradient of the cross-entropy at temperature T",
               "Divide the logits by a temperature T before the softmax; the gradient is the "
               "usual one, divided by T.",
               lhs=E_T, goal=(p[k] - y[k]) / T)
    s.step("definition-tempered-cross-entropy")
    s.step("definition-tempered-softmax")
    s.step("log-quotient")
    s.step("sum-linearity")
    s.step("differentiate", wrt=z[k], lhs=Derivative(E_T, z[k]))
    s.step("sum-rule", "constant-factor")
    s.step("logit-derivative", "log-derivative")
    s.step("kronecker-collapse", "sum-rule")
    s.step("exp-derivative", "constant-factor", "logit-derivative")
    s.step("kronecker-collapse")
    s.step("fold-softmax")
    s.step("probability-sum")
    s.step("factor")
    return s.done()
