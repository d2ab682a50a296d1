"""The checker's symbolic proof: ``left - right`` is 0 for symbolic K, where SymPy manages.

Derivatives are held as opaque symbols (SymPy would take ``q_i`` to be independent of ``z_k``),
``E`` and ``q_n`` are unfolded by their definitions, and ``Σ_{i≠k}`` is written as a full sum
less one term.  Then the difference becomes 0 by ``expand``, ``factor_terms`` or
``cancel``/``together`` (of the whole, or inside each logarithm), or again after SymPy carries
out the sums of Kronecker deltas and of constants (a free index lies in 1..K).

None of these can be interrupted, so each is tried only on an input of bounded size: an
expansion that would have more than :data:`TERMS` terms, or a rational function of more than
:data:`OPERATIONS` operations, is not attempted, and the step is checked numerically only.
``simplify``, whose cost has no such bound, is not used.
"""
from __future__ import annotations

from math import comb

from sympy import (Add, Derivative, Dummy, Expr, Ge, KroneckerDelta, Le, Mul, Piecewise, Pow,
                   Sum, UnevaluatedExpr, cancel, count_ops, factor_terms, log, together, true)

from .. import budget
from ..model import EXTENT, INDICES, PROBABILITY, K, SumExcept, expand_abbreviations, i, y

#: The most terms an expansion may have for the checker to attempt it.
TERMS = 2000
#: The most operations an expression may have for ``cancel`` and ``together`` to be tried.
OPERATIONS = 400


def expanded_terms(expr, limit: int = TERMS) -> int:
    """An upper estimate of the number of terms of ``expr.expand()`` (capped past ``limit``),
    computed without expanding: a product multiplies its factors' counts, an integer power of
    a sum of t terms has C(t + n - 1, n), and a function's argument is expanded on its own."""
    cap = limit + 1

    def terms(e) -> int:
        if isinstance(e, Add):
            return min(cap, sum(terms(a) for a in e.args))
        if isinstance(e, Mul):
            out = 1
            for f in e.args:
                out = min(cap, out * terms(f))
            return out
        if isinstance(e, Pow) and e.exp.is_Integer:
            t = terms(e.base)
            n = abs(int(e.exp))
            return 1 if t == 1 else min(cap, comb(t + n - 1, n)) if n < 4 * cap else cap
        if e.args:  # log, exp, a sum, ...: expanded inside, one term outside
            inner = max((terms(a) for a in e.args), default=1)
            return cap if inner >= cap else 1
        return 1
    return terms(expr)


def _small(expr: Expr) -> bool:
    """Whether ``expr`` is small enough for ``cancel``, ``together`` and SymPy's sums."""
    return count_ops(expr) <= OPERATIONS and expanded_terms(expr) <= TERMS


def _cheap(expr: Expr):
    """The attempts, cheapest first, each only where its input is small enough."""
    if expanded_terms(expr) > TERMS:
        return
    yield lambda e: e.expand()
    yield lambda e: factor_terms(e.expand())
    if _small(expr):
        yield lambda e: cancel(together(e.expand()))
        yield lambda e: e.replace(lambda f: isinstance(f, log),
                                  lambda f: log(cancel(together(f.args[0])))).expand()


def _in_range(condition) -> bool:
    """Whether ``condition`` only says that free indices lie in their ranges (1 <= k <= K, or
    up to N or D), which is true of every free index (the model's FREE_INDEX_RANGE)."""
    facts = {}
    for index in INDICES:
        top = EXTENT.get(index, K)
        facts.update({Ge(index, 1): True, Le(1, index): True, Le(index, top): True,
                      Ge(top, index): True})
    return condition.xreplace(facts) == true


def _sums_done(expr: Expr) -> Expr:
    """Sums of a Kronecker delta or of a constant carried out by SymPy, keeping only the
    branch where the free index lies in its range."""
    expr = expr.replace(lambda e: isinstance(e, Sum) and (
        e.function.has(KroneckerDelta) or not e.function.has(e.limits[0][0]))
        and _small(e.function), lambda e: e.doit())
    return expr.replace(
        lambda e: isinstance(e, Piecewise) and len(e.args) == 2 and e.args[1].cond == true
        and _in_range(e.args[0].cond), lambda e: e.args[0].expr)


def symbolically_equal(left: Expr, right: Expr, facts=frozenset(), where: str = "a step") -> bool:
    """Whether ``left - right`` is proved 0 for symbolic K.

    Each derivative is replaced by an opaque symbol first, so SymPy never differentiates
    (it would take ``q_i`` to be independent of ``z_k``); ``E`` is unfolded everywhere and
    ``q_n`` outside derivatives, which only uses their definitions.  Where the two sides hold
    different derivatives no such proof exists, and none is attempted.
    """
    left, right = (expand_abbreviations(e, symbols_only=True).replace(
        lambda f: isinstance(f, UnevaluatedExpr), lambda f: f.args[0]) for e in (left, right))
    if left.atoms(Derivative) != right.atoms(Derivative):
        return False
    difference = left - right
    difference = difference.xreplace({d: Dummy() for d in difference.atoms(Derivative)})
    difference = expand_abbreviations(difference)
    difference = difference.replace(lambda e: isinstance(e, SumExcept), lambda e: e.as_sum())
    if PROBABILITY in facts:
        difference = difference.subs(Sum(y[i], (i, 1, K)), 1)
    if expanded_terms(difference) > TERMS:
        return False
    try:
        for stage in (lambda e: e, _sums_done):
            difference = stage(difference)
            for attempt in _cheap(difference):
                budget.check(f"proving {where} symbolically")
                if attempt(difference) == 0:
                    return True
    except budget.OutOfTime:
        raise
    except Exception:  # SymPy may give up on unusual expressions; the numeric check remains
        return False
    return False
