"""The intermediate representation of generated code: array formulas and the lines that compute
them, neither of which spells a backend.

An *array formula* is a SymPy expression over the array symbols below (the logits, the target,
the softmax q and its log, ...) and the operations of :class:`ArrayOp`: a sum along the class
axis, the entry at each row's label, the stable forms of 1 - e^l and log(1 - e^l), ...
A *line* (:class:`Line`) is one operation (a neutral name such as ``"exp"`` or ``"take"``) on
operands (:class:`Ref`, :class:`Const`); a backend spells both (:mod:`.backends`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from sympy import Expr, Function, IndexedBase, Symbol

from ..errors import DeriveError
from ..model import q, y
from ..render.printers import TextPrinter


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


class LogSoftmax(ArrayOp):
    """log(e^{u_k} / Σ_j e^{u_j}) = (u_k - m) - log1p(Σ_{j≠top} e^{u_j - m}), m = max_j u_j:
    exact at the top too, where the log is near 0."""


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


class LogAddExp(ArrayOp):
    """log(e^a + e^b), computed max-shifted (NumPy's logaddexp): nothing overflows, and a term
    of -inf (the log of 0) drops out."""


class LogOneMinusSoftmax(ArrayOp):
    """log(1 - q_k) from log q: log(1 - e^{log q_k}), and at the top (the largest logit), where
    q is near 1, log Σ_(j≠top) q_j, which keeps its digits however small 1 - q_top is."""


class AtTop(ArrayOp):
    """Each row's entry at its top (its largest logit), keeping the class axis."""


class SumOffTopOf(ArrayOp):
    """Σ_(j≠top) w_j x_j of weights w and values x, keeping the axis, with 0 where w_j = 0
    (a masked class, whose x may be infinite)."""


class LogOf(ArrayOp):
    """log x, kept as an operation of its own: SymPy would fold e^{log y + u} into y e^u, which
    is 0 · ∞ where y = 0 and e^u overflows."""


class BalanceTop(ArrayOp):
    """A gradient whose entries sum to zero (the loss is unchanged by z + a), with its entry at
    the top (the largest logit) computed as minus the sum of the others: exact where it is a
    difference of two numbers near 1."""


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


#: Symbols that only comments use: q and log q at the labels.
PROBS_AT, LOG_PROBS_AT = Symbol("probs_c"), Symbol("log_probs_c")
_MATH.update({PROBS_AT: "q_c", LOG_PROBS_AT: "log q_c"})


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
    #: the parameters and arrays whose domains are > 0, or None for all of them: their array
    #: symbols are positive, and the log-domain rewrites take their logs
    positive: frozenset | None = None

    def _symbol(self, s, name: str) -> Symbol:
        return Symbol(name, positive=True) if self.positive is None or s in self.positive \
            else Symbol(name)

    def scalar(self, s: Symbol) -> Symbol:
        if s not in self.scalars:
            self.scalars[s] = self._symbol(s, self.names.get(s) or value_name(s))
        return self.scalars[s]

    def array(self, base: IndexedBase) -> Symbol:
        if base not in self.arrays:
            self.arrays[base] = self._symbol(base, self.names.get(base) or value_name(base))
        return self.arrays[base]

    def math(self) -> dict[Symbol, str]:
        text = TextPrinter()
        return {**{v: text.doprint(s) for s, v in self.scalars.items()},
                **{v: text.doprint(b) for b, v in self.arrays.items()}}



# -- lines --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ref:
    """An operand that is a named array (or one the function's scaffolding provides: ``logits``,
    ``labels``, ``top``), seen whole or along the axes of a (..., K, K) array: ``view`` is
    ``"column"``, ``"row"`` or ``"pair"``."""

    name: str
    view: str = ""


@dataclass(frozen=True)
class Const:
    """An operand that is a constant: a number, the number of classes K (:data:`CLASSES`), or
    the identity matrix δ of a (..., K, K) array (:data:`EYE`)."""

    value: Expr


@dataclass
class Line:
    """``name = op(*args)``: one operation of the lines (``op`` is "" for a second name of an
    array); ``meaning`` is what the value is, as an array formula, for its comment; ``out``
    names the operand the line may write over (set by :func:`.lines.allocate`); ``params`` are
    the operation's own settings (an ``einsum``'s subscripts)."""

    name: str
    op: str
    args: tuple
    shape: Shape
    meaning: Expr
    out: str | None = None
    params: tuple = ()

    def reads(self) -> list[str]:
        return [a.name for a in self.args if isinstance(a, Ref)]
