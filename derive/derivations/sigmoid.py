"""Independent sigmoids, one a class, with binary cross-entropy (multi-label classification).

``log-sigmoid`` writes log σ and log(1 - σ) as -log(1 + e^{∓z}), which the generated code
evaluates without overflow; ``sigmoid-bce`` differentiates the loss to σ_k - y_k.
"""
from sympy import Derivative, exp, log

from ..model import E_b, k, sig, y, z
from ..records import Derivation, Script


def build_log_sigmoid() -> Derivation:
    s = Script("log-sigmoid", "Logarithms of the sigmoid",
               "Write the logarithms of the sigmoid and of its complement with $\\log(1 + e^u)$, "
               "which can be computed for logits of any size.",
               lhs=log(sig[k]), goal=-log(1 + exp(z[k])))
    s.step("definition-sigmoid")
    s.step("log-quotient")
    s.step("definition-sigmoid", lhs=log(1 - sig[k]), start=True)
    s.step("common-denominator")
    s.step("multiply-through")
    s.step("log-quotient")
    return s.done()


def build_sigmoid_bce() -> Derivation:
    s = Script("sigmoid-bce", "Gradient of the binary cross-entropy of independent sigmoids",
               "Give each class its own sigmoid and binary cross-entropy, as in multi-label "
               "classification; the gradient has the same form as for the softmax.",
               lhs=Derivative(E_b, z[k]), goal=sig[k] - y[k], lemmas=("sigmoid-derivative",))
    s.step("definition-binary-cross-entropy")
    s.step("sum-rule", "constant-factor")
    s.step("log-derivative")
    s.step("sum-rule", "constant-derivative", "constant-factor")
    s.step("sigmoid-derivative")
    s.step("cancel")
    s.step("factor")
    s.step("kronecker-collapse")
    s.step("expand")
    return s.done()


def build_sigmoid_derivative() -> Derivation:
    s = Script("sigmoid-derivative", "Derivative of the sigmoid",
               "Differentiate the sigmoid by the power rule; the result is written with the "
               "sigmoid itself.",
               lhs=Derivative(sig[k], z[k]), goal=sig[k] * (1 - sig[k]))
    s.step("definition-sigmoid")
    s.step("power-rule")
    s.step("sum-rule", "constant-derivative")
    s.step("exp-derivative")
    s.step("constant-factor")
    s.step("logit-self-derivative")
    s.step("sigmoid-product")
    return s.done()
