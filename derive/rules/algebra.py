"""Rules that use facts about the target, and plain algebra (expand, factor)."""
from __future__ import annotations

from sympy import Indexed, Mul, S, Sum, expand_mul, factor_terms

from ..model import ONE_HOT, PROBABILITY, SumExcept, Y, c, y, y_ls
from . import rule

# ---- facts about the target ------------------------------------------------------------------

@rule("probability-sum", "Σ_i y_i = 1", PROBABILITY.text, fact=PROBABILITY,
      tex=r"$\textstyle\sum_i y_i = 1$")
def _probability_sum(expr):
    if not isinstance(expr, Sum) or len(expr.limits) != 1:
        return None
    f, index = expr.function, expr.limits[0][0]
    if f == y[index] or (isinstance(f, Indexed) and f.base == Y and f.indices[-1] == index):
        return S.One  # the target, or each row of a batch's targets, sums to 1
    return None


@rule("probability-complement", "Σ_{i≠k} y_i = 1 - y_k",
      "the entries of y other than y_k sum to 1 - y_k, since all of them sum to 1",
      fact=PROBABILITY, tex=r"$\textstyle\sum_{i \neq k} y_i = 1 - y_k$")
def _probability_complement(expr):
    if isinstance(expr, SumExcept) and expr.function == y[expr.index]:
        return 1 - y[expr.skip]
    return None


@rule("smoothed-sum", "Σ_i y'_i = 1",
      "the smoothed target sums to 1, as the first part of label-smoothing shows",
      tex=r"$\textstyle\sum_i y'_i = 1$")
def _smoothed_sum(expr):
    if isinstance(expr, Sum) and len(expr.limits) == 1 and expr.function == y_ls[expr.limits[0][0]]:
        return S.One
    return None


@rule("one-hot-select", "one-hot target", "y_i = δ_ic, so Σ_i y_i f_i = f_c and Σ_i y_i = 1",
      fact=ONE_HOT, tex="special case: $y$ one-hot at class $c$")
def _one_hot_select(expr):
    if not isinstance(expr, Sum) or len(expr.limits) != 1:
        return None
    index = expr.limits[0][0]
    factors = Mul.make_args(expr.function)
    if y[index] not in factors:
        return None
    rest = Mul(*(f for f in factors if f != y[index]))
    return rest.subs(index, c)


# ---- algebra ---------------------------------------------------------------------------------

@rule("expand", "algebra", "multiply out and collect like terms", whole=True)
def _expand(expr):
    return expand_mul(expr)


@rule("factor", "algebra", "take out the common factor", whole=True)
def _factor(expr):
    return factor_terms(expr)
