"""The values that the scalar parameters and per-class arrays of a user's loss may take, read off
the loss where it is written.  They are decided once, here, and used by the command line, by
:func:`derive.evaluate` and by the generated modules, which get each domain as data.

A value's domain follows from where it appears in the loss:

* in an exponent: the exponent ≥ 0, since the base may be 0 (q underflows, 1 - q at the
  top), unless the base is a positive number (γ = 0 is allowed: focal loss at γ = 0 is the
  cross-entropy);
* in a divisor (a power with a negative exponent): the divisor ≠ 0;
* in the argument of a log: the argument > 0;
* in the base of a root, or of another power that is not an integer: the base ≥ 0;
* anywhere else, as a coefficient or inside an exponential: any finite real number.

A condition on an expression of the value alone (``1 - t ≠ 0``) is solved for it; one on an
expression of other things too (``q_i/t_i > 0``) is asked of SymPy with the value real, then
not negative, then positive, and the first that proves it holds.  A condition that involves two
of the loss's values makes both of them positive.  inf and NaN are never allowed.

The derivation is checked with the values drawn in [0.5, 2] (:mod:`derive.check.sampling`), and
its formulas are analytic in them.  So they hold wherever the loss is defined and connected to
those values; and everywhere it is defined where the loss is a rational function of the value,
exponentials and powers of it with a base that does not depend on it.  Where the loss takes the
log or a root of an expression of the value, only the intervals of its domain that meet
[0.5, 2] are kept.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from sympy import (Expr, Indexed, IndexedBase, Interval, Ne, Pow, S, Symbol, Union, log,
                   preorder_traversal, solveset)
from sympy.sets.sets import EmptySet

from .errors import InputError
from .model import PARAMETERS, own_symbols, w

#: Where the checker draws the values of a user's loss (scalars in [0.5, 3], arrays in [0.2, 2]).
CHECKED = Interval(0.5, 2)
#: The largest condition that is solved for the value (SymPy's ``count_ops``); larger ones are
#: proved from assumptions instead.
SOLVED_OPS = 40

#: The kinds of place a value appears in, and the condition each puts on the expression there.
CONDITIONS = {"exponent": lambda e: e >= 0, "divisor": lambda e: Ne(e, 0),
              "log": lambda e: e > 0, "root": lambda e: e >= 0}
_HOLDS = {"exponent": "is_nonnegative", "divisor": "is_nonzero", "log": "is_positive",
          "root": "is_nonnegative"}


@dataclass(frozen=True)
class Domain:
    """A union of disjoint intervals, in increasing order: ``(low, high, low closed, high
    closed)`` each, with None for an unbounded end."""

    intervals: tuple[tuple[float | None, float | None, bool, bool], ...]

    def __contains__(self, value) -> bool:
        try:
            value = float(value)
        except OverflowError:  # a Python int too big for any float
            return False
        return math.isfinite(value) and any(
            (low is None or (low <= value if closed_low else low < value))
            and (high is None or (value <= high if closed_high else value < high))
            for low, high, closed_low, closed_high in self.intervals)

    @property
    def words(self) -> str:
        """``a finite real number ≥ 0``, ``a real number in (0, 1]``, ..."""
        first, last = self.intervals[0], self.intervals[-1]
        hull = (first[0], last[1], first[2], last[3])
        points = [a[1] for a, b in zip(self.intervals, self.intervals[1:])
                  if a[1] == b[0] and not a[3] and not b[2]]
        if len(points) == len(self.intervals) - 1:  # an interval less some points
            words = [_interval_words(hull), *(f"≠ {shown(p)}" for p in points)]
            if hull[0] is None and hull[1] is None and points:
                words[:2] = [f"{words[0]} {words[1]}"]
            return " and ".join(words)
        return "a real number in " + " or ".join(map(_bracketed, self.intervals))

    def draw(self, rng, size=None):
        """Values drawn uniformly from the domain where it meets [0.5, 2] (where the checker
        draws them), or else from its first interval."""
        parts = [(max(0.5, low if low is not None else 0.5), min(2.0, high if high is not None
                                                                  else 2.0))
                 for low, high, _, _ in self.intervals]
        parts = [(a, b) for a, b in parts if a < b]
        if not parts:
            low, high, _, _ = self.intervals[0]
            low = high - 2.0 if low is None else low
            high = low + 2.0 if high is None else high
            parts = [(low + (high - low) / 4, high - (high - low) / 4)]
        return rng.uniform(*parts[0], size=size)

    def edges(self) -> list[float]:
        """Values of the domain outside (0, ∞), where the derivation was not checked: 0, -0.5
        and -1.5, and its closed ends there, those of them that lie in it."""
        ends = [end for low, high, closed_low, closed_high in self.intervals
                for end, closed in ((low, closed_low), (high, closed_high)) if closed]
        return sorted({v for v in (0.0, -0.5, -1.5, *ends) if v <= 0 and v in self})

    def data(self) -> tuple:
        """What a generated module checks: the intervals, and the words of its message."""
        return (self.intervals, self.words)


ANY = Domain(((None, None, False, False),))
POSITIVE = Domain(((0.0, None, False, False),))


def shown(value) -> str:
    """A number as a message shows it: ``-1``, ``0.5``, ``inf``, ``nan`` (as the generated
    modules show it)."""
    if isinstance(value, int):
        return str(value)
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)


def _interval_words(interval) -> str:
    low, high, closed_low, closed_high = interval
    if low is None and high is None:
        return "a finite real number"
    if high is None:
        return f"a finite real number {'≥' if closed_low else '>'} {shown(low)}"
    if low is None:
        return f"a finite real number {'≤' if closed_high else '<'} {shown(high)}"
    return "a real number in " + _bracketed(interval)


def _bracketed(interval) -> str:
    low, high, closed_low, closed_high = interval
    return (f"{'[' if closed_low else '('}{'-∞' if low is None else shown(low)}, "
            f"{'∞' if high is None else shown(high)}{']' if closed_high else ')'}")


def values_of(formula: Expr) -> tuple[list[Symbol], list[IndexedBase]]:
    """The scalar parameters and per-class arrays of a user's loss, in the order of the
    generated code's arguments: its own, and the model's (T, ε, the class weights w)."""
    scalars, arrays = own_symbols(formula)
    scalars = sorted({*scalars, *(p for p in PARAMETERS if formula.has(p))}, key=str)
    if formula.has(w):
        arrays = sorted({*arrays, w}, key=str)
    return scalars, arrays


@lru_cache(maxsize=256)
def of_loss(formula: Expr) -> dict:
    """The domain of each scalar parameter and per-class array of the loss ``formula``, by
    symbol (and array base)."""
    scalars, arrays = values_of(formula)
    own = (*scalars, *arrays)
    sites = _sites(formula)
    return {s: _domain(s, [(kind, e) for kind, e in sites if _has(e, s)], own) for s in own}


def check(name: str, value, domain: Domain, entry: bool = False) -> None:
    """Refuse ``value`` (a scalar, or an entry of an array with ``entry``) outside ``domain``,
    naming it and the domain."""
    if value not in domain:
        what = f"each entry of {name}" if entry else name
        raise InputError(f"{what} must be {domain.words}, not {shown(value)}")


# -- reading the loss --------------------------------------------------------------------------

def _has(e: Expr, s) -> bool:
    if isinstance(s, IndexedBase):
        return any(x.base == s for x in e.atoms(Indexed))
    return e.has(s)


def _sites(formula: Expr) -> list[tuple[str, Expr]]:
    """Each place of ``formula`` that puts a condition on what is there: (kind, expression)."""
    out = []
    for node in preorder_traversal(formula):
        if isinstance(node, log):
            out.append(("log", node.args[0]))
        elif isinstance(node, Pow):
            base, power = node.args
            if not power.is_Number and not (base.is_Number and base > 0):
                out.append(("exponent", power))  # a base that may be 0 (q, 1 - q) needs it ≥ 0
            if power.is_Number and power < 0:
                out.append(("divisor", base))
            if not power.is_Integer:
                out.append(("root", base))
    return out


def _replaced(e: Expr, s, by: Symbol) -> Expr:
    if isinstance(s, IndexedBase):
        return e.replace(lambda x: isinstance(x, Indexed) and x.base == s, lambda x: by)
    return e.xreplace({s: by})


def _domain(s, sites, own) -> Domain:
    v = Symbol("v", real=True)
    defined, policy, rational = S.Reals, S.Reals, True
    for kind, e in sites:
        if kind in ("log", "root"):
            rational = False
        if any(_has(e, other) for other in own if other != s):
            allowed = Interval.open(0, S.Infinity)
        else:
            allowed = _allowed(kind, _replaced(e, s, v), v, lambda by: _replaced(e, s, by))
        if kind == "exponent":
            policy = policy.intersect(allowed)
        else:
            defined = defined.intersect(allowed)
    if not rational:  # the intervals that meet the values the derivation was checked at
        defined = Union(*(part for part in _parts(defined)
                          if part.intersect(CHECKED) != S.EmptySet))
    found = defined.intersect(policy)
    parts = _parts(found)
    if not parts or all(part.measure == 0 for part in parts):
        return POSITIVE
    return Domain(tuple(_interval(part) for part in parts if part.measure != 0))


def _allowed(kind, e: Expr, v: Symbol, with_symbol):
    """The values of ``v`` for which the condition of ``kind`` holds of ``e``."""
    if e.free_symbols == {v} and e.is_rational_function(v) and e.count_ops() <= SOLVED_OPS:
        found = solveset(CONDITIONS[kind](e), v, S.Reals)
        if all(isinstance(part, Interval) for part in _parts(found)):
            return found
    for allowed, assumptions in ((S.Reals, {"real": True}),
                                 (Interval(0, S.Infinity), {"nonnegative": True}),
                                 (Interval.open(0, S.Infinity), {"positive": True})):
        if getattr(with_symbol(Symbol("v", **assumptions)), _HOLDS[kind]):
            return allowed
    return Interval.open(0, S.Infinity)


def _parts(found) -> list:
    if found == S.Reals:
        return [Interval(S.NegativeInfinity, S.Infinity)]
    if isinstance(found, EmptySet) or found == S.EmptySet:
        return []
    return list(found.args) if isinstance(found, Union) else [found]


def _interval(part: Interval) -> tuple:
    low = None if part.start == S.NegativeInfinity else float(part.start)
    high = None if part.end == S.Infinity else float(part.end)
    return (low, high, low is not None and not part.left_open,
            high is not None and not part.right_open)
