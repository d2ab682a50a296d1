"""The chain-rule route: through log q_i and the softmax Jacobian.

Follows the order of "Back-propagation with Cross-Entropy and Softmax" (MLDawn): sum rule,
constant factor, chain rule, derivative of log, the Jacobian (the lemma ``softmax-jacobian``),
split off the i = k term, then Σ_{i≠k} y_i = 1 - y_k.
"""
from sympy import Derivative

from ..model import E, q, y, z, k
from ..records import Derivation, Script


def build() -> Derivation:
    s = Script("chain", "Gradient of the cross-entropy by the chain rule",
               "Differentiate the cross-entropy through the softmax outputs, by the chain rule "
               "and the softmax Jacobian.",
               lhs=Derivative(E, z[k]), goal=q[k] - y[k], lemmas=("softmax-jacobian",))
    s.step("definition-cross-entropy")
    s.step("sum-rule", "constant-factor")
    s.step("chain-rule")
    s.step("log-derivative")
    s.step("softmax-jacobian")
    s.step("cancel")
    s.step("split-term", at=k)
    s.step("kronecker-off-diagonal", "sum-linearity")
    s.step("probability-complement")
    s.step("expand")
    s.aside("one-hot-entry")
    return s.done()
