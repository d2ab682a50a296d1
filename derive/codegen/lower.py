"""The lowering: derived formulas as stable, vectorised lines of a backend, in four passes.

1. :func:`.to_array.to_array`: an indexed formula becomes an array formula.
2. Named rewrites (:mod:`.rewrites`): the stability rewrites, and with integer labels the
   one-hot ones, which replace Σ_i y_i f_i by f at the label, so no one-hot array is made.
3. SymPy's ``cse`` finds what the formulas share.
4. :mod:`.lines`: one operation a line, each with a comment saying what it computes; where the
   backend allows it, a line writes over an array that nothing later reads.

What depends on the backend is only the spelling of each operation, passed in as ``backend``.
"""
from __future__ import annotations

from dataclasses import dataclass

from sympy import Expr, Symbol, cse, numbered_symbols

from ..model import free_indices, k
from .backends import numpy as numpy_backend
from .comments import CommentPrinter, comment
from .ir import (CLASS, FULL, LOG_PROBS, LOG_PROBS_AT, PROBS, PROBS_AT, SCALAR, AtLabel,
                 BalanceTop, SetAtLabel, Values)
from .lines import Lowering, allocate, renumber
from .rewrites import optimize
from .rewrites.labels import (LABEL_TERM, ONE_HOT_ENTRY, ONE_HOT_ROWS, ONE_HOT_SELECT,
                              at_labels)
from .rewrites.stability import (BALANCE_TOP, EXPECTATION_FROM_TOP, LOG1P_LOGSUMEXP,
                                 MASKED_SUM, REWRITES, SUM_OF_CONSTANT, exact_log_sum)

from .to_array import class_axis, push_labels, to_array

#: Every rewrite the lowering applies, in the order a module's header cites them.
CITED = (*REWRITES, ONE_HOT_SELECT, ONE_HOT_ENTRY, ONE_HOT_ROWS, LABEL_TERM, SUM_OF_CONSTANT,
         LOG1P_LOGSUMEXP, MASKED_SUM, EXPECTATION_FROM_TOP, BALANCE_TOP)


@dataclass
class Program:
    """The lines computing some outputs, and the rewrites that made them."""

    lines: list[str]
    rewrites: set[str]
    calls: set[str]         # the functions the lines call
    reads: set[str]         # the names the lines read


def lower(outputs: list[tuple[str, Expr]], values: Values, definitions: dict[Symbol, Expr],
          labels: bool, returns: tuple[str, ...] | None = None, free: Symbol = k,
          rows: Symbol | None = None, backend=numpy_backend, balance: bool = False,
          scale: str | None = None) -> Program:
    """Source lines computing each named output from its indexed formula.

    ``definitions`` say what ``probs`` and ``log_probs`` are
    (:func:`.to_array.softmax_definitions`); ``labels`` lowers for integer labels instead of
    target arrays; ``returns`` names the arrays read after these lines (default: every output);
    ``free`` and ``rows`` are the free indices (see :func:`.to_array.to_array`); ``balance``
    says that the loss is unchanged by z + a, so that the entries of the output ``grad`` sum
    to zero and its entry at the largest logit is minus the sum of the others; ``scale`` names
    a number the code has (1/N for a mean over N rows) that multiplies the output ``grad``,
    taken into the row factors where there are some (:func:`_scaled`), so that scaling the
    gradient costs no pass of its own over every class.
    """
    used: set[str] = set()
    shape = class_axis(set(values.arrays.values()))

    arrays = [optimize(to_array(expr, values, free, rows if len(free_indices(expr)) > 1 else None),
                       (SUM_OF_CONSTANT,), used, shape=shape) for _, expr in outputs]
    if balance:  # Σ_j q_j x_j from the top, in the gradient
        arrays = [optimize(a, (EXPECTATION_FROM_TOP,), used, shape=shape) if name == "grad" else a
                  for (name, _), a in zip(outputs, arrays)]
    arrays = [optimize(a, REWRITES, used) for a in arrays]
    exact: set[str] = set()  # cited only where q or log q is computed (below)
    definitions = {sym: exact_log_sum(d, exact) for sym, d in definitions.items()}
    if labels:
        arrays = [at_labels(a, used, set(values.arrays.values())) for a in arrays]
    shapes = {v.name: SCALAR for v in values.scalars.values()}
    shapes.update({v.name: CLASS for v in values.arrays.values()})
    shapes.update({PROBS.name: FULL, LOG_PROBS.name: FULL})
    if scale:
        shapes[scale] = SCALAR
    fold = {v: key for key, v in definitions.items()}
    lowering = Lowering(shapes)
    if labels:
        at = {sym: push_labels(AtLabel(sym), lowering.shape, definitions) for sym in definitions}
        fold.update({at[PROBS]: PROBS_AT, at[LOG_PROBS]: LOG_PROBS_AT})
        # the rewrites again, on the entries at the labels: log σ(z_c), 1 - σ(z_c), ...
        arrays = [optimize(push_labels(a, lowering.shape, definitions), REWRITES, used)
                  for a in arrays]
    arrays = [optimize(exact_log_sum(a, used), (MASKED_SUM,), used) for a in arrays]
    if balance:
        arrays = [BALANCE_TOP.apply(a, shape=lowering.shape) if name == "grad" else a
                  for (name, _), a in zip(outputs, arrays)]
        if labels:  # log q_c from the rows
            arrays = [push_labels(a, lowering.shape, definitions) for a in arrays]
        used.add(BALANCE_TOP.name)
    if scale:
        arrays = [_scaled(a, Symbol(scale)) if name == "grad" else a
                  for (name, _), a in zip(outputs, arrays)]
    if labels:  # q_k = e^{z_k - a} / Σ_j e^{z_j - a} written out: the row factors that
        # multiply it are then combined before the one product over every class
        arrays = [a.xreplace({PROBS: definitions[PROBS]}) for a in arrays]
    # q and log q, where whole rows of them are needed, are computed under their own names
    needed = [sym for sym in (LOG_PROBS, PROBS) if any(a.has(sym) for a in arrays)]
    if needed:
        used |= exact
    replacements, common = cse([definitions[sym] for sym in needed] + arrays,
                               symbols=numbered_symbols("s"), optimizations=None)
    lowering.pending = dict(replacements)
    lowering.pending.update(zip(needed, common))
    common = common[len(needed):]
    names = []
    for (name, _), value in zip(outputs, common):
        names.append(lowering.define(name, value))
    if backend.IN_PLACE:
        allocate(lowering.code, lowering.shapes, list(returns) if returns is not None else names,
                 backend.IN_PLACE)
    renumber(lowering.code, lowering.temporaries)
    printer = CommentPrinter(values.math())
    lines = [backend.line(code, comment(code, printer, fold)) for code in lowering.code]
    return Program(lines, used, backend.calls(lowering.code),
                   {name for code in lowering.code for name in code.reads()})


def _scaled(e: Expr, factor: Symbol) -> Expr:
    """``factor`` times ``e``, taken inside the operations that are linear in their arrays (an
    array with a row's entry set at its label, a gradient balanced at the top), down to the
    products, where it joins the other factors of one value a row."""
    if isinstance(e, SetAtLabel):
        return SetAtLabel(*(_scaled(a, factor) for a in e.args))
    if isinstance(e, BalanceTop):
        return BalanceTop(_scaled(e.args[0], factor))
    return factor * e
