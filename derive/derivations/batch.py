"""The mean loss of a batch of N examples: each example's gradient, divided by N.

The examples are independent (the loss of example n reads row n of the logits only), so the
derivative of the mean collapses to one example's gradient, the one ``any-target`` derives.
"""
from sympy import Derivative

from ..model import L, N, Q, Y, Z, k, m
from ..records import Derivation, Script


def build() -> Derivation:
    s = Script("batch-mean", "Gradient of the mean loss of a batch",
               "Average the cross-entropy over $N$ examples; each example's logits get that "
               "example's gradient, divided by $N$.",
               lhs=Derivative(L, Z[m, k]), goal=(Q[m, k] - Y[m, k]) / N, lemmas=("any-target",))
    s.step("definition-batch-mean")
    s.step("sum-rule", "constant-factor")
    s.step("independent-examples")
    s.step("kronecker-collapse")
    s.step("gradient-lemma", "probability-rows")
    return s.done()
