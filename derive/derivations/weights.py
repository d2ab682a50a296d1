"""Class weights: E_w = -Σ_i w_i y_i log q_i, differentiated by log-sum-exp.

The weights go wherever the target goes: ∂E_w/∂z_k = q_k Σ_i w_i y_i - w_k y_k, for any
target and any weights; for a one-hot target, w_c (q_k - δ_kc).
"""
from sympy import Sum

from ..model import E_w, K, i, k, q, w, y
from ..records import Derivation, Script
from .logsumexp import differentiate_term_by_term, rewrite_with_log_sum_exp


def build() -> Derivation:
    s = Script("class-weights", "Gradient of the class-weighted cross-entropy",
               "Weigh the loss on each class; the weights go wherever the target goes.",
               lhs=E_w, goal=q[k] * Sum(w[i] * y[i], (i, 1, K)) - w[k] * y[k])
    rewrite_with_log_sum_exp(s, "definition-weighted-cross-entropy", "definition-softmax")
    differentiate_term_by_term(s, E_w)
    s.aside("one-hot-select", "one-hot-entry")
    s.aside("kronecker-select")
    s.aside("factor-common")
    return s.done()
