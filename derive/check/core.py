"""Stage 4 of the pipeline: the checker.

Every step of a derivation is proved equal to the one before it (or, where the left-hand side
changes, to that left-hand side by its definition):

* always numerically, for K = 2..8: both sides are evaluated by :mod:`.numeric` (sums as array
  reductions, abbreviations from their definitions, derivatives by forward-mode automatic
  differentiation) at many random logits, and at random targets that satisfy exactly the facts
  in force at that step (:mod:`.sampling`); free indices take every value, or equal and
  distinct values.  A sample at which either side overflows or is undefined is drawn again
  with smaller logits; it never fails a step.  A step fails only at a sample where both sides
  are finite and differ;
* symbolically, where SymPy manages on inputs of bounded size (:mod:`.symbolic`).  A step that
  is not proved this way is reported as checked numerically only.

A step that fails raises :class:`CheckError` naming the derivation, the step and the rule.  The
result must also be proved symbolically equal to the derivation's goal.  The checker runs under
the caller's deadline (:mod:`derive.budget`), and within its memory budget.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sympy import Expr, Indexed, Symbol

from .. import budget
from ..errors import CheckError
from ..model import ONE_HOT, Loss, c, expand_abbreviations, free_indices, is_abbreviation, own_symbols, y, z
from ..records import Derivation, Step
from .numeric import Point, evaluate
from .sampling import SIZES, again, plan, points, take
from .symbolic import symbolically_equal

TOLERANCE = 1e-9           # relative to 1 + |before| + |after|
SCALES = (0.5, 0.25, 0.1, 0.03)  # of the logits, for samples drawn again where a side overflowed
#: a step must agree at this many finite samples (or at every sample planned, if fewer)
FINITE = 100


@dataclass(frozen=True)
class StepReport:
    number: int            # 1-based, as printed
    rule: str
    symbolic: bool         # proved by SymPy for symbolic K
    numeric: int           # random samples at which both sides agreed


@dataclass(frozen=True)
class Report:
    name: str
    steps: tuple[StepReport, ...]
    goal: Expr

    @property
    def symbolic(self) -> int:
        return sum(s.symbolic for s in self.steps)

    @property
    def samples(self) -> int:
        return sum(s.numeric for s in self.steps)

    @property
    def proved(self) -> tuple[int, ...]:
        """The numbers of the steps proved symbolically."""
        return tuple(s.number for s in self.steps if s.symbolic)


# ---- sampling what the facts allow ------------------------------------------------------------

def _free_indices(*exprs: Expr) -> list[Symbol]:
    """The free indices of ``exprs``, and those hidden in their abbreviations (the class c
    inside y'); an index that is bound where it stands gets a value it never uses."""
    found = set().union(*map(free_indices, exprs))
    for expr in exprs:
        for atom in expr.atoms(Indexed, Symbol):
            if is_abbreviation(atom):
                found |= free_indices(expand_abbreviations(atom))
    return sorted(found, key=str)


def _own(derivation: Derivation) -> tuple:
    """The scalar parameters and per-class arrays that a user's loss brings into the steps."""
    return own_symbols(*(e for step in derivation.steps for e in (step.lhs, step.expr)))


# ---- the checker ---------------------------------------------------------------------------------

class Disagreement(CheckError):
    """Two sides that differ at a sample: ``point`` holds that one sample, ``values`` the
    two sides' values there."""

    def __init__(self, message: str, point: Point, values: tuple[float, float]):
        super().__init__(message)
        self.point, self.values = point, values


@dataclass(frozen=True)
class Agreement:
    """Two sides found equal: at ``samples`` finite samples, and by SymPy if ``symbolic``."""

    symbolic: bool
    samples: int


def compare(before: Expr, after: Expr, facts=frozenset(), where: str = "the line",
            seed: int = 0, symbolic: bool = True) -> Agreement:
    """Check ``before = after`` as a step is checked, under ``facts``, at K = 2..8: raise
    :class:`Disagreement` at a sample where both are finite and differ, :class:`CheckError`
    where too few samples are finite, and :class:`derive.budget.OutOfTime` past the caller's
    deadline."""
    rng = np.random.default_rng(seed)
    own = own_symbols(before, after)
    names = _free_indices(before, after)
    if ONE_HOT in facts:
        names = sorted(set(names) | {c}, key=str)
    values: dict = {}

    def value(expr, point, start, stop, part):
        key = (expr, start, stop)
        if key not in values:
            values[key] = evaluate(expr, part)
        return values[key]

    checking, planned = _Step(where, (before, after), facts, rng, own), 0
    for size in SIZES:
        drawn = points(facts, names, size, rng, own)
        samples, chunk = plan((before, after), size, drawn.samples)
        values.clear()
        checking.run(drawn, samples, chunk, value)
        planned += samples
    if checking.finite < min(FINITE, planned) or not planned:
        raise CheckError(_unevaluable(where, checking.unfinished, (before, after)))
    proved = symbolic and symbolically_equal(before, after, facts, where)
    return Agreement(proved, checking.finite)


def _reference(steps: tuple[Step, ...], n: int) -> Expr:
    """What step ``n`` must equal: the aside before an aside, else the last main step before
    it, or its own left-hand side."""
    step = steps[n]
    if step.aside and n and steps[n - 1].aside:
        return steps[n - 1].expr
    for prev in reversed(steps[:n]):
        if not prev.aside:
            return prev.expr if prev.lhs == step.lhs else step.lhs
    return step.lhs


def _disagreement(before, after) -> int | None:
    """The first sample where both sides are finite and differ, or None."""
    finite = np.isfinite(before) & np.isfinite(after)
    before, after = np.where(finite, before, 0.0), np.where(finite, after, 0.0)
    with np.errstate(all="ignore"):  # huge finite values may overflow the tolerance: inf
        close = np.abs(before - after) <= TOLERANCE * (1 + np.abs(before) + np.abs(after))
    bad = finite & ~close
    return int(np.argmax(bad)) if bad.any() else None


class _Step:
    """The numeric check of one step at one K: the samples planned, in chunks, and those
    drawn again where a side was not finite."""

    def __init__(self, where: str, sides: tuple[Expr, Expr], facts, rng, own):
        self.where, self.sides, self.facts, self.rng, self.own = where, sides, facts, rng, own
        self.finite = 0
        self.unfinished: tuple[Point, int] | None = None  # a sample where a side overflowed

    def run(self, point: Point, samples: int, chunk: int, value) -> None:
        for start in range(0, samples, chunk or 1):
            budget.check(f"checking {self.where} at K={point.size}")
            stop = min(samples, start + chunk)
            part = take(point, start, stop)
            first, second = (value(e, point, start, stop, part) for e in self.sides)
            self._compare(part, first, second)
            rows = np.flatnonzero(~(np.isfinite(first) & np.isfinite(second)))
            for scale in SCALES:
                if not rows.size:
                    break
                budget.check(f"checking {self.where} at K={point.size}")
                part = again(part, rows, self.facts, self.rng, self.own, scale)
                first, second = (evaluate(e, part) for e in self.sides)
                self._compare(part, first, second)
                rows = np.flatnonzero(~(np.isfinite(first) & np.isfinite(second)))
            if rows.size:
                self.unfinished = (part, int(rows[0]))

    def _compare(self, part: Point, first, second) -> None:
        bad = _disagreement(first, second)
        if bad is not None:
            raise Disagreement(f"{self.where} does not hold: {_describe(part, bad)} "
                               f"the step before gives {first[bad]:.12g} "
                               f"and this step {second[bad]:.12g}",
                               take(part, bad, bad + 1), (float(first[bad]), float(second[bad])))
        self.finite += int(np.count_nonzero(np.isfinite(first) & np.isfinite(second)))


def check(derivation: Derivation, seed: int = 0) -> Report:
    """Prove every step of ``derivation``; raise :class:`CheckError` at the first that fails,
    and :class:`derive.budget.OutOfTime` past the deadline."""
    with budget.deadline():  # the caller's, if it has one; else the default
        return _check(derivation, seed)


def _check(derivation: Derivation, seed: int) -> Report:
    rng = np.random.default_rng(seed)
    own = _own(derivation)
    drawn: dict = {}
    values: dict = {}

    def value(expr, point, start, stop, part):
        key = (expr, id(point), start, stop)
        if key not in values:
            values[key] = evaluate(expr, part)
        return values[key]

    reports = []
    for n, step in enumerate(derivation.steps):
        before = _reference(derivation.steps, n)
        where = f"derivation {derivation.name!r}, step {n + 1} ({step.rule})"
        names = _free_indices(before, step.expr)
        if ONE_HOT in step.facts:
            names = sorted(set(names) | {c}, key=str)
        checking = _Step(where, (before, step.expr), step.facts, rng, own)
        planned = 0
        for size in SIZES:
            key = (size, step.facts, tuple(names))
            if key not in drawn:
                drawn[key] = points(step.facts, names, size, rng, own)
            samples, chunk = plan((before, step.expr), size, drawn[key].samples)
            checking.run(drawn[key], samples, chunk, value)
            planned += samples
        if checking.finite < min(FINITE, planned) or not planned:
            raise CheckError(_unevaluable(where, checking.unfinished, (before, step.expr)))
        budget.check(f"proving {where} symbolically")
        symbolic = symbolically_equal(before, step.expr, step.facts, where)
        reports.append(StepReport(n + 1, step.rule, symbolic, checking.finite))
    goal = derivation.goal
    if goal is not None and not symbolically_equal(derivation.result, goal, derivation.facts):
        raise CheckError(f"derivation {derivation.name!r}: the result {derivation.result} "
                         f"is not proved equal to the goal {goal}")
    return Report(derivation.name, tuple(reports), derivation.result if goal is None else goal)


def _unevaluable(where: str, unfinished, sides) -> str:
    """The message for a step that could not be evaluated at enough samples."""
    if unfinished is None:
        return f"{where} is too large to evaluate within the memory budget"
    point, row = unfinished
    one = take(point, row, row + 1)
    culprit = next((c for c in map(lambda e: _first_not_finite(e, one), sides) if c is not None),
                   sides[0])
    from ..render.printers import text
    return (f"{where} cannot be evaluated: {text(culprit)} is not finite (it overflows or is "
            f"undefined) even at small logits, {_describe(one, 0)}")


def _first_not_finite(expr: Expr, one: Point) -> Expr | None:
    """The smallest sub-expression of ``expr`` that is not finite at the single sample of
    ``one`` (None if ``expr`` is finite there)."""
    try:
        if np.all(np.isfinite(evaluate(expr, one))):
            return None
    except CheckError:  # a sub-expression with an index bound outside it
        return None
    for arg in (expr.formula,) if isinstance(expr, Loss) else expr.args:
        if isinstance(arg, Expr):
            inner = _first_not_finite(arg, one)
            if inner is not None:
                return inner
    return expr


def _describe(point: Point, n: int) -> str:
    """Where sample ``n`` of ``point`` lies, for an error message."""
    indices = ", ".join(f"{s}={int(v[n])}" for s, v in point.indices.items()) or "no free index"
    return (f"at K={point.size}, {indices}, logits={np.round(point.arrays[z][n], 4).tolist()}, "
            f"targets={np.round(point.arrays[y][n], 4).tolist()}")
