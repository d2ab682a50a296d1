"""Rules for logarithms and for sums over a symbolic range: linearity, Kronecker deltas, split
terms (which use that a free index lies in 1..K)."""
from __future__ import annotations

from sympy import Add, KroneckerDelta, Mul, Pow, S, Sum, UnevaluatedExpr, expand_mul, log

from ..model import SumExcept
from .registry import _split_constant, rule

# ---- logarithms and sums ---------------------------------------------------------------------

@rule("log-quotient", "log of a quotient", "log(u/v) = log u - log v, and log e^u = u for real u",
      kind="algebra", nodes=(log,))
def _log_quotient(expr):
    if not isinstance(expr, log) or not isinstance(expr.args[0], (Mul, Pow)):
        return None
    factors = Mul.make_args(expr.args[0])
    den = [f.base ** -f.exp for f in factors if isinstance(f, Pow) and f.exp.is_negative]
    num = [f for f in factors if not (isinstance(f, Pow) and f.exp.is_negative)]
    if not den or (len(factors) == 1 and factors[0].exp != -1):
        return None
    return log(Mul(*num)) - log(Mul(*den))


def _linear_terms(function, index):
    """``function`` as a list of (constant factor, rest) with the constant free of ``index``."""
    terms = Add.make_args(function if isinstance(function, Add) else expand_mul(function))
    return [_split_constant(Mul.make_args(t), lambda f: f.has(index)) for t in terms]


@rule("sum-linearity", "linearity of the sum",
      "Σ_i (a_i + c b_i) = Σ_i a_i + c Σ_i b_i when c does not depend on i", kind="sum", nodes=(Sum, SumExcept))
def _sum_linearity(expr):
    if isinstance(expr, Sum) and len(expr.limits) == 1:
        make = lambda f: Sum(f, expr.limits[0])  # noqa: E731
        index = expr.limits[0][0]
    elif isinstance(expr, SumExcept):
        make = lambda f: SumExcept(f, expr.limits, expr.skip)  # noqa: E731
        index = expr.index
    else:
        return None
    terms = _linear_terms(expr.function, index)
    if len(terms) == 1 and terms[0][0] == 1:
        return None
    return Add(*(const * make(rest) for const, rest in terms))


@rule("sum-of-constant", "sum of a constant", "Σ_{i=1}^{K} f = K f when f does not depend on i",
      kind="sum", nodes=(Sum,))
def _sum_of_constant(expr):
    if not isinstance(expr, Sum) or len(expr.limits) != 1:
        return None
    index, lo, hi = expr.limits[0]
    # the count is held apart, so that what it cancels against cancels in a step of its own
    return None if expr.function.has(index) else UnevaluatedExpr(hi - lo + 1) * expr.function


@rule("split-term", "split off the i = k term", "Σ_i f_i = f_k + Σ_{i≠k} f_i, because 1 <= k <= K",
      kind="sum", nodes=(Sum,), tex="split off the $i = k$ term")
def _split_term(expr, at):
    if not isinstance(expr, Sum) or len(expr.limits) != 1:
        return None
    index = expr.limits[0][0]
    return expr.function.subs(index, at) + SumExcept(expr.function, expr.limits[0], at)


def _delta_partner(delta, index):
    """For ``δ(index, other)`` return ``other``; None when ``delta`` is not such a delta."""
    if isinstance(delta, KroneckerDelta) and index in delta.args:
        a, b = delta.args
        other = b if a == index else a
        return None if other.has(index) else other
    return None


@rule("kronecker-collapse", "Kronecker delta collapses the sum",
      "Σ_j g_j δ_jk = g_k, because k is one of the values j runs over", kind="sum", nodes=(Sum,))
def _kronecker_collapse(expr, over=None):
    if not isinstance(expr, Sum) or len(expr.limits) != 1:
        return None
    index = expr.limits[0][0]
    if over is not None and index != over:  # only the sum over this index, one at a time
        return None
    for factor in Mul.make_args(expr.function):
        other = _delta_partner(factor, index)
        if other is not None:
            rest = Mul(*(f for f in Mul.make_args(expr.function) if f is not factor))
            return rest.subs(index, other)
    return None


@rule("kronecker-off-diagonal", "δ_ik = 0 for i ≠ k", "in a sum that leaves out i = k, every δ_ik is 0",
      kind="sum", nodes=(SumExcept,), tex=r"$\delta_{ik} = 0$ for $i \neq k$")
def _off_diagonal(expr):
    if not isinstance(expr, SumExcept):
        return None
    zero = {d: S.Zero for d in expr.function.atoms(KroneckerDelta)
            if set(d.args) == {expr.index, expr.skip}}
    if not zero:
        return None
    return SumExcept(expr.function.xreplace(zero), expr.limits, expr.skip)
