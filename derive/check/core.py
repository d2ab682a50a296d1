"""Stage 4 of the pipeline: the checker.

Every step of a derivation is proved equal to the one before it (or, where the left-hand side
changes, to that left-hand side by its definition):

* symbolically, where SymPy manages: the difference, with derivatives kept as they are and
  ``Σ_{i≠k}`` written as a full sum less one term, simplifies to 0;
* always numerically, for K = 2..6: the step is made concrete (sums unrolled, ``q`` and ``E``
  expanded, derivatives evaluated exactly by SymPy) and evaluated at random logits and at random
  targets that satisfy exactly the facts in force at that step.

A step that fails raises :class:`CheckError` naming the derivation, the step and the rule.  The
result must also be proved symbolically equal to the derivation's goal.
"""
from __future__ import annotations

from dataclasses import dataclass

from sympy import Add, Derivative, Dummy, Expr, Float, Indexed, Integer, Sum, Symbol, simplify, srepr

from ..errors import CheckError
from ..model import (ARRAYS, EXTENT, LINEAR, ONE_HOT, PARAMETERS, PROBABILITY, D, K, N, SumExcept, T, W,
                    Y, Z, a, b, c, epsilon, expand_abbreviations, free_indices, i, is_abbreviation,
                    w, x, y, z)
from ..records import Derivation, Step

SIZES = range(2, 7)        # K = 2..6
BATCH = 3                  # N, the number of examples, where a step has a batch
FEATURES = 3               # D, the number of inputs of a linear layer
ASSIGNMENTS = 2            # index assignments per K: all indices equal, then drawn freely
SAMPLES = 2                # random (z, y) per assignment
TOLERANCE = 1e-9


@dataclass(frozen=True)
class StepReport:
    number: int            # 1-based, as printed
    rule: str
    symbolic: bool         # proved by simplification for symbolic K
    numeric: int           # number of numeric comparisons that passed


@dataclass(frozen=True)
class Report:
    name: str
    steps: tuple[StepReport, ...]
    goal: Expr

    @property
    def symbolic(self) -> int:
        return sum(s.symbolic for s in self.steps)


# ---- making a step concrete --------------------------------------------------------------------

def _unroll(expr: Expr) -> Expr:
    """Write out every sum over a concrete range, innermost first, without evaluating the rest."""
    expr = expr.replace(lambda e: isinstance(e, SumExcept), lambda e: e.as_sum())

    def unroll_one(s: Sum) -> Expr:
        (index, lo, hi), = s.limits
        return Add(*(s.function.subs(index, n) for n in range(int(lo), int(hi) + 1)))

    while expr.has(Sum):
        expr = expr.replace(lambda e: isinstance(e, Sum), unroll_one)
    return expr


def concretize(expr: Expr, size: int, indices: dict[Symbol, int], batch: int = BATCH) -> Expr:
    """``expr`` at ``K = size`` (and ``N = batch``) with the given index values: only entries
    of the arrays remain."""
    values = {K: Integer(size), N: Integer(batch), D: Integer(FEATURES),
              **{s: Integer(v) for s, v in indices.items()}}
    expr = _unroll(expand_abbreviations(expr, symbols_only=True).subs(values))
    # A derivative with respect to q_n is taken with q_n as a variable, before q_n is expanded.
    expr = expr.replace(lambda e: isinstance(e, Derivative) and all(map(is_abbreviation, e.variables)),
                        lambda e: e.doit())
    expr = _unroll(expand_abbreviations(expr).subs(values))
    expr = expr.doit()
    known = set(PARAMETERS) | {base.label for base in ARRAYS}
    leftover = [s for s in expr.free_symbols
                if not (isinstance(s, Indexed) and s.base in ARRAYS) and s not in known]
    if leftover:
        raise CheckError(f"cannot evaluate {expr}: {leftover} left after making it concrete")
    return expr


def numeric_value(concrete: Expr, arrays: dict, parameters=None) -> float:
    """The value of a concrete expression at the given arrays (base -> values, position n for
    index n + 1) and parameters (symbol -> value)."""
    import numpy as np
    subs = {p: Float(float(v)) for p, v in (parameters or {}).items()}
    for base, values in arrays.items():
        values = np.asarray(values, dtype=float)
        subs.update({base[tuple(p + 1 for p in position)]: Float(float(values[position]))
                     for position in np.ndindex(values.shape)})
    value = concrete.xreplace(subs).evalf()
    try:
        return float(value)
    except TypeError:
        raise CheckError(f"expression did not evaluate to a real number: {value}") from None


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


def _assignments(names: list[Symbol], size: int, rng) -> list[dict[Symbol, int]]:
    """Index values: first all equal (as far as their ranges allow), then drawn freely."""
    top = {s: {N: BATCH, D: FEATURES}.get(EXTENT.get(s), size) for s in names}
    first = int(rng.integers(1, min(top.values(), default=size) + 1))
    out = [{s: first for s in names}]
    for _ in range(ASSIGNMENTS - 1):
        out.append({s: int(rng.integers(1, top[s] + 1)) for s in names})
    return out


def sample_targets(facts, size: int, indices: dict[Symbol, int], rng, rows=None):
    """Targets satisfying exactly ``facts``: arbitrary reals when there are none."""
    import numpy as np
    if ONE_HOT in facts:
        return np.eye(size)[indices[c] - 1]
    if PROBABILITY in facts:
        return rng.dirichlet(np.ones(size), size=rows)
    return rng.normal(size=(size,) if rows is None else (rows, size))


def sample(facts, size: int, indices: dict[Symbol, int], rng) -> tuple[dict, dict]:
    """Random arrays and parameters for one numeric comparison, within their domains."""
    arrays = {z: rng.normal(scale=2.0, size=size), y: sample_targets(facts, size, indices, rng),
              w: rng.uniform(0.2, 2.0, size=size), Z: rng.normal(scale=2.0, size=(BATCH, size)),
              Y: sample_targets(facts - {ONE_HOT}, size, indices, rng, rows=BATCH),
              W: rng.normal(size=(size, FEATURES)), x: rng.normal(size=FEATURES),
              b: rng.normal(size=size)}
    if LINEAR in facts:  # the logits are the linear layer's
        arrays[z] = arrays[W] @ arrays[x] + arrays[b]
    parameters = {a: rng.normal(scale=3.0), T: rng.uniform(0.3, 3.0), epsilon: rng.uniform(0, 1)}
    return arrays, parameters


# ---- symbolic comparison -----------------------------------------------------------------------

def symbolically_equal(left: Expr, right: Expr, facts=frozenset()) -> bool:
    """Whether ``left - right`` simplifies to 0 for symbolic K.

    Each derivative is replaced by an opaque symbol first, so SymPy never differentiates
    (it would take ``q_i`` to be independent of ``z_k``); ``E`` is unfolded everywhere and
    ``q_n`` outside derivatives, which only uses their definitions.
    """
    difference = expand_abbreviations(left - right, symbols_only=True)
    difference = difference.xreplace({d: Dummy() for d in difference.atoms(Derivative)})
    difference = expand_abbreviations(difference)
    difference = difference.replace(lambda e: isinstance(e, SumExcept), lambda e: e.as_sum())
    if PROBABILITY in facts:
        difference = difference.subs(Sum(y[i], (i, 1, K)), 1)
    if difference.expand() == 0:
        return True
    try:
        return simplify(difference) == 0
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


def check(derivation: Derivation, seed: int = 0) -> Report:
    """Prove every step of ``derivation``; raise :class:`CheckError` at the first that fails."""
    import numpy as np  # only checking needs it; printing a checked derivation does not
    rng = np.random.default_rng(seed)
    cache: dict = {}

    def concrete(expr, size, indices):
        key = (expr, size, tuple(sorted(indices.items(), key=str)))
        if key not in cache:
            cache[key] = concretize(expr, size, indices)
        return cache[key]

    reports = []
    for n, step in enumerate(derivation.steps):
        before = _reference(derivation.steps, n)
        where = f"derivation {derivation.name!r}, step {n + 1} ({step.rule})"
        names = _free_indices(before, step.expr)
        if ONE_HOT in step.facts:
                    names = sorted(set(names) | {c}, key=str)
        passed = 0
        for size in SIZES:
            for indices in _assignments(names, size, rng):
                first, second = concrete(before, size, indices), concrete(step.expr, size, indices)
                for _ in range(SAMPLES):
                    arrays, params = sample(step.facts, size, indices, rng)
                    va, vb = (numeric_value(x, arrays, params) for x in (first, second))
                    if not abs(va - vb) <= TOLERANCE * (1 + abs(va) + abs(vb)):
                        raise CheckError(
                            f"{where} does not hold: at K={size}, "
                            f"{', '.join(f'{s}={v}' for s, v in indices.items()) or 'no free index'}, "
                            f"logits={np.round(arrays[z], 4).tolist()}, "
                            f"targets={np.round(arrays[y], 4).tolist()} "
                            f"the step before gives {va:.12g} and this step {vb:.12g}")
                    passed += 1
        symbolic = symbolically_equal(before, step.expr, step.facts)
        reports.append(StepReport(n + 1, step.rule, symbolic, passed))
    if not symbolically_equal(derivation.result, derivation.goal, derivation.facts):
        raise CheckError(f"derivation {derivation.name!r}: the result {derivation.result} "
                         f"is not proved equal to the goal {derivation.goal}")
    return Report(derivation.name, tuple(reports), derivation.goal)
