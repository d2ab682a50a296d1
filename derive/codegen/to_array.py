"""Pass 1 of the lowering: an indexed formula as an array formula.

The free class index ``k`` is the last axis, a sum over a class index a reduction along it that
keeps the axis (:class:`ClassSum`), ``x_c`` the entry at each row's label (:class:`AtLabel`), a
per-class array or a scalar parameter a value passed in.  Leading axes are rows (a batch).
Also here: the shape of an array formula, the entries of a formula at the labels, and the
softmax and its log from the shifted logits.
"""
from __future__ import annotations

from typing import Callable

from sympy import Add, Dummy, Expr, Indexed, KroneckerDelta, Number, S, Sum, Symbol, UnevaluatedExpr

from ..model import ABBREVIATIONS, ARRAYS, K, c, k, q, sig, y, z
from ..render.printers import TextPrinter
from .ir import (CLASS, CLASSES, EYE, FULL, LOG_PROBS, LOGITS, PROBS, ROW, SCALAR, SHIFT, SHIFTED,
                 TARGET, AtLabel, AtTop, BalanceTop, ClassAt, ClassSum, Column, LogOneMinusSoftmax,
                 LogSoftmax, LogSumExp, LoweringError, OneHot, PairAxis, Row, SetAtLabel, Shape,
                 Sigmoid, Softmax, SumOffLabel, SumOffTop, SumOffTopOf, SumXLogQ, Values)


def to_array(expr: Expr, values: Values, free: Symbol = k, rows: Symbol | None = None) -> Expr:
    """``expr`` as an array formula: the index ``free`` and every summed index are the class
    axis; ``c`` is each row's label.  With ``rows``, the formula fills a (..., K, K) array:
    ``rows`` indexes its second-last axis and ``free`` its last."""
    text = TextPrinter().doprint

    def convert(e, bound, pair=False):
        if isinstance(e, UnevaluatedExpr):
            return convert(e.args[0], bound, pair)
        if isinstance(e, Sum):
            *inner, (index, low, high) = e.limits  # Σ_i Σ_j f: the last limit is outermost
            if low != 1 or high != K:
                raise LoweringError(f"a sum must run over the classes 1..K: {text(e)}")
            if e.function.free_symbols & {free, rows}:
                raise LoweringError(f"cannot vectorise {text(e)}: its terms depend on the free "
                                    f"index {free if free in e.function.free_symbols else rows} "
                                    "too")
            term = Sum(e.function, *inner) if inner else e.function
            if isinstance(term, Sum):  # Σ_j a_i b_j = a_i Σ_j b_j: what the inner sum's index
                (j, _, _), = term.limits[-1:]  # does not reach stands outside it
                kept, rest = term.function.as_independent(j, as_Add=False)
                if kept != 1:
                    term = kept * Sum(rest, *term.limits)
            total = ClassSum(convert(term, index))
            return PairAxis(total) if pair else total
        if isinstance(e, KroneckerDelta):
            if rows is not None and set(e.args) == {rows, free}:
                return EYE
            if set(e.args) == {bound, c}:
                return TARGET  # δ_kc is the one-hot target of the label c
            raise LoweringError(f"cannot vectorise {text(e)}")
        if isinstance(e, Indexed):
            (index,), base = e.indices, e.base
            if pair and index in (rows, free):  # one of the two axes of a (..., K, K) array
                inner = convert(base[index], index)
                return Column(inner) if index == rows else Row(inner)
            if index == c:
                inner = convert(base[bound], bound)
                return ClassAt(inner) if base not in (z, y, q, sig) else AtLabel(inner)
            if index != bound:
                raise LoweringError(f"cannot vectorise {text(e)}: its index {index} is not the "
                                    "class axis of the sum around it")
            if base == z:
                return LOGITS
            if base in values.target:
                return TARGET
            if base in values.softmax:
                return PROBS
            if base == sig:
                return Sigmoid(LOGITS)
            if base in ARRAYS or base in ABBREVIATIONS:
                if base.label.name != "w":
                    raise LoweringError(f"cannot generate code for {text(base)}")
            return values.array(base)
        if e == K:
            return CLASSES
        if isinstance(e, Symbol) and not isinstance(e, Dummy):
            if e in (k, c) or e.is_integer:
                raise LoweringError(f"cannot vectorise the index {e} outside a subscript")
            return values.scalar(e)
        if not e.args:
            return e
        return e.func(*(convert(a, bound, pair) for a in e.args))

    return convert(expr, free, rows is not None)



#: Array symbols with both axes, and operations whose result has one value a row.
_FULL_SYMBOLS = (LOGITS, TARGET, SHIFTED, PROBS, LOG_PROBS)
_ROW_OPS = (ClassSum, AtLabel, ClassAt, LogSumExp, SumOffTop, SumOffLabel, SumXLogQ, AtTop,
            SumOffTopOf)
_FULL_OPS = (OneHot, Softmax, LogSoftmax, SetAtLabel, BalanceTop, LogOneMinusSoftmax)


def shape_of(e: Expr, symbol: Callable[[Symbol], Shape]) -> Shape:
    """The axes of the array formula ``e``; ``symbol`` gives a symbol's."""
    if e == EYE:
        return Shape(False, True, True)
    if isinstance(e, Symbol):
        return symbol(e)
    if isinstance(e, (Column, Row)):
        return shape_of(e.args[0], symbol) | Shape(False, False, True)
    if isinstance(e, PairAxis):
        return Shape(True, False, True)
    if isinstance(e, ClassSum):  # a sum of a per-class array alone has no rows
        return Shape(shape_of(e.args[0], symbol).rows, False)
    if isinstance(e, _ROW_OPS):
        return ROW
    if isinstance(e, _FULL_OPS):
        return FULL
    out = SCALAR
    for arg in e.args:
        out = out | shape_of(arg, symbol)
    return out


def class_axis(arrays: set[Symbol]) -> Callable[[Expr], Shape]:
    """The shape of an array formula of the loss's values (``arrays`` are the per-class ones)."""
    return lambda e: shape_of(e, lambda sym: FULL if sym in _FULL_SYMBOLS else
                              CLASS if sym in arrays else SCALAR)


def push_labels(expr: Expr, shape: Callable[[Expr], Shape],
                 definitions: dict[Symbol, Expr]) -> Expr:
    """``x_c`` of an element-wise formula is the formula of the entries at the labels: only the
    arrays along the class axis are read there (one value a row, not K); q_c and log q_c come
    from the definitions of q and log q."""
    def down(e):  # e's entry at the label
        if e in definitions:
            return down(definitions[e])
        if not shape(e).classes:
            return e
        if e in (LOGITS, TARGET, SHIFTED, PROBS, LOG_PROBS):
            return AtLabel(e)
        if isinstance(e, Symbol):  # a per-class array
            return ClassAt(e)
        if isinstance(e, (Softmax, LogSoftmax)):  # not element-wise: its entries at the labels
            return AtLabel(e)
        if isinstance(e, (ClassSum, AtLabel, ClassAt, SumOffLabel)):
            return e
        if isinstance(e, OneHot):
            return S.One
        return e.func(*map(down, e.args))

    def visit(e):
        if isinstance(e, AtLabel):
            return down(visit(e.args[0]))
        if e.args and not isinstance(e, (Symbol, Number)):
            return e.func(*map(visit, e.args))
        return e
    return visit(expr)


# -- the softmax from the shifted logits --------------------------------------------------------

def softmax_definitions(probs: Expr, log_probs: Expr) -> dict[Symbol, Expr]:
    """What ``probs`` and ``log_probs`` are, as array formulas of the shifted logits z - a,
    from the indexed formulas of the ``shift-invariance`` derivation (q_k = e^{z_k - a} /
    Σ_j e^{z_j - a} and log q_k = z_k - a - log Σ_j e^{z_j - a}), where a = max_j z_j."""
    from ..model import a
    values = Values()
    shift = {values.scalar(a): SHIFT}

    def shifted(e):  # z - a, wherever a sum has both, as the one array of the shifted logits
        if not e.args or isinstance(e, (Symbol, Number)):
            return e
        e = e.func(*map(shifted, e.args))
        if isinstance(e, Add) and LOGITS in e.args and -SHIFT in e.args:
            rest = list(e.args)
            rest.remove(LOGITS)
            rest.remove(-SHIFT)
            return Add(SHIFTED, *rest)
        return e
    out = {}
    for symbol, formula in ((PROBS, probs), (LOG_PROBS, log_probs)):
        out[symbol] = shifted(to_array(formula, values).xreplace(shift))
    return out

