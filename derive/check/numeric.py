"""The checker's numeric evaluator: any expression of the model, at a concrete K, on arrays.

It walks the SymPy tree once per batch of samples instead of substituting numbers through
SymPy.  The sample axis comes first in every array:

* a sum becomes a reduction over an array axis of its own (``Σ_{i≠k}`` masks the term at k);
* ``q``, ``σ``, ``p``, ``E`` and the other abbreviations are evaluated from their definitions
  in the model, once per evaluation;
* a Kronecker delta becomes a comparison of index arrays;
* a free index holds one value a sample, so that one batch covers several index assignments.

Derivatives are taken by **forward-mode automatic differentiation** with nilpotent numbers
(``ε² = 0``; one ε a variable of the derivative, so ``∂²f/∂z_k∂z_l`` is the coefficient of
``ε₁ε₂``).  They are exact up to rounding and use only the arithmetic of the expression being
differentiated, never a rule of :mod:`derive.rules`: the checker cannot inherit a rule's mistake.
A derivative with respect to an abbreviation (``∂ log q_i/∂q_i``) perturbs that abbreviation's
value and nothing else, which is what the notation means.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

import numpy as np
from sympy import (Abs, Add, Derivative, Expr, Heaviside, Indexed, KroneckerDelta, Max,
                   Min, Mul, Pow, Sum, Symbol, UnevaluatedExpr, exp, log)

from ..errors import CheckError
from ..model import ABBREVIATIONS, SHAPES, D, K, N, SumExcept, definition, is_abbreviation
from .jets import Jet, _compose, _exp, _log, _make, _select, _terms, add, mul, power


# ---- the evaluator -----------------------------------------------------------------------------

@dataclass
class Point:
    """Where an expression is evaluated: ``samples`` points at K = ``size``.

    ``arrays`` maps each array of the model (and any abbreviation fixed by a derivative with
    respect to it) to values of shape ``(samples, *entries)``; ``parameters`` maps a parameter
    to shape ``(samples,)``; ``indices`` maps a free index to one 1-based value a sample.
    """

    size: int
    samples: int
    arrays: dict
    parameters: dict = field(default_factory=dict)
    indices: dict = field(default_factory=dict)
    batch: int = 3
    features: int = 3


class _Context:
    """One evaluation: the point, the bound indices (one array axis each, after the sample
    axis), and the abbreviations already evaluated."""

    def __init__(self, point: Point, arrays: dict, bits: count):
        self.point, self.arrays, self.bits = point, arrays, bits
        self.memo: dict = {}

    def extent(self, bound) -> int:
        if bound.is_Integer:
            return int(bound)
        return int(bound.xreplace({K: self.point.size, N: self.point.batch,
                                   D: self.point.features}))


def evaluate(expr: Expr, point: Point) -> np.ndarray:
    """The value of ``expr`` at every sample of ``point``: an array of shape ``(samples,)``."""
    ctx = _Context(point, dict(point.arrays), count())
    with np.errstate(all="ignore"):  # an overflow is a value (inf or nan), never a warning
        value = _eval(expr, ctx, ())
    if isinstance(value, Jet):
        value = value.value
    return np.broadcast_to(np.asarray(value, dtype=float), (point.samples,))


def _shape(axes) -> tuple:
    return (1,) + tuple(1 for _ in axes)


def _index(expr, ctx: _Context, axes):
    """An index expression as integers broadcast over (sample, *axes)."""
    for position, (symbol, values) in enumerate(axes):
        # equal, not only identical: SymPy may hold two equal index symbols, and a bound index
        # must never be taken for a free index of the same name
        if expr is symbol or (expr.is_Symbol and expr == symbol):
            if np.ndim(values) == 0:  # a sum carried out one term at a time
                return int(values)
            shape = [1] * (len(axes) + 1)
            shape[position + 1] = len(values)
            return values.reshape(shape)
    if expr.is_Integer:
        return int(expr)
    if expr in ctx.point.indices:
        return np.asarray(ctx.point.indices[expr]).reshape((-1,) + (1,) * len(axes))
    if expr in (K, N, D):
        return ctx.extent(expr)
    if isinstance(expr, Add):
        total = 0
        for arg in expr.args:
            total = total + _index(arg, ctx, axes)
        return total
    if isinstance(expr, Mul):
        product = 1
        for arg in expr.args:
            product = product * _index(arg, ctx, axes)
        return product
    raise CheckError(f"cannot evaluate the index {expr}")


def _gather(values, positions, axes):
    """Entries of ``values`` (sample, *entries) at 1-based ``positions``, over (sample, *axes)."""
    def one(array):
        array = np.asarray(array)
        if array.ndim == 0:
            return array
        rows = np.arange(array.shape[0]).reshape((-1,) + (1,) * len(axes))
        return array[(rows, *(p - 1 for p in positions))]
    if isinstance(values, Jet):
        return _make({m: one(c) for m, c in values.terms.items()})
    return one(values)


def _abbreviation_array(base, ctx: _Context):
    """The whole array an abbreviation such as ``q`` stands for, from its definition."""
    if base in ctx.arrays:
        return ctx.arrays[base]
    if base not in ctx.memo:
        extents = [ctx.extent(e) for e in SHAPES[base]]
        fresh = [Symbol(f"_entry{n}", integer=True) for n in range(len(extents))]
        axes = tuple((s, np.arange(1, e + 1)) for s, e in zip(fresh, extents))
        definition = ABBREVIATIONS[base](*fresh)
        value = _eval(definition, ctx, axes)
        full = (ctx.point.samples, *extents)
        ctx.memo[base] = _make({m: np.broadcast_to(c, full) for m, c in _terms(value).items()})
    return ctx.memo[base]


def _array(base, ctx: _Context):
    if base in ctx.arrays:
        return ctx.arrays[base]
    if base in ABBREVIATIONS:
        return _abbreviation_array(base, ctx)
    raise CheckError(f"no values for the array {base}")


def _eval(expr, ctx: _Context, axes):
    handler = _HANDLERS.get(type(expr))
    if handler is None:
        for kind, candidate in _HANDLERS.items():
            if isinstance(expr, kind):
                handler = candidate
                break
    if handler is not None:
        return handler(expr, ctx, axes)
    if expr.is_number:
        return float(expr)
    raise CheckError(f"cannot evaluate {expr} ({type(expr).__name__}) numerically")


def _symbol(expr, ctx, axes):
    point = ctx.point
    if expr in point.parameters:
        return np.asarray(point.parameters[expr], dtype=float).reshape((-1,) + (1,) * len(axes))
    if expr in ctx.arrays:  # a parameter fixed by a derivative with respect to it
        return ctx.arrays[expr]
    if is_abbreviation(expr):
        if expr not in ctx.memo:
            ctx.memo[expr] = _eval(definition(expr)(), ctx, ())
        value = ctx.memo[expr]
        return _make({m: np.reshape(c, np.shape(c) + (1,) * len(axes))
                      for m, c in _terms(value).items()})
    if expr in (K, N, D):
        return float(ctx.extent(expr))
    if expr.is_integer:  # an index used as a number: free, or bound by a sum
        return np.asarray(_index(expr, ctx, axes), dtype=float)
    raise CheckError(f"no value for {expr}")


def _indexed(expr, ctx, axes):
    positions = [_index(i, ctx, axes) for i in expr.indices]
    return _gather(_array(expr.base, ctx), positions, axes)


def _add(expr, ctx, axes):
    total = 0.0
    for arg in expr.args:
        total = add(total, _eval(arg, ctx, axes))
    return total


def _mul(expr, ctx, axes):
    product = 1.0
    for arg in expr.args:
        product = mul(product, _eval(arg, ctx, axes))
    return product


def _pow(expr, ctx, axes):
    base, exponent = expr.args
    if exponent.is_Integer or exponent.is_Rational:
        return power(_eval(base, ctx, axes), float(exponent))
    return power(_eval(base, ctx, axes), _eval(exponent, ctx, axes))


def _function(expr, ctx, axes):
    argument = _eval(expr.args[0], ctx, axes)
    return _compose(argument, _exp if isinstance(expr, exp) else _log)


def _delta(expr, ctx, axes):
    first, second = (_index(i, ctx, axes) for i in expr.args)
    return np.asarray(first == second, dtype=float)


def _sum(expr, ctx, axes, skip=None):
    if isinstance(expr, Sum) and len(expr.limits) > 1:  # Σ_j Σ_i f: the outermost limit last
        inner = Sum(expr.function, *expr.limits[:-1])
        return _sum(_Nested(inner, expr.limits[-1]), ctx, axes)
    (index, lo, hi), = expr.limits if isinstance(expr, (Sum, _Nested)) else (expr.limits,)
    values = np.arange(ctx.extent(lo), ctx.extent(hi) + 1)
    if _runs_with(expr.function, index, ctx):
        # the variable of a derivative runs with the index: one term at a time
        total = 0.0
        for value in values:
            term = _eval(expr.function, ctx, axes + ((index, value),))
            term = _make({m: np.reshape(c, np.shape(c)[:-1]) if np.ndim(c) else c
                          for m, c in _terms(term).items()})
            if skip is not None:
                term = mul(term, np.asarray(_index(skip, ctx, axes) != value, dtype=float))
            total = add(total, term)
        return total
    inner = axes + ((index, values),)
    body = _eval(expr.function, ctx, inner)
    if skip is not None:
        kept = _index(index, ctx, inner) != _index(skip, ctx, inner)
        body = _select(kept, body, 0.0)
    full = np.broadcast_shapes(*(np.shape(c) for c in _terms(body).values()),
                               (1,) * len(inner) + (len(values),))
    return _make({m: np.broadcast_to(c, full).sum(axis=-1) for m, c in _terms(body).items()})


def _runs_with(function, index, ctx: _Context) -> bool:
    """Whether a derivative in ``function`` is taken by a variable that depends on ``index``
    (remembered for the evaluation only)."""
    key = ("runs with", function, index)
    if key not in ctx.memo:
        ctx.memo[key] = any(index in _indices_of(v) for d in function.atoms(Derivative)
                            for v in d.variables)
    return ctx.memo[key]


class _Nested:
    """A sum whose body is itself a sum (SymPy would merge the two into one Sum)."""

    def __init__(self, function, limit):
        self.function, self.limits = function, (limit,)


def _sum_except(expr, ctx, axes):
    return _sum(expr, ctx, axes, skip=expr.skip)


def _indices_of(variable) -> set:
    return set(variable.indices) if isinstance(variable, Indexed) else set()


def _derivative(expr, ctx, axes):
    arrays = dict(ctx.arrays)
    directions = 0
    for variable, times in expr.variable_count:
        seeds = []  # a direction of its own for each time (x + ε1 + ε2 for ∂²/∂x²)
        for _ in range(int(times)):
            bit = 1 << next(ctx.bits)
            directions |= bit
            seeds.append(bit)
        arrays = _seeded(variable, seeds, arrays, ctx, axes)
    inner = _Context(ctx.point, arrays, ctx.bits)
    value = _eval(expr.expr, inner, axes)
    return _make({m & ~directions: c for m, c in _terms(value).items()
                  if m & directions == directions})


def _seeded(variable, bits: list[int], arrays: dict, ctx: _Context, axes) -> dict:
    """``arrays`` with ``variable`` perturbed by each of the directions ``bits``."""
    arrays = dict(arrays)
    if isinstance(variable, Symbol):
        if variable not in ctx.point.parameters:
            raise CheckError(f"cannot differentiate with respect to {variable}")
        value = np.asarray(ctx.point.parameters[variable], dtype=float).reshape(
            (-1,) + (1,) * len(axes))
        arrays[variable] = Jet({0: value, **{bit: np.ones_like(value) for bit in bits}})
        return arrays
    if not isinstance(variable, Indexed):
        raise CheckError(f"cannot differentiate with respect to {variable}")
    base = variable.base
    current = arrays[base] if base in arrays else _array(base, ctx)
    shape = np.shape(_terms(current)[0])
    grids = np.indices(shape[1:])
    hit = np.ones((1,) + shape[1:], dtype=bool)
    for grid, position in zip(grids, variable.indices):
        where = np.asarray(_index(position, ctx, axes))
        if where.ndim and any(n > 1 for n in where.shape[1:]):
            raise CheckError(f"cannot differentiate with respect to {variable} inside a sum "
                             "over one of its indices")
        where = where.reshape((-1,) + (1,) * (len(shape) - 1))
        hit = hit & (grid[None] == where - 1)
    # an abbreviation's value is fixed here: inside, its definition is not looked at
    arrays[base] = add(current, Jet({bit: hit.astype(float) for bit in bits}))
    return arrays


def _max(expr, ctx, axes):
    values = [_eval(a, ctx, axes) for a in expr.args]
    best = values[0]
    for v in values[1:]:
        pick = np.asarray(_terms(v)[0] > _terms(best)[0]) if isinstance(expr, Max) else \
            np.asarray(_terms(v)[0] < _terms(best)[0])
        best = _select(pick, v, best)
    return best


def _abs(expr, ctx, axes):
    value = _eval(expr.args[0], ctx, axes)
    return _select(np.asarray(_terms(value)[0]) < 0, mul(-1.0, value), value)


def _heaviside(expr, ctx, axes):
    value = _terms(_eval(expr.args[0], ctx, axes))[0]
    return np.where(np.asarray(value) > 0, 1.0, np.where(np.asarray(value) < 0, 0.0, 0.5))


def _unevaluated(expr, ctx, axes):
    return _eval(expr.args[0], ctx, axes)


_HANDLERS = {
    Symbol: _symbol, Indexed: _indexed, Add: _add, Mul: _mul, Pow: _pow, exp: _function,
    log: _function, KroneckerDelta: _delta, Sum: _sum, SumExcept: _sum_except,
    Derivative: _derivative, Max: _max, Min: _max, Abs: _abs, Heaviside: _heaviside,
    UnevaluatedExpr: _unevaluated,
}
