"""The label rewrites: the one-hot target of integer labels, written as the entry at each row's
label, so that no one-hot array is made (cited to the one-hot aside of ``class-weights``)."""
from __future__ import annotations

from sympy import Expr, PolynomialError, Pow, S, Symbol, collect, expand_mul, factor, factor_terms

from ..ir import CLASSES, TARGET, AtLabel, ClassSum, OneHot, SetAtLabel, SumOffLabel, XLogY
from ..to_array import class_axis, push_labels
from . import Rewrite, optimize
from .stability import REWRITES


def _linear_in_target(e: Expr) -> tuple[Expr, Expr] | None:
    """``(a, b)`` with ``e = a + y b`` and neither a nor b depending on y; None if ``e`` is not
    linear in y (for a one-hot y, y^n = y)."""
    if not e.has(TARGET):
        return e, S.Zero
    e = expand_mul(e).replace(lambda p: isinstance(p, Pow) and p.base == TARGET
                              and p.exp.is_integer and p.exp.is_positive, lambda p: TARGET)
    parts = collect(e, TARGET, evaluate=False)
    if set(parts) - {S.One, TARGET} or any(v.has(TARGET) for v in parts.values()):
        return None
    return parts.get(S.One, S.Zero), parts.get(TARGET, S.Zero)


def _select(e, shape):
    """Σ_i y_i f_i = f_c and Σ_i y_i = 1 (a class sum linear in y), and y log y = 0."""
    if isinstance(e, XLogY) and e.args == (TARGET, TARGET):
        return S.Zero  # 1 log 1 = 0 log 0 = 0
    split = _linear_in_target(e.args[0]) if isinstance(e, ClassSum) and e.has(TARGET) else None
    if split is None:
        return None
    a, b = split
    if a == 0:
        return AtLabel(b)
    return ClassSum(a) + AtLabel(b) if not shape(a).classes else None


def _label_term(e, shape):
    """Σ_i (a_i + y_i b_i) with a along the classes: the other classes' sum, and a_c + b_c as
    one formula, in which what a and b share cancels before anything is computed (log σ in the
    binary cross-entropy: a_c + b_c = softplus(-z_c), not a difference of softplus)."""
    split = _linear_in_target(e.args[0]) if isinstance(e, ClassSum) and e.has(TARGET) else None
    if split is None or split[0] == 0 or not shape(split[0]).classes:
        return None
    a, b = split
    return SumOffLabel(a) + AtLabel(a + b)


def _rows(e):
    return OneHot(CLASSES) if e == TARGET else None


def _entry(expr, shape, cited):
    """a_k + y_k b_k: a, and a_c + b_c at each row's label, as one formula."""
    split = _linear_in_target(expr) if expr.has(TARGET) else None
    if split is None or split[1] == 0:
        return None
    a, b = split
    a = factor_terms(optimize(a, (ONE_HOT_ROWS,), cited))
    # the entry at the label, a_c + b_c, as one formula: (q_c - 1) r becomes -(1 - q_c) r,
    # which the rewrites then compute without cancellation
    entry = push_labels(AtLabel(a), shape, {}) + push_labels(AtLabel(b), shape, {})
    # e^{z_c} / Σ_j e^{z_j} becomes q_c first, then (q_c - 1) r is made a factor
    entry = optimize(expand_mul(entry), REWRITES, cited)
    try:
        entry = factor(entry)
    except PolynomialError:  # a term factor cannot treat as a polynomial
        entry = factor_terms(entry)
    return SetAtLabel(a, optimize(entry, REWRITES, cited))


_SELECT = ("class-weights", "one-hot-select")
ONE_HOT_SELECT = Rewrite("one-hot-select", "Σ_i y_i f_i = f_c and Σ_i y_i = 1 for a one-hot "
                         "target at the label c: the entry at the label, without a one-hot array",
                         _select, _SELECT, context=("shape",))
LABEL_TERM = Rewrite("label-term", "Σ_i (a_i + y_i b_i) = Σ_(i≠c) a_i + (a_c + b_c) for a "
                     "one-hot target: the label's term is one formula, so what a and b share "
                     "cancels before anything is computed", _label_term, _SELECT,
                     context=("shape",))
ONE_HOT_ROWS = Rewrite("one-hot-rows", "y_k = δ_kc as the one-hot rows of the labels, where y "
                       "enters a function", _rows, ("class-weights", "one-hot-entry"))
ONE_HOT_ENTRY = Rewrite("one-hot-entry", "y_k = δ_kc: the terms with y_k are added at each "
                        "row's label only", _entry, ("class-weights", "one-hot-entry"),
                        context=("shape", "cited"), whole=True)

#: The rewrites for integer labels, in the order :func:`at_labels` applies them.
LABEL_REWRITES = (ONE_HOT_SELECT, LABEL_TERM, ONE_HOT_ROWS, ONE_HOT_ENTRY)


def at_labels(expr: Expr, used: set[str], arrays: set[Symbol]) -> Expr:
    """``expr`` for a one-hot target at the labels: Σ_i y_i f_i = f_c, Σ_i y_i = 1, and
    a_k + y_k b_k adds b_c at each label; a target left inside a function is the one-hot rows."""
    shape = class_axis(arrays)
    expr = optimize(expr, (ONE_HOT_SELECT, LABEL_TERM), used, shape=shape)
    if LABEL_TERM.name in used:  # the label's term is a one-hot select too
        used.add(ONE_HOT_SELECT.name)
    # a class sum not linear in y: its target is the one-hot rows
    expr = expr.replace(lambda e: isinstance(e, ClassSum) and e.has(TARGET),
                        lambda e: optimize(e, (ONE_HOT_ROWS,), used))
    expr = optimize(expr, (ONE_HOT_ENTRY,), used, shape=shape, cited=used)
    return optimize(expr, (ONE_HOT_ROWS,), used)
