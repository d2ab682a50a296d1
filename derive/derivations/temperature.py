"""Temperature: the cross-entropy of p = softmax(z / T), differentiated by log-sum-exp.

The same route as ``logsumexp``; the factor 1/T comes out of ∂(z_j / T)/∂z_k.
"""
from ..model import E_T, T, k, p, y
from ..records import Derivation, Script
from .logsumexp import differentiate_term_by_term, rewrite_with_log_sum_exp


def build() -> Derivation:
    s = Script("temperature", "Gradient of the cross-entropy at temperature $T$",
               "Divide the logits by a temperature $T$ before the softmax, "
               "$p_i = e^{z_i/T} / \\sum_j e^{z_j/T}$; the gradient is the usual one, divided "
               "by $T$.",
               lhs=E_T, goal=(p[k] - y[k]) / T)
    rewrite_with_log_sum_exp(s, "definition-tempered-cross-entropy", "definition-tempered-softmax",
                             together=True)
    s.step("probability-sum")
    differentiate_term_by_term(s, E_T, fold="fold-tempered-softmax")
    s.step("factor")
    return s.done()
