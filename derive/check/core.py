"""Stage 4 of the pipeline: the checker.

Every step of a derivation is proved equal to the one before it (or, where the left-hand side
changes, to that left-hand side by its definition):

* always numerically, for K = 2..8: both sides are evaluated by :mod:`.numeric` (sums as array
  reductions, abbreviations from their definitions, derivatives by forward-mode automatic
  differentiation) at many random logits, and at random targets that satisfy exactly the facts
  in force at that step; free indices take every value, or equal and distinct values;
* symbolically, where SymPy manages within a time budget: the difference, with derivatives
  kept as opaque symbols and ``Σ_{i≠k}`` written as a full sum less one term, becomes 0 by
  ``expand``, ``factor_terms`` or ``cancel``/``together`` (of the whole, or inside each
  logarithm), then again after SymPy carries out
  the sums of Kronecker deltas and of constants (a free index lies in 1..K), or else by
  ``simplify``.  A step that
  is not proved this way is reported as checked numerically only.

A step that fails raises :class:`CheckError` naming the derivation, the step and the rule.  The
result must also be proved symbolically equal to the derivation's goal.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import permutations, product

import numpy as np
from sympy import (Derivative, Dummy, Expr, Ge, Indexed, KroneckerDelta, Le, Piecewise, Sum, Symbol,
                   UnevaluatedExpr, cancel, factor_terms, log, simplify, together, true)

from ..errors import CheckError
from ..model import (EXTENT, INDICES, LINEAR, ONE_HOT, PROBABILITY, D, K, N, SumExcept, T, W, Y,
                     Z, a, b, c, epsilon, expand_abbreviations, free_indices, i, is_abbreviation,
                     own_symbols, w, x, y, z)
from ..records import Derivation, Step
from .numeric import Point, evaluate

SIZES = range(2, 9)        # K = 2..8
BATCH = 3                  # N, the number of examples, where a step has a batch
FEATURES = 3               # D, the number of inputs of a linear layer
PER_ASSIGNMENT = 100       # random samples for each assignment of the free indices
ASSIGNMENTS = 8            # at most this many assignments a K where there are more
TOLERANCE = 1e-9           # relative to 1 + |before| + |after|
SIMPLIFY_SECONDS = 0.15    # budget of simplify for one step, after the cheap attempts fail
GOAL_SECONDS = 5.0         # budget of simplify for the result against the goal


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


def _top(index: Symbol, size: int) -> int:
    return {N: BATCH, D: FEATURES}.get(EXTENT.get(index), size)


def assignments(names: list[Symbol], size: int, rng) -> list[dict[Symbol, int]]:
    """Values of the free indices ``names`` (1-based): every assignment where there are at
    most :data:`ASSIGNMENTS`; otherwise all equal, all distinct, and the rest drawn freely."""
    ranges = [range(1, _top(s, size) + 1) for s in names]
    every = list(product(*ranges))
    if len(every) <= ASSIGNMENTS:
        return [dict(zip(names, values)) for values in every]
    low = min(map(len, ranges))
    chosen = [(int(rng.integers(1, low + 1)),) * len(names)]  # all equal
    distinct = [v for v in permutations(range(1, max(map(len, ranges)) + 1), len(names))
                if all(value <= len(r) for value, r in zip(v, ranges))]
    if distinct:
        chosen.append(distinct[int(rng.integers(len(distinct)))])
    while len(chosen) < ASSIGNMENTS:
        chosen.append(every[int(rng.integers(len(every)))])
    return [dict(zip(names, values)) for values in chosen]


def sample_targets(facts, size: int, indices: dict[Symbol, int], rng, rows=None):
    """Targets satisfying exactly ``facts``: arbitrary reals when there are none.  ``rows``
    gives a leading axis (one target a row)."""
    if ONE_HOT in facts:
        return np.eye(size)[np.asarray(indices[c]) - 1]
    if PROBABILITY in facts:
        return rng.dirichlet(np.ones(size), size=rows)
    return rng.normal(size=(size,) if rows is None else (*np.atleast_1d(rows), size))


def sample(facts, size: int, indices: dict[Symbol, object], rng, samples: int = 1,
           own: tuple = ((), ())) -> Point:
    """``samples`` random points within the domains and the facts; ``indices`` holds one
    value a sample (or one for all).  ``own`` holds the positive parameters and the per-class
    arrays of a user's loss, drawn in [0.5, 3] and [0.2, 2]."""
    indices = {s: np.broadcast_to(np.asarray(v), (samples,)) for s, v in indices.items()}
    arrays = {z: rng.normal(scale=2.0, size=(samples, size)),
              y: sample_targets(facts, size, indices, rng, rows=samples),
              w: rng.uniform(0.2, 2.0, size=(samples, size)),
              Z: rng.normal(scale=2.0, size=(samples, BATCH, size)),
              Y: sample_targets(facts - {ONE_HOT}, size, indices, rng, rows=(samples, BATCH)),
              W: rng.normal(size=(samples, size, FEATURES)),
              x: rng.normal(size=(samples, FEATURES)), b: rng.normal(size=(samples, size))}
    if LINEAR in facts:  # the logits are the linear layer's
        arrays[z] = np.einsum("skd,sd->sk", arrays[W], arrays[x]) + arrays[b]
    parameters = {a: rng.normal(scale=3.0, size=samples), T: rng.uniform(0.3, 3.0, size=samples),
                  epsilon: rng.uniform(0, 1, size=samples)}
    own_parameters, own_arrays = own
    parameters.update({p: rng.uniform(0.5, 3.0, size=samples) for p in own_parameters})
    arrays.update({base: rng.uniform(0.2, 2.0, size=(samples, size)) for base in own_arrays})
    return Point(size, samples, arrays, parameters, indices, BATCH, FEATURES)


def _points(facts, names: list[Symbol], size: int, rng, own) -> Point:
    """One batch of samples for a step: :data:`PER_ASSIGNMENT` for every assignment."""
    chosen = assignments(names, size, rng)
    indices = {s: np.repeat([a[s] for a in chosen], PER_ASSIGNMENT) for s in names}
    return sample(facts, size, indices, rng, samples=len(chosen) * PER_ASSIGNMENT, own=own)


def _own(derivation: Derivation) -> tuple:
    """The scalar parameters and per-class arrays that a user's loss brings into the steps."""
    return own_symbols(*(e for step in derivation.steps for e in (step.lhs, step.expr)))


# ---- symbolic comparison -----------------------------------------------------------------------

class _OutOfTime(Exception):
    pass


@contextmanager
def _time_limit(seconds: float):
    """Raise :class:`_OutOfTime` in the block after ``seconds`` (on the main thread of a
    system with interval timers; elsewhere the block is not run and _OutOfTime raised)."""
    if threading.current_thread() is not threading.main_thread() or \
            not hasattr(signal, "setitimer"):
        raise _OutOfTime

    def stop(signum, frame):
        raise _OutOfTime
    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_CHEAP = (lambda e: e.expand(), lambda e: factor_terms(e.expand()),
          lambda e: cancel(together(e.expand())),
          lambda e: e.replace(lambda f: isinstance(f, log),
                              lambda f: log(cancel(together(f.args[0])))).expand())


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
        e.function.has(KroneckerDelta) or not e.function.has(e.limits[0][0])), lambda e: e.doit())
    return expr.replace(
        lambda e: isinstance(e, Piecewise) and len(e.args) == 2 and e.args[1].cond == true
        and _in_range(e.args[0].cond), lambda e: e.args[0].expr)


def symbolically_equal(left: Expr, right: Expr, facts=frozenset(),
                       seconds: float = SIMPLIFY_SECONDS) -> bool:
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
    try:
        if any(attempt(difference) == 0 for attempt in _CHEAP):
            return True
        difference = _sums_done(difference)
        if any(attempt(difference) == 0 for attempt in _CHEAP):
            return True
        with _time_limit(seconds):
            return simplify(difference) == 0
    except _OutOfTime:
        return False
    except Exception:  # SymPy may give up on unusual expressions; the numeric check remains
        return False


# ---- the checker ---------------------------------------------------------------------------------

def _reference(steps: tuple[Step, ...], n: int) -> Expr:
    """What step ``n`` must equal: the last main step before it, or its own left-hand side."""
    step = steps[n]
    for prev in reversed(steps[:n]):
        if not prev.aside:
            return prev.expr if prev.lhs == step.lhs else step.lhs
    return step.lhs


def _disagreement(before, after) -> int | None:
    """The first sample where the two sides differ (or either is not finite), or None."""
    close = np.abs(before - after) <= TOLERANCE * (1 + np.abs(before) + np.abs(after))
    bad = ~(close & np.isfinite(before) & np.isfinite(after))
    return int(np.argmax(bad)) if bad.any() else None


def check(derivation: Derivation, seed: int = 0) -> Report:
    """Prove every step of ``derivation``; raise :class:`CheckError` at the first that fails."""
    rng = np.random.default_rng(seed)
    own = _own(derivation)
    points: dict = {}
    values: dict = {}

    def value(expr, key):
        if (expr, key) not in values:
            values[expr, key] = evaluate(expr, points[key])
        return values[expr, key]

    reports = []
    for n, step in enumerate(derivation.steps):
        before = _reference(derivation.steps, n)
        where = f"derivation {derivation.name!r}, step {n + 1} ({step.rule})"
        names = _free_indices(before, step.expr)
        if ONE_HOT in step.facts:
            names = sorted(set(names) | {c}, key=str)
        passed = 0
        for size in SIZES:
            key = (size, step.facts, tuple(names))
            if key not in points:
                points[key] = _points(step.facts, names, size, rng, own)
            first, second = value(before, key), value(step.expr, key)
            bad = _disagreement(first, second)
            if bad is not None:
                raise CheckError(f"{where} does not hold: {_describe(points[key], bad)} "
                                 f"the step before gives {first[bad]:.12g} "
                                 f"and this step {second[bad]:.12g}")
            passed += points[key].samples
        symbolic = symbolically_equal(before, step.expr, step.facts)
        reports.append(StepReport(n + 1, step.rule, symbolic, passed))
    goal = derivation.goal
    if goal is not None and not symbolically_equal(derivation.result, goal, derivation.facts,
                                                   seconds=GOAL_SECONDS):
        raise CheckError(f"derivation {derivation.name!r}: the result {derivation.result} "
                         f"is not proved equal to the goal {goal}")
    return Report(derivation.name, tuple(reports), derivation.result if goal is None else goal)


def _describe(point: Point, n: int) -> str:
    """Where sample ``n`` of ``point`` lies, for an error message."""
    indices = ", ".join(f"{s}={int(v[n])}" for s, v in point.indices.items()) or "no free index"
    return (f"at K={point.size}, {indices}, logits={np.round(point.arrays[z][n], 4).tolist()}, "
            f"targets={np.round(point.arrays[y][n], 4).tolist()}")
