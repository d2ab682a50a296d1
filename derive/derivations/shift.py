"""Shift invariance: softmax(z - a) = softmax(z) for every real a, and log q_k by log-sum-exp.

The code generator takes a = max_j z_j, so that every exponent is at most 0 and nothing
overflows; this derivation is why that choice changes nothing.
"""
from sympy import Sum, exp, log

from ..model import K, a, j, k, q, z
from ..records import Derivation, Script


def build() -> Derivation:
    shifted_sum = Sum(exp(z[j] - a), (j, 1, K))
    s = Script("shift-invariance", "Shift invariance of the softmax",
               "Shift every logit by the same real $a$: the softmax does not change, and its "
               "logarithm is written with exponentials that cannot overflow when $a$ is the "
               "largest logit.",
               lhs=q[k], goal=z[k] - a - log(shifted_sum))
    s.step("definition-softmax")
    s.step("shift-softmax", by=a)
    s.step("log-both-sides", lhs=log(q[k]))
    s.step("log-quotient")
    return s.done()
