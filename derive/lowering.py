"""Stage 6 of the pipeline: derived formulas as stable, vectorised NumPy lines.

One lowering for every formula the generated code implements, in four passes:

1. :func:`to_array`: an indexed formula becomes an array formula.  The free class index ``k``
   is the last axis, a sum over a class index a reduction along it that keeps the axis
   (:class:`ClassSum`), ``x_c`` the entry at each row's label (:class:`AtLabel`), a per-class
   array or a scalar parameter a value passed in.  Leading axes are rows (a batch).
2. :data:`REWRITES`: named stability rewrites, each an identity of the model (justified by a
   step of a checked derivation) or of the reals, applied where they match; with integer labels,
   the one-hot rewrites (:data:`LABEL_REWRITES`) replace Σ_i y_i f_i by f at the label, so no
   one-hot array is made.
3. SymPy's ``cse`` finds what the formulas share.
4. :class:`Lowering` writes one NumPy call a line, each with a comment saying what it computes,
   and lets a line write over an array that nothing later reads.

What depends on NumPy is only the spelling of each operation (:data:`CALLS`) and the helpers
the generated module defines; the passes before it know nothing of the backend.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from sympy import (Add, Dummy, Expr, Function, Indexed, IndexedBase, KroneckerDelta, Mul, Number,
                   PolynomialError, Pow, S, Sum, Symbol, UnevaluatedExpr, collect, cse, exp,
                   expand_mul, factor, factor_terms, log, numbered_symbols)
from sympy.printing.numpy import NumPyPrinter

from .errors import DeriveError
from .model import ABBREVIATIONS, ARRAYS, K, c, free_indices, k, q, sig, y, z
from .render.printers import TextPrinter


class LoweringError(DeriveError):
    """A formula the lowering cannot turn into array code."""


# -- the array formulas: symbols and operations ----------------------------------------------

class ArrayOp(Function):
    """An operation of array formulas that SymPy should leave alone."""


class ClassSum(ArrayOp):
    """Σ over the class axis, keeping it (a (..., 1) result)."""


class AtLabel(ArrayOp):
    """Each row's entry at its class label, keeping the class axis: ``x_c``."""


class ClassAt(ArrayOp):
    """A per-class array's entry at each row's label: ``π_c`` of an array of shape (K,)."""


class OneHot(ArrayOp):
    """The one-hot rows of the labels, where a formula needs whole rows of the target."""


class SetAtLabel(ArrayOp):
    """``x`` with each row's entry at its label replaced by ``r`` (one value a row)."""


class LogSumExp(ArrayOp):
    """log Σ_j e^{u_j}, computed as m + log Σ_j e^{u_j - m} with m = max_j u_j."""


class _View(ArrayOp):
    """An array seen along other axes: a number stays a number."""

    @classmethod
    def eval(cls, arg):
        return arg if arg.is_Number else None


class Column(_View):
    """An array along the classes as the second-last axis of a (..., K, K) array."""


class Row(_View):
    """An array along the classes as the last axis of a (..., K, K) array."""


class PairAxis(_View):
    """One value a row (..., 1) as (..., 1, 1), to multiply a (..., K, K) array."""


class SumXLogQ(ArrayOp):
    """Σ_j x_j log q_j along the classes, keeping the axis, with 0 · log 0 = 0 where a class is
    masked (a logit of -inf)."""


class SumOffLabel(ArrayOp):
    """Σ over the class axis of the classes other than each row's label, keeping the axis."""


class SumOffTop(ArrayOp):
    """Σ_j e^{s_j} over the classes other than the top (the largest logit, where e^{s} = 1) of
    the exponentials of the shifted logits, keeping the axis; NaN where the top is NaN."""


class Log1p(ArrayOp):
    """log(1 + x), exact for small x."""


class Softmax(ArrayOp):
    """e^{u_k} / Σ_j e^{u_j}, computed from the max-shifted exponentials."""


class SoftPlus(ArrayOp):
    """log(1 + e^u), computed as logaddexp(0, u): nothing overflows."""


class Sigmoid(ArrayOp):
    """1 / (1 + e^{-u}), computed without overflow for either sign of u."""


class OneMinusExp(ArrayOp):
    """1 - e^l, computed as -expm1(l): exact as l → 0, where 1 - q loses every digit."""


class LogOneMinusExp(ArrayOp):
    """log(1 - e^l) for l ≤ 0, computed as log(-expm1(l)) or log1p(-e^l), whichever is exact."""


class LogRatio(ArrayOp):
    """l / (1 - e^l), with its limit -1 at l = 0: (1 - q)^{γ-1} log q is (1 - q)^γ times this."""


class XLogY(ArrayOp):
    """x log y, with 0 log 0 = 0."""


#: Array symbols: the names the generated code gives them.
LOGITS, TARGET, SHIFT, SHIFTED, PROBS, LOG_PROBS, CLASSES = (
    Symbol(n) for n in ("logits", "target", "shift", "shifted", "probs", "log_probs", "classes"))
EYE = Symbol("eye")  # δ of the two axes of a (..., K, K) array

#: What the comments call each array symbol.
_MATH = {LOGITS: "z", TARGET: "y", SHIFT: "a", SHIFTED: "(z - a)", PROBS: "q",
         LOG_PROBS: "log q", CLASSES: "K", EYE: "δ"}


def value_name(symbol) -> str:
    """The name a user's parameter or per-class array has in generated code: ``v_`` and its
    name, which is a validated identifier (so nothing the user typed can shadow the module's
    own names)."""
    name = symbol.label.name if isinstance(symbol, IndexedBase) else symbol.name
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise LoweringError(f"{name!r} cannot be a name in generated code")
    return "v_" + name


# -- shapes ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Shape:
    """Which axes an array has: the rows (leading axes), the class axis, and the second class
    axis of a (..., K, K) array."""

    rows: bool
    classes: bool
    pair: bool = False

    def __or__(self, other: "Shape") -> "Shape":  # broadcasting
        return Shape(self.rows or other.rows, self.classes or other.classes,
                     self.pair or other.pair)


SCALAR, ROW, CLASS, FULL = Shape(False, False), Shape(True, False), Shape(False, True), \
    Shape(True, True)
PAIR = Shape(True, True, True)


# -- pass 1: indexed formula -> array formula ---------------------------------------------------

@dataclass
class Values:
    """The scalar parameters and per-class arrays of the formulas, as array symbols.

    ``names`` gives some of them the names the generated code already has for them (the
    catalogue's ``temperature``, ``epsilon``, ``weight``); ``softmax`` are the bases that stand
    for the softmax of the logits the code was given (q, and p for logits already divided by T).
    """

    scalars: dict[Symbol, Symbol] = field(default_factory=dict)
    arrays: dict[IndexedBase, Symbol] = field(default_factory=dict)
    names: dict = field(default_factory=dict)
    softmax: tuple = (q,)
    target: tuple = (y,)

    def scalar(self, s: Symbol) -> Symbol:
        return self.scalars.setdefault(s, Symbol(self.names.get(s) or value_name(s)))

    def array(self, base: IndexedBase) -> Symbol:
        return self.arrays.setdefault(base, Symbol(self.names.get(base) or value_name(base)))

    def math(self) -> dict[Symbol, str]:
        text = TextPrinter()
        return {**{v: text.doprint(s) for s, v in self.scalars.items()},
                **{v: text.doprint(b) for b, v in self.arrays.items()}}


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


# -- pass 2: named rewrites ---------------------------------------------------------------------

@dataclass(frozen=True)
class Rewrite:
    """A named rewrite of array formulas: ``apply`` gives the new node, or None where it does
    not match.  ``source`` names a derivation and the rule of its step that proves the rewrite
    an identity of the model (None for an identity of the reals, tested in
    ``tests/test_lowering.py``)."""

    name: str
    why: str
    apply: Callable[[Expr], Expr | None] | None
    source: tuple[str, str] | None = None

    def step(self) -> tuple[str, int] | None:
        """The derivation and the number of its step that proves this rewrite, checked."""
        if self.source is None:
            return None
        from . import derivation
        name, rule = self.source
        d = derivation(name)
        return name, next(n for n, s in enumerate(d.steps, 1) if rule in s.rules)


def _is_one_minus(e: Expr, what: Callable[[Expr], bool]):
    """The x of ``e = 1 - x`` where ``what(x)``; None otherwise."""
    if isinstance(e, Add) and len(e.args) == 2 and S.One in e.args:
        (other,) = [t for t in e.args if t != 1]
        if other.could_extract_minus_sign() and what(-other):
            return -other
    return None


def _log_of_probs(e):
    if isinstance(e, log) and e.args[0] == PROBS:
        return LOG_PROBS
    if isinstance(e, log) and e.args[0] == AtLabel(PROBS):
        return AtLabel(LOG_PROBS)
    return None


def _softmax_fold(e):
    """e^{u_k} / Σ_j e^{u_j} (or its entry at the label, e^{u_c} / Σ_j e^{u_j}) as softmax(u)."""
    if not isinstance(e, Mul):
        return None
    for f in e.args:
        if isinstance(f, Pow) and f.exp == -1 and isinstance(f.base, ClassSum) \
                and isinstance(f.base.args[0], exp):
            u = f.base.args[0].args[0]
            if u == SHIFTED:  # q's own definition, written out on purpose
                return None
            softmax = PROBS if u == LOGITS else Softmax(u)
            for top, value in ((exp(u), softmax), (exp(AtLabel(u)), AtLabel(softmax))):
                if top in e.args:
                    rest = [g for g in e.args if g not in (f, top)]
                    return Mul(value, *rest)
    return None


def _log_of_softmax(e):
    if isinstance(e, log) and isinstance(e.args[0], Softmax):
        u = e.args[0].args[0]
        return u - LogSumExp(u)
    if isinstance(e, log) and isinstance(e.args[0], AtLabel) \
            and isinstance(e.args[0].args[0], Softmax):
        u = e.args[0].args[0].args[0]
        return AtLabel(u) - LogSumExp(u)
    return None


def _logsumexp(e):
    if isinstance(e, log) and isinstance(e.args[0], ClassSum) and isinstance(e.args[0].args[0], exp):
        u = e.args[0].args[0].args[0]
        if u == SHIFTED:  # already max-shifted: see log1p-logsumexp
            return None
        return SHIFT + log(ClassSum(exp(SHIFTED))) if u == LOGITS else LogSumExp(u)
    return None


def _one_minus_probs(e):
    x = _is_one_minus(e, lambda x: x in (PROBS, AtLabel(PROBS)))
    if x is not None:
        return OneMinusExp(LOG_PROBS if x == PROBS else AtLabel(LOG_PROBS))
    x = _is_one_minus(-e, lambda x: x in (PROBS, AtLabel(PROBS)))  # q - 1 = -(1 - q)
    if x is not None:
        return -OneMinusExp(LOG_PROBS if x == PROBS else AtLabel(LOG_PROBS))
    return None


def _one_minus_exponential(e):
    x = _is_one_minus(e, lambda x: isinstance(x, exp))
    if x is not None:
        return OneMinusExp(x.args[0])
    x = _is_one_minus(-e, lambda x: isinstance(x, exp))  # e^l - 1 = -(1 - e^l)
    return -OneMinusExp(x.args[0]) if x is not None else None


def _softmax_at_label(e):
    if isinstance(e, AtLabel) and isinstance(e.args[0], Softmax):
        u = e.args[0].args[0]
        return exp(AtLabel(u) - LogSumExp(u))
    return None


def _log_one_minus_exp(e):
    if isinstance(e, log) and isinstance(e.args[0], OneMinusExp):
        return LogOneMinusExp(e.args[0].args[0])
    return None


def _power_times_log(e):
    """(1 - e^l)^p · l → (1 - e^l)^{p+1} · l / (1 - e^l): finite at l = 0 for any p > -1."""
    if not isinstance(e, Mul):
        return None
    for f in e.args:
        if isinstance(f, Pow) and isinstance(f.base, OneMinusExp) and f.base.args[0] in e.args \
                and not f.exp.is_nonnegative:
            l = f.base.args[0]
            rest = [g for g in e.args if g not in (f, l)]
            return Mul(Pow(f.base, f.exp + 1), LogRatio(l), *rest)
    return None


def _log_sigmoid(e):
    if isinstance(e, log) and isinstance(e.args[0], Sigmoid):
        return -SoftPlus(-e.args[0].args[0])
    return None


def _sigmoid_complement(e):
    x = _is_one_minus(e, lambda x: isinstance(x, Sigmoid))
    return Sigmoid(-x.args[0]) if x is not None else None


def _xlogy(e):
    if isinstance(e, Mul) and TARGET in e.args and log(TARGET) in e.args:
        rest = [g for g in e.args if g not in (TARGET, log(TARGET))]
        return Mul(XLogY(TARGET, TARGET), *rest)
    return None


REWRITES = (
    Rewrite("log-softmax", "log q_k = z_k - a - log Σ_j e^{z_j - a} with a = max_j z_j: no "
            "exponent is positive, and log q is exact where q underflows",
            _log_of_probs, ("shift-invariance", "log-quotient")),
    Rewrite("fold-softmax", "e^{u_k} / Σ_j e^{u_j} is the softmax of u, computed max-shifted",
            _softmax_fold, ("shift-invariance", "shift-softmax")),
    Rewrite("log-of-softmax", "log(e^{u_k} / Σ_j e^{u_j}) = u_k - log Σ_j e^{u_j}",
            _log_of_softmax, ("shift-invariance", "log-quotient")),
    Rewrite("logsumexp", "log Σ_j e^{u_j} = m + log Σ_j e^{u_j - m} with m = max_j u_j: "
            "nothing overflows", _logsumexp, ("shift-invariance", "log-quotient")),
    Rewrite("one-minus-softmax", "1 - q_k = -expm1(log q_k): exact as q_k → 1",
            _one_minus_probs),
    Rewrite("softmax-at-label", "softmax(u)_c = e^{u_c - log Σ_j e^{u_j}}: its log, and 1 - it, "
            "are then exact", _softmax_at_label, ("shift-invariance", "log-quotient")),
    Rewrite("one-minus-exp", "1 - e^l = -expm1(l): exact as l → 0", _one_minus_exponential),
    Rewrite("log-one-minus-softmax", "log(1 - q_k) from log q_k without cancellation",
            _log_one_minus_exp),
    Rewrite("power-times-log", "(1 - q)^p log q = (1 - q)^{p+1} · log q / (1 - q), whose last "
            "factor tends to -1 as q → 1: no 0 · ∞ for p < 0", _power_times_log),
    Rewrite("log-sigmoid", "log σ(u) = -log(1 + e^{-u}), computed as -softplus(-u)",
            _log_sigmoid, ("log-sigmoid", "log-quotient")),
    Rewrite("sigmoid-complement", "1 - σ(u) = σ(-u): exact where σ(u) → 1",
            _sigmoid_complement, ("log-sigmoid", "multiply-through")),
    Rewrite("xlogy", "y log y with 0 log 0 = 0", _xlogy),
)

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


def _masked_sum(e):
    """Σ_j x_j log q_j, linear in log q, as a sum in which 0 · log 0 = 0."""
    if isinstance(e, ClassSum) and isinstance(e.args[0], Mul) and LOG_PROBS in e.args[0].args:
        rest = e.args[0] / LOG_PROBS
        if not rest.has(LOG_PROBS):
            return SumXLogQ(rest, LOG_PROBS)
    return None


MASKED_SUM = Rewrite("masked-sum", "Σ_j y_j log q_j with 0 · log 0 = 0 where a class is "
                     "masked (q_j = 0): the limit of y log q as y → 0", _masked_sum)


def _exact_log_sum(expr: Expr, used: set[str]) -> Expr:
    """``expr`` with Σ_j e^{z_j - a} as 1 + the sum of the other terms, and its log as log1p of
    that sum: exact where the top term dominates."""
    exps = exp(SHIFTED)
    others = SumOffTop(exps)
    new = expr.xreplace({log(ClassSum(exps)): Log1p(others)}).xreplace(
        {ClassSum(exps): 1 + others})
    if new != expr:
        used.add("log1p-logsumexp")
    return new


def _bottom_up(expr: Expr, rewrites, used: set[str]) -> Expr:
    """Apply ``rewrites`` to every node, children first, until none matches."""
    def visit(e):
        if e.args and not isinstance(e, (Symbol, Number)):
            e = e.func(*map(visit, e.args))
        for _ in range(20):
            for rw in rewrites:
                new = rw.apply(e)
                if new is not None and new != e:
                    used.add(rw.name)
                    e = visit(new)
                    break
            else:
                return e
        return e
    return visit(expr)


# -- the one-hot target of integer labels --------------------------------------------------------

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


def _at_labels(expr: Expr, used: set[str], arrays: set[Symbol]) -> Expr:
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
                if not _class_axis(arrays)(a).classes:
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
            at = _push_labels(AtLabel(a), _class_axis(arrays), {})
            entry = at + _push_labels(AtLabel(b), _class_axis(arrays), {})
            # e^{z_c} / Σ_j e^{z_j} becomes q_c first, then (q_c - 1) r is made a factor
            entry = _bottom_up(expand_mul(entry), REWRITES, used)
            try:
                entry = factor(entry)
            except PolynomialError:  # a term factor cannot treat as a polynomial
                entry = factor_terms(entry)
            return SetAtLabel(a, _bottom_up(entry, REWRITES, used))
    return visit(expr)


#: Array symbols with both axes, and operations whose result has one value a row.
_FULL_SYMBOLS = (LOGITS, TARGET, SHIFTED, PROBS, LOG_PROBS)
_ROW_OPS = (ClassSum, AtLabel, ClassAt, LogSumExp, SumOffTop, SumOffLabel, SumXLogQ)
_FULL_OPS = (OneHot, Softmax, SetAtLabel)


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
    if isinstance(e, _ROW_OPS):
        return ROW
    if isinstance(e, _FULL_OPS):
        return FULL
    out = SCALAR
    for arg in e.args:
        out = out | shape_of(arg, symbol)
    return out


def _class_axis(arrays: set[Symbol]) -> Callable[[Expr], Shape]:
    """The shape of an array formula of the loss's values (``arrays`` are the per-class ones)."""
    return lambda e: shape_of(e, lambda sym: FULL if sym in _FULL_SYMBOLS else
                              CLASS if sym in arrays else SCALAR)


def _push_labels(expr: Expr, shape: Callable[[Expr], Shape],
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
        if isinstance(e, Softmax):  # not element-wise: its entries at the labels
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
    from .model import a
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


# -- passes 3 and 4: common subexpressions, then one call a line --------------------------------

@dataclass
class Instruction:
    name: str
    call: str                 # "numpy.exp", "_take", ... ("" for an alias)
    args: tuple[str, ...]
    shape: Shape
    meaning: Expr             # what the value is, as an array formula
    inplace: bool = True      # may write over an operand nothing later reads
    extra: str = ""           # keyword arguments after the operands
    out: str | None = None


#: How each element-wise operation is spelled: (call, keyword arguments, may write in place).
CALLS: dict[type, tuple[str, str, bool]] = {
    exp: ("numpy.exp", "", True),
    log: ("numpy.log", "", True),
    ClassSum: ("numpy.sum", "axis=-1, keepdims=True", False),
    AtLabel: ("_take", "", False),
    ClassAt: ("_class_at", "", False),
    OneHot: ("_one_hot", "", False),
    SetAtLabel: ("_set_at_label", "", True),
    LogSumExp: ("_logsumexp", "", False),
    SumOffTop: ("_sum_off_top", "", False),
    Log1p: ("numpy.log1p", "", True),
    SumOffLabel: ("_sum_off_label", "", False),
    SumXLogQ: ("_sum_xlogq", "", False),
    Softmax: ("_softmax", "", False),
    SoftPlus: ("_softplus", "", True),
    Sigmoid: ("_sigmoid", "", True),
    OneMinusExp: ("_one_minus_exp", "", True),
    LogOneMinusExp: ("_log_one_minus_exp", "", False),
    LogRatio: ("_log_ratio", "", False),
    XLogY: ("_xlogy", "", False),
}


#: How an array is viewed along the axes of a (..., K, K) array.
_VIEWS = {Column: "[..., :, None]", Row: "[..., None, :]", PairAxis: "[..., None]"}


def _name(operand: str) -> str:
    """The array an operand reads: ``probs`` for ``probs[..., :, None]``."""
    return operand.partition("[")[0]


class _CodePrinter(NumPyPrinter):
    def _print_Symbol(self, expr):
        # K as a number of the logits' dtype: 1/K is then not an integer division, and float32
        # stays float32
        return "logits.dtype.type(logits.shape[-1])" if expr == CLASSES else expr.name


class CommentPrinter(TextPrinter):
    """Array formulas as the comments of generated lines."""

    def __init__(self, math: dict[Symbol, str]):
        super().__init__()
        self.math = {**_MATH, **math}

    def _print_Symbol(self, expr):
        return self.math.get(expr, expr.name)

    def _print_ClassSum(self, expr):
        return "Σ_j %s" % self._factor(expr.args[0])

    def _print_Column(self, expr):
        return self._print(expr.args[0])

    _print_PairAxis = _print_Column

    def _print_Row(self, expr):
        return "%sᵀ" % self._factor(expr.args[0])

    def _print_SumXLogQ(self, expr):
        return "Σ_j %s" % self._factor(expr.args[0] * expr.args[1])

    def _print_SumOffLabel(self, expr):
        return "Σ_(j≠c) %s" % self._factor(expr.args[0])

    def _print_AtLabel(self, expr):
        return "%s at the label" % self._factor(expr.args[0])

    _print_ClassAt = _print_AtLabel

    def _print_OneHot(self, expr):
        return "y (one-hot)"

    def _print_SetAtLabel(self, expr):
        return "%s, and %s at the label" % (self._print(expr.args[0]), self._print(expr.args[1]))

    def _print_SumOffTop(self, expr):
        return "Σ_(j≠top) %s" % self._factor(expr.args[0])

    def _print_Log1p(self, expr):
        return "log(1 + %s)" % self._print(expr.args[0])

    def _print_LogSumExp(self, expr):
        return "log Σ_j e^%s" % self._factor(expr.args[0])

    def _print_Softmax(self, expr):
        return "softmax(%s)" % self._print(expr.args[0])

    def _print_SoftPlus(self, expr):
        return "log(1 + e^%s)" % self._factor(expr.args[0])

    def _print_Sigmoid(self, expr):
        return "σ(%s)" % self._print(expr.args[0])

    def _print_OneMinusExp(self, expr):
        if expr.args[0] in (LOG_PROBS, LOG_PROBS_AT):  # 1 - e^{log q} is 1 - q
            return "1 - %s" % self._print(PROBS if expr.args[0] == LOG_PROBS else PROBS_AT)
        return "1 - e^%s" % self._factor(expr.args[0])

    def _print_LogOneMinusExp(self, expr):
        return "log(1 - e^%s)" % self._factor(expr.args[0])

    def _print_LogRatio(self, expr):
        return "(%s)/(%s)" % (self._print(expr.args[0]), self._print(OneMinusExp(expr.args[0])))

    def _print_XLogY(self, expr):
        return "%s·log(%s)" % (self._factor(expr.args[0]), self._print(expr.args[1]))

    def _factor(self, f, alone=False):
        if isinstance(f, ClassSum):
            return self._print(f)
        if isinstance(f, OneMinusExp):
            return "(%s)" % self._print(f)
        return super()._factor(f, alone or isinstance(f, Mul))


class Lowering:
    """Array formulas as one NumPy call a line, writing over arrays no longer needed."""

    def __init__(self, shapes: dict[str, Shape], math: dict[Symbol, str],
                 fold: dict[Expr, Expr] | None = None):
        self.fold = fold or {}
        self.pending: dict[Symbol, Expr] = {}
        self.code: list[Instruction] = []
        self.names: dict[Expr, str] = {}
        self.shapes = {"logits": FULL, "target": FULL, "shift": ROW, "shifted": FULL,
                       "labels": ROW, "classes": SCALAR, **shapes}
        self.expansions: dict[Symbol, Expr] = {}
        self.fresh = numbered_symbols("t")
        self.printer = _CodePrinter()
        self.math = math

    def shape(self, e: Expr) -> Shape:
        def symbol(sym):
            if sym in self.pending:  # a common subexpression not computed yet
                return self.shape(self.pending[sym])
            return self.shapes.get(self.names.get(sym, sym.name), SCALAR)
        return shape_of(e, symbol)

    def define(self, name: str, expr: Expr) -> str:
        if isinstance(expr, Symbol) or expr.is_Number:
            operand = self.operand(expr)
            if operand == name:  # q or log q, already computed under the output's name
                return name
            return self._add(name, "", (operand,), expr, self.shapes.get(operand, SCALAR),
                             inplace=False)
        return self._emit(expr, name)

    def operand(self, e: Expr) -> str:
        if e in self.names:
            return self.names[e]
        if isinstance(e, (Column, Row, PairAxis)):  # a view of an array, not a new one
            return self.operand(e.args[0]) + _VIEWS[type(e)]
        if e == EYE:
            return "numpy.eye(logits.shape[-1], dtype=logits.dtype)"
        if e in self.pending:  # a common subexpression, or q or log q: computed when first read
            value = self.pending.pop(e)
            name = e.name if e in (PROBS, LOG_PROBS) else str(next(self.fresh))
            self.names[e] = self.define(name, value)
            self.expansions[e] = self.expansions.get(Symbol(self.names[e]), e)
            return self.names[e]
        if e.is_Number:
            return self.printer.doprint(e)
        if isinstance(e, Symbol):
            return self.printer.doprint(e)
        self.names[e] = self._emit(e, str(next(self.fresh)))
        return self.names[e]

    def _emit(self, e: Expr, name: str) -> str:
        if type(e) in CALLS:
            call, extra, inplace = CALLS[type(e)]
            if isinstance(e, OneHot):
                args = ("labels", "logits")
            else:
                args = tuple(self.operand(a) for a in e.args)
            if isinstance(e, (AtLabel, ClassAt, SumOffLabel)):
                args = (args[0], "labels")
            elif isinstance(e, SumOffTop):
                args = (args[0], "top")
            elif isinstance(e, SetAtLabel):
                args = (args[0], "labels", args[1], "logits")
            return self._add(name, call, args, e, self.shape(e), inplace, extra)
        if isinstance(e, Pow):
            base = self.operand(e.base)
            if e.exp == -1:
                return self._add(name, "numpy.reciprocal", (base,), e, self.shape(e))
            if e.exp == 2:
                return self._add(name, "numpy.square", (base,), e, self.shape(e))
            if e.exp == S.Half:
                return self._add(name, "numpy.sqrt", (base,), e, self.shape(e))
            return self._add(name, "numpy.power", (base, self.operand(e.exp)), e, self.shape(e))
        if isinstance(e, Add):
            return self._emit_add(e, name)
        if isinstance(e, Mul):
            return self._emit_mul(e, name)
        raise LoweringError(f"no NumPy lowering for {e}")

    def _emit_add(self, e: Expr, name: str) -> str:
        terms = sorted(e.as_ordered_terms(), key=lambda t: t.could_extract_minus_sign())
        acc = self.operand(terms[0])
        value = terms[0]
        for n, term in enumerate(terms[1:], 1):
            target = name if n == len(terms) - 1 else str(next(self.fresh))
            value = value + term
            if term.could_extract_minus_sign():
                acc = self._add(target, "numpy.subtract", (acc, self.operand(-term)), value,
                                self.shape(value))
            else:
                acc = self._add(target, "numpy.add", (acc, self.operand(term)), value,
                                self.shape(value))
        return acc

    def _emit_mul(self, e: Expr, name: str) -> str:
        """A product as multiplications and divisions, the smallest operands first (scalars,
        then rows, then whole arrays), so that as few operations as can be touch every class."""
        coeff, rest = e.as_coeff_Mul()
        items = []
        for f in Mul.make_args(rest):
            if isinstance(f, Pow) and f.exp.is_Number and f.exp < 0:
                items.append(("numpy.divide", Pow(f.base, -f.exp)))
            else:
                items.append(("numpy.multiply", f))
        negate = False
        if coeff.is_negative:
            coeff, negate = -coeff, True
        if coeff != 1 or not items or items[0][0] == "numpy.divide" and negate:
            items.append(("numpy.multiply", -coeff if negate else coeff))
            negate = False
        def rank(f):  # how many entries an operand has: scalars, rows, then whole arrays
            shape = self.shape(f)
            return shape.rows + shape.classes + 2 * shape.pair
        items.sort(key=lambda item: (rank(item[1]), item[0] == "numpy.divide"))
        if items[0][0] == "numpy.divide":  # x / T, not x · (1/T), which overflows for a tiny T
            firsts = [n for n, item in enumerate(items) if item[0] == "numpy.multiply"]
            if firsts:
                items.insert(0, items.pop(firsts[0]))
        first_call, first = items[0]
        if first_call == "numpy.divide":
            acc, value, items = "1", S.One, items
        else:
            acc, value, items = self.operand(first), first, items[1:]
        steps = list(items)
        if negate:  # on the smallest value that has it: a row rather than every class
            full = [n for n, (_, f) in enumerate(steps) if rank(f) >= 2]
            at = len(steps) if rank(value) >= 2 or not full else full[0]
            steps.insert(at, ("numpy.subtract", None))  # 0 - x: never a signed zero, as -x is
        if not steps:
            return self._add(name, "", (acc,), value, self.shape(value), inplace=False)
        for n, (call, other) in enumerate(steps):
            target = name if n == len(steps) - 1 else str(next(self.fresh))
            if other is None:
                value, args = -value, ("0", acc)
            else:
                value = value * other if call == "numpy.multiply" else value / other
                args = (acc, self.operand(other))
            acc = self._add(target, call, args, value, self.shape(value))
        return acc

    def _add(self, name, call, args, meaning, shape, inplace=True, extra=""):
        self.shapes[name] = shape
        meaning = meaning.xreplace(self.expansions)
        self.expansions[Symbol(name)] = meaning
        self.code.append(Instruction(name, call, tuple(args), shape, meaning, inplace, extra))
        return name

    def allocate(self, outputs: list[str], owned: tuple[str, ...] = ("shifted",)) -> None:
        """Let each line write over an operand that no later line (nor the caller) reads: one
        of the arrays the lines make, or one of ``owned``, which the caller made for them."""
        last_use: dict[str, int] = {}
        for n, ins in enumerate(self.code):
            for arg in ins.args:
                last_use[_name(arg)] = n
        for out in outputs:
            last_use[out] = len(self.code)
        for ins in reversed(self.code):  # a name for another array keeps that array alive
            if not ins.call and ins.name in last_use:
                base = _name(ins.args[0])
                last_use[base] = max(last_use.get(base, 0), last_use[ins.name])
        owned = set(owned)
        for n, ins in enumerate(self.code):
            if ins.inplace and ins.call and ins.shape != SCALAR:  # not a NumPy scalar
                ins.out = next((arg for arg in ins.args if arg in owned and last_use[arg] == n
                                and self.shapes[arg] == ins.shape), None)
            if ins.call:  # a new array; an alias (no call) is not ours to overwrite
                owned.add(ins.name)

    def renumber(self) -> None:
        """Number the temporaries t0, t1, ... in the order the lines create them."""
        order = [ins.name for ins in self.code if re.fullmatch(r"t\d+", ins.name)]
        new = {old: f"t{n}" for n, old in enumerate(order)}
        def rename(arg):
            base, bracket, view = arg.partition("[")
            return new.get(base, base) + bracket + view
        for ins in self.code:
            ins.name = new.get(ins.name, ins.name)
            ins.args = tuple(rename(a) for a in ins.args)
            ins.out = new.get(ins.out, ins.out)

    def lines(self) -> list[str]:
        comment = CommentPrinter(self.math)
        out = []
        for ins in self.code:
            args = ", ".join(ins.args + ((ins.extra,) if ins.extra else ()) +
                             ((f"out={ins.out}",) if ins.out else ()))
            code = f"{ins.call}({args})" if ins.call else args
            meaning = ins.meaning
            if ins.name in (PROBS.name, LOG_PROBS.name):  # the definition, not its name
                meaning = meaning.func(*(_fold(arg, self.fold) for arg in meaning.args))
            what = comment.doprint(_fold(meaning, self.fold))
            out.append(f"{ins.name} = {code}  # {what}")
        return out


def _fold(expr: Expr, fold: dict[Expr, Expr]) -> Expr:
    """``expr`` with the definitions of q and log q (and their entries at the labels) folded
    back into the symbols, for comments that read like the formulas; a definition that is a
    product is found among the factors of a larger product too."""
    def visit(e):
        if e in fold:
            return fold[e]
        if not e.args or isinstance(e, (Symbol, Number)):
            return e
        e = e.func(*map(visit, e.args))
        if isinstance(e, Mul):
            for key, symbol in fold.items():
                if isinstance(key, Mul) and all(f in e.args for f in key.args):
                    rest = list(e.args)
                    for f in key.args:
                        rest.remove(f)
                    return Mul(symbol, *rest)
        return e
    return visit(expr)


#: Symbols that only comments use: q and log q at the labels.
PROBS_AT, LOG_PROBS_AT = Symbol("probs_c"), Symbol("log_probs_c")
_MATH.update({PROBS_AT: "q_c", LOG_PROBS_AT: "log q_c"})


@dataclass
class Program:
    """The lines computing some outputs, and the rewrites that made them."""

    lines: list[str]
    rewrites: set[str]
    calls: set[str]         # the functions the lines call
    reads: set[str]         # the names the lines read


def lower(outputs: list[tuple[str, Expr]], values: Values, definitions: dict[Symbol, Expr],
          labels: bool, returns: tuple[str, ...] | None = None, free: Symbol = k,
          rows: Symbol | None = None) -> Program:
    """Source lines computing each named output from its indexed formula.

    ``definitions`` say what ``probs`` and ``log_probs`` are (:func:`softmax_definitions`);
    ``labels`` lowers for integer labels instead of target arrays; ``returns`` names the arrays
    read after these lines (default: every output); ``free`` and ``rows`` are the free indices
    (see :func:`to_array`).
    """
    used: set[str] = set()
    shape = _class_axis(set(values.arrays.values()))

    def constant_sum(e):  # Σ_{i=1}^K x = K x for an x that does not vary along the classes
        used.add("sum-of-constant")
        return CLASSES * e.args[0]
    arrays = [to_array(expr, values, free, rows if len(free_indices(expr)) > 1 else None).replace(
        lambda e: isinstance(e, ClassSum) and not shape(e.args[0]).classes, constant_sum)
        for _, expr in outputs]
    arrays = [_bottom_up(a, REWRITES, used) for a in arrays]
    definitions = {sym: _exact_log_sum(d, used) for sym, d in definitions.items()}
    if labels:
        arrays = [_at_labels(a, used, set(values.arrays.values())) for a in arrays]
    shapes = {v.name: SCALAR for v in values.scalars.values()}
    shapes.update({v.name: CLASS for v in values.arrays.values()})
    shapes.update({PROBS.name: FULL, LOG_PROBS.name: FULL})
    fold = {v: key for key, v in definitions.items()}
    lowering = Lowering(shapes, values.math(), fold)
    if labels:
        at = {sym: _push_labels(AtLabel(sym), lowering.shape, definitions) for sym in definitions}
        fold.update({at[PROBS]: PROBS_AT, at[LOG_PROBS]: LOG_PROBS_AT})
        # the rewrites again, on the entries at the labels: log σ(z_c), 1 - σ(z_c), ...
        arrays = [_bottom_up(_push_labels(a, lowering.shape, definitions), REWRITES, used)
                  for a in arrays]
    arrays = [_bottom_up(_exact_log_sum(a, used), (MASKED_SUM,), used) for a in arrays]
    if labels:  # q_k = e^{z_k - a} / Σ_j e^{z_j - a} written out: the row factors that
        # multiply it are then combined before the one product over every class
        arrays = [a.xreplace({PROBS: definitions[PROBS]}) for a in arrays]
    # q and log q, where whole rows of them are needed, are computed under their own names
    needed = [sym for sym in (LOG_PROBS, PROBS) if any(a.has(sym) for a in arrays)]
    replacements, common = cse([definitions[sym] for sym in needed] + arrays,
                               symbols=numbered_symbols("s"), optimizations=None)
    lowering.pending = dict(replacements)
    lowering.pending.update(zip(needed, common))
    common = common[len(needed):]
    names = []
    for (name, _), value in zip(outputs, common):
        names.append(lowering.define(name, value))
    lowering.allocate(list(returns) if returns is not None else names)
    lowering.renumber()
    return Program(lowering.lines(), used, {ins.call for ins in lowering.code if ins.call},
                   {arg for ins in lowering.code for arg in ins.args})
