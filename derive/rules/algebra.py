"""Rules that use facts about the target, and plain algebra (expand, factor)."""
from __future__ import annotations

from sympy import Indexed, KroneckerDelta, Mul, S, Sum, UnevaluatedExpr, expand_mul, factor_terms

from ..model import ONE_HOT, PROBABILITY, SumExcept, Y, c, q, y, y_ls
from .registry import rule

# ---- facts about the target ------------------------------------------------------------------

@rule("probability-sum", "Σ_i y_i = 1", PROBABILITY.text, kind="fact", nodes=(Sum,), fact=PROBABILITY,
      tex=r"$\textstyle\sum_i y_i = 1$")
def _probability_sum(expr):
    if not isinstance(expr, Sum) or len(expr.limits) != 1:
        return None
    return S.One if expr.function == y[expr.limits[0][0]] else None


@rule("softmax-sum", "Σ_i q_i = 1", "the softmax is a probability vector: its entries sum to 1",
      kind="sum", nodes=(Sum,), tex=r"$\textstyle\sum_i q_i = 1$")
def _softmax_sum(expr):
    if isinstance(expr, Sum) and len(expr.limits) == 1 and expr.function == q[expr.limits[0][0]]:
        return S.One
    return None


@rule("probability-rows", "Σ_i Y_mi = 1",
      "each example's target is a probability vector: every row of Y sums to 1", kind="fact", nodes=(Sum,),
      fact=PROBABILITY, tex=r"$\textstyle\sum_i Y_{m,i} = 1$")
def _probability_rows(expr):
    if not isinstance(expr, Sum) or len(expr.limits) != 1:
        return None
    f, index = expr.function, expr.limits[0][0]
    if isinstance(f, Indexed) and f.base == Y and f.indices[-1] == index:
        return S.One
    return None


@rule("probability-complement", "Σ_{i≠k} y_i = 1 - y_k",
      "the entries of y other than y_k sum to 1 - y_k, since all of them sum to 1",
      kind="fact", nodes=(SumExcept,), fact=PROBABILITY, tex=r"$\textstyle\sum_{i \neq k} y_i = 1 - y_k$")
def _probability_complement(expr):
    if isinstance(expr, SumExcept) and expr.function == y[expr.index]:
        return 1 - y[expr.skip]
    return None


@rule("smoothed-sum", "Σ_i y'_i = 1",
      "the smoothed target sums to 1, as the first part of label-smoothing shows", kind="fact", nodes=(Sum,),
      tex=r"$\textstyle\sum_i y'_i = 1$")
def _smoothed_sum(expr):
    if isinstance(expr, Sum) and len(expr.limits) == 1 and expr.function == y_ls[expr.limits[0][0]]:
        return S.One
    return None


@rule("one-hot-select", "one-hot target", "y_i = δ_ic, so Σ_i y_i f_i = f_c and Σ_i y_i = 1",
      kind="fact", nodes=(Sum,), fact=ONE_HOT, tex="$y$ one-hot at class $c$")
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

@rule("one-hot-entry", "one-hot target", "y_i = δ_ic: y is one-hot at class c", kind="fact", nodes=(Indexed,),
      fact=ONE_HOT, tex="$y$ one-hot at class $c$")
def _one_hot_entry(expr):
    if isinstance(expr, Indexed) and expr.base == y:
        return KroneckerDelta(expr.indices[0], c)
    return None


@rule("cancel", "cancel", "u (1/u) = 1 for u ≠ 0: q_i, σ_i and 1 - σ_i are never 0",
      kind="algebra", nodes=(UnevaluatedExpr,))
def _cancel(expr):
    return expr.args[0]  # a factor held apart joins the product, where it cancels


@rule("expand", "algebra", "multiply out and collect like terms", kind="algebra", whole=True)
def _expand(expr):
    return expand_mul(expr)


@rule("factor", "algebra", "take out the common factor", kind="algebra", whole=True)
def _factor(expr):
    return factor_terms(expr)
