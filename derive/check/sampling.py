"""Where the checker evaluates a step: random points that satisfy the facts in force, sized so
that no array outgrows the memory budget.

* Free indices take every assignment where there are few, else all equal, all distinct and
  random ones; the samples cycle through the assignments, so any prefix of them covers each.
* Targets satisfy exactly the facts in force: arbitrary reals when there are none, positive
  reals where the loss is defined only there, a probability vector, or one-hot.
* :func:`volume` is how many entries the largest array of an expression has, per sample (a sum
  is an array axis); :func:`plan` turns it into how many samples to take at a K and in chunks
  of how many, within :data:`derive.budget.ELEMENTS` and :data:`derive.budget.WORK`.
"""
from __future__ import annotations

from functools import reduce
from itertools import permutations, product

import numpy as np
from sympy import Derivative, Indexed, Sum, Symbol

from .. import budget
from ..model import (EXTENT, LINEAR, ONE_HOT, POSITIVE, PROBABILITY, SHAPES, D, K, Loss, N,
                     SumExcept, T, W, Y, Z, a, b, c, epsilon, is_abbreviation, w, x, y, z)
from .numeric import Point

SIZES = range(2, 9)        # K = 2..8
BATCH = 3                  # N, the number of examples, where a step has a batch
FEATURES = 3               # D, the number of inputs of a linear layer
PER_ASSIGNMENT = 100       # random samples for each assignment of the free indices
ASSIGNMENTS = 8            # at most this many assignments a K where there are more
FEWEST = 16                # a K at which fewer samples than this would fit is not sampled


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
    """Targets satisfying exactly ``facts``: arbitrary reals when there are none, positive
    reals under :data:`POSITIVE`.  ``rows`` gives a leading axis (one target a row)."""
    shape = (size,) if rows is None else (*np.atleast_1d(rows), size)
    if ONE_HOT in facts:
        return np.eye(size)[np.asarray(indices[c]) - 1]
    if PROBABILITY in facts:
        return rng.dirichlet(np.ones(size), size=rows)
    if POSITIVE in facts:
        return rng.uniform(0.1, 2.0, size=shape)
    return rng.normal(size=shape)


def sample(facts, size: int, indices: dict[Symbol, object], rng, samples: int = 1,
           own: tuple = ((), ()), scale: float = 1.0) -> Point:
    """``samples`` random points within the domains and the facts; ``indices`` holds one
    value a sample (or one for all).  ``own`` holds the positive parameters and the per-class
    arrays of a user's loss, drawn in [0.5, 3] and [0.2, 2].  ``scale`` shrinks the logits (and
    the shift a), for points drawn again where a step overflowed."""
    indices = {s: np.broadcast_to(np.asarray(v), (samples,)) for s, v in indices.items()}
    arrays = {z: rng.normal(scale=2.0 * scale, size=(samples, size)),
              y: sample_targets(facts, size, indices, rng, rows=samples),
              w: rng.uniform(0.2, 2.0, size=(samples, size)),
              Z: rng.normal(scale=2.0 * scale, size=(samples, BATCH, size)),
              Y: sample_targets(facts - {ONE_HOT}, size, indices, rng, rows=(samples, BATCH)),
              W: rng.normal(scale=scale, size=(samples, size, FEATURES)),
              x: rng.normal(size=(samples, FEATURES)),
              b: rng.normal(scale=scale, size=(samples, size))}
    if LINEAR in facts:  # the logits are the linear layer's
        arrays[z] = np.einsum("skd,sd->sk", arrays[W], arrays[x]) + arrays[b]
    parameters = {a: rng.normal(scale=3.0 * scale, size=samples),
                  T: rng.uniform(0.3, 3.0, size=samples),
                  epsilon: rng.uniform(0, 1, size=samples)}
    own_parameters, own_arrays = own
    parameters.update({p: rng.uniform(0.5, 3.0, size=samples) for p in own_parameters})
    arrays.update({base: rng.uniform(0.2, 2.0, size=(samples, size)) for base in own_arrays})
    return Point(size, samples, arrays, parameters, indices, BATCH, FEATURES)


def points(facts, names: list[Symbol], size: int, rng, own) -> Point:
    """One batch of samples for a step: :data:`PER_ASSIGNMENT` for every assignment, in turn."""
    chosen = assignments(names, size, rng)
    indices = {s: np.tile([a[s] for a in chosen], PER_ASSIGNMENT) for s in names}
    return sample(facts, size, indices, rng, samples=len(chosen) * PER_ASSIGNMENT, own=own)


def take(point: Point, start: int, stop: int) -> Point:
    """Samples ``start:stop`` of ``point``."""
    def rows(values):
        return {key: np.asarray(v)[start:stop] for key, v in values.items()}
    return Point(point.size, stop - start, rows(point.arrays), rows(point.parameters),
                 rows(point.indices), point.batch, point.features)


def again(point: Point, rows: np.ndarray, facts, rng, own, scale: float) -> Point:
    """New samples in place of ``rows`` of ``point``, with the same free indices and logits
    shrunk by ``scale``."""
    indices = {s: np.asarray(v)[rows] for s, v in point.indices.items()}
    return sample(facts, point.size, indices, rng, samples=len(rows), own=own, scale=scale)


# ---- the size of the arrays an expression needs --------------------------------------------------

def _extent(bound, size: int) -> int:
    return int(bound.xreplace({K: size, N: BATCH, D: FEATURES})) if not bound.is_Integer \
        else int(bound)


def volume(expr, size: int) -> int:
    """Entries per sample of the largest array that evaluating ``expr`` at K = ``size`` makes
    (at least 1): each sum adds an axis, each direction of a derivative doubles the terms."""
    seen: dict = {}

    def walk(e) -> int:
        if e in seen:
            return seen[e]
        if isinstance(e, (Sum, SumExcept)):
            limits = e.limits if isinstance(e, Sum) else (e.limits,)
            axes = reduce(lambda n, lim: n * max(1, _extent(lim[2], size)), limits, 1)
            out = axes * walk(e.function)
        elif isinstance(e, Derivative):
            out = 2 ** sum(int(n) for _, n in e.variable_count) * walk(e.expr)
        elif isinstance(e, Loss):
            out = walk(e.formula)
        elif isinstance(e, Indexed) and is_abbreviation(e):  # q, σ, ...: a whole array once
            shape = SHAPES.get(e.base, (K,))
            out = size * reduce(lambda n, extent: n * _extent(extent, size), shape, 1)
        else:
            out = max((walk(arg) for arg in e.args), default=1)
        seen[e] = out
        return out
    return walk(expr)


def plan(exprs, size: int, planned: int) -> tuple[int, int]:
    """How many of ``planned`` samples to evaluate ``exprs`` at K = ``size``, and in chunks of
    how many: (0, 0) where even :data:`FEWEST` would exceed the work budget."""
    per_sample = max(volume(e, size) for e in exprs)
    samples = min(planned, budget.WORK // per_sample)
    if samples < min(planned, FEWEST):
        return 0, 0
    return samples, max(1, min(samples, budget.ELEMENTS // per_sample))
