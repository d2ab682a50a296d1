"""The label rewrites: the one-hot target of integer labels, written as the entry at each row's
label, so that no one-hot array is made (cited to the one-hot aside of ``class-weights``)."""
from __future__ import annotations

from sympy import Expr, Number, PolynomialError, Pow, S, Symbol, collect, expand_mul, factor, \
    factor_terms

from ..ir import CLASSES, TARGET, AtLabel, ClassSum, OneHot, SetAtLabel, SumOffLabel, XLogY
from ..to_array import class_axis, push_labels
from . import Rewrite, optimize
from .stability import REWRITES


#: The rewrites for integer labels (applied by :func:`lower` with ``labels``), and the one for
#: a sum of a constant.
LABEL_REWRITES = (
    Rewrite("one-hot-select", "Σ_i y_i f_i = f_c and Σ_i y_i = 1 for a one-hot target at the "
            "label c: the entry at the label, without a one-hot array", None,
            ("class-weights", "one-hot-select")),
    Rewrite("one-hot-entry", "y_k = δ_kc: the terms with y_k are added at each row's label "
            "only", None, ("class-weights", "one-hot-entry")),
    Rewrite("one-hot-rows", "y_k = δ_kc as the one-hot rows of the labels, where y enters a "
            "function", None, ("class-weights", "one-hot-entry")),
    Rewrite("label-term", "Σ_i (a_i + y_i b_i) = Σ_(i≠c) a_i + (a_c + b_c) for a one-hot "
            "target: the label's term is one formula, so what a and b share cancels before "
            "anything is computed", None, ("class-weights", "one-hot-select")),
    Rewrite("sum-of-constant", "Σ_{i=1}^K x = K x for an x that is the same for every class",
            None),
    Rewrite("log1p-logsumexp", "Σ_j e^{z_j - a} = 1 + Σ_{j≠top} e^{z_j - a} and its log "
            "log1p(Σ_{j≠top} e^{z_j - a}), with a = z_top the largest logit: exact where the top "
            "dominates, so that 1 - q there keeps its digits", None),
)



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


def at_labels(expr: Expr, used: set[str], arrays: set[Symbol]) -> Expr:
    """``expr`` for a one-hot target at the labels: Σ_i y_i f_i = f_c, Σ_i y_i = 1, and
    a_k + y_k b_k adds b_c at each label; a target left inside a function is the one-hot rows."""
    def visit(e):
        if isinstance(e, ClassSum) and e.has(TARGET):
            split = _linear_in_target(visit_inner(e.args[0]))
            if split is not None:
                used.add("one-hot-select")
                a, b = split
                if a == 0:
                    return AtLabel(b)
                if not class_axis(arrays)(a).classes:
                    return ClassSum(a) + AtLabel(b)
                # Σ_i a_i + b_c as the other classes' sum and a_c + b_c as one formula, in which
                # what a and b share cancels before anything is computed (log σ in the binary
                # cross-entropy: a_c + b_c = softplus(-z_c), not a difference of softplus)
                used.add("label-term")
                return SumOffLabel(a) + AtLabel(a + b)
        if isinstance(e, XLogY) and e.args == (TARGET, TARGET):
            used.add("one-hot-select")
            return S.Zero  # 1 log 1 = 0 log 0 = 0
        if e == TARGET:
            used.add("one-hot-rows")
            return OneHot(CLASSES)
        if e.args and not isinstance(e, (Symbol, Number)):
            return e.func(*map(visit, e.args))
        return e

    def visit_inner(e):  # the terms of a class sum: keep y for the split
        if isinstance(e, (ClassSum, XLogY)) or not e.has(TARGET):
            return visit(e)
        if e == TARGET:
            return e
        return e.func(*map(visit_inner, e.args))

    if expr.has(TARGET):
        split = _linear_in_target(visit_inner(expr))
        if split is not None and split[1] != 0:
            used.add("one-hot-entry")
            a, b = split
            a = factor_terms(visit(a))
            # the entry at the label, a_c + b_c, as one formula: (q_c - 1) r becomes
            # -(1 - q_c) r, which the rewrites then compute without cancellation
            at = push_labels(AtLabel(a), class_axis(arrays), {})
            entry = at + push_labels(AtLabel(b), class_axis(arrays), {})
            # e^{z_c} / Σ_j e^{z_j} becomes q_c first, then (q_c - 1) r is made a factor
            entry = optimize(expand_mul(entry), REWRITES, used)
            try:
                entry = factor(entry)
            except PolynomialError:  # a term factor cannot treat as a polynomial
                entry = factor_terms(entry)
            return SetAtLabel(a, optimize(entry, REWRITES, used))
    return visit(expr)

