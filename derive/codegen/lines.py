"""Pass 4 of the lowering: array formulas as lines of three-address code, one operation a line.

The lines name backend-neutral operations (:data:`OPS`) on :class:`~.ir.Ref` and
:class:`~.ir.Const` operands; a backend spells them.  Buffer reuse is a pass of its own
(:func:`allocate`), run only for a backend that may write in place.
"""
from __future__ import annotations

from sympy import Add, Expr, Mul, Pow, S, Symbol, exp, log, numbered_symbols

from .ir import (CLASSES, EYE, FULL, LOG_PROBS, PROBS, ROW, SCALAR, AtLabel, AtTop, BalanceTop,
                 ClassAt, ClassSum, Column, Const, Line, Log1p, LogAddExp, LogOf,
                 LogOneMinusExp, LogOneMinusSoftmax, LogRatio, LogSoftmax, LogSumExp,
                 LoweringError, OneHot, OneMinusExp, PairAxis, Ref, Row, SetAtLabel, Shape,
                 Sigmoid, Softmax, SoftPlus, SumOffLabel, SumOffTop, SumOffTopOf, SumXLogQ, XLogY)
from .to_array import shape_of

#: The operation of each node of an array formula that is one operation.
OPS: dict[type, str] = {
    exp: "exp", log: "log", ClassSum: "sum", AtLabel: "take", ClassAt: "class_at",
    OneHot: "one_hot", SetAtLabel: "set_at_label", LogSumExp: "logsumexp",
    SumOffTop: "sum_off_top", Log1p: "log1p", SumOffLabel: "sum_off_label",
    SumXLogQ: "sum_xlogq", Softmax: "softmax", LogSoftmax: "log_softmax", SoftPlus: "softplus",
    Sigmoid: "sigmoid",
    OneMinusExp: "one_minus_exp", LogOneMinusExp: "log_one_minus_exp", LogRatio: "log_ratio",
    XLogY: "xlogy", LogAddExp: "logaddexp", BalanceTop: "balance_top", LogOf: "log",
    LogOneMinusSoftmax: "log_one_minus_softmax", AtTop: "take",
    SumOffTopOf: "weighted_sum_off_top",
}
#: The views of an array along the axes of a (..., K, K) array.
_VIEWS = {Column: "column", Row: "row", PairAxis: "pair"}
_LABELS, _LOGITS, _TOP = Ref("labels"), Ref("logits"), Ref("top")


class Lowering:
    """Array formulas as lines, one operation a line."""

    def __init__(self, shapes: dict[str, Shape]):
        self.pending: dict[Symbol, Expr] = {}
        self.code: list[Line] = []
        self.names: dict[Expr, str] = {}
        self.shapes = {"logits": FULL, "target": FULL, "shift": ROW, "shifted": FULL,
                       "labels": ROW, "classes": SCALAR, **shapes}
        self.expansions: dict[Symbol, Expr] = {}
        self.temporaries: list[str] = []
        self._fresh = numbered_symbols("t")

    def fresh(self) -> str:
        name = str(next(self._fresh))
        self.temporaries.append(name)
        return name

    def shape(self, e: Expr) -> Shape:
        def symbol(sym):
            if sym in self.pending:  # a common subexpression not computed yet
                return self.shape(self.pending[sym])
            return self.shapes.get(self.names.get(sym, sym.name), SCALAR)
        return shape_of(e, symbol)

    def define(self, name: str, expr: Expr) -> str:
        if isinstance(expr, Symbol) or expr.is_Number:
            operand = self.operand(expr)
            if operand == Ref(name):  # q or log q, already computed under the output's name
                return name
            shape = self.shapes.get(operand.name, SCALAR) if isinstance(operand, Ref) else SCALAR
            return self._add(name, "", (operand,), expr, shape)
        return self._emit(expr, name)

    def operand(self, e: Expr):
        if e in self.names:
            return Ref(self.names[e])
        if isinstance(e, (Column, Row, PairAxis)):  # a view of an array, not a new one
            return Ref(self.operand(e.args[0]).name, _VIEWS[type(e)])
        if e in (EYE, CLASSES) or e.is_Number:
            return Const(e)
        if e in self.pending:  # a common subexpression, or q or log q: computed when first read
            value = self.pending.pop(e)
            name = e.name if e in (PROBS, LOG_PROBS) else self.fresh()
            self.names[e] = self.define(name, value)
            self.expansions[e] = self.expansions.get(Symbol(self.names[e]), e)
            return Ref(self.names[e])
        if isinstance(e, Symbol):
            return Ref(e.name)
        self.names[e] = self._emit(e, self.fresh())
        return Ref(self.names[e])

    def _emit(self, e: Expr, name: str) -> str:
        if type(e) in OPS:
            if isinstance(e, OneHot):
                args = (_LABELS, _LOGITS)
            else:
                args = tuple(self.operand(a) for a in e.args)
            if isinstance(e, (AtLabel, ClassAt, SumOffLabel)):
                args = (args[0], _LABELS)
            elif isinstance(e, (SumOffTop, BalanceTop, LogOneMinusSoftmax, AtTop)):
                args = (args[0], _TOP)
            elif isinstance(e, SumOffTopOf):
                args = (*args, _TOP)
            elif isinstance(e, SetAtLabel):
                args = (args[0], _LABELS, args[1], _LOGITS)
            return self._add(name, OPS[type(e)], args, e, self.shape(e))
        if isinstance(e, Pow):
            base = self.operand(e.base)
            special = {S.NegativeOne: "reciprocal", S(2): "square", S.Half: "sqrt"}
            if e.exp in special:
                return self._add(name, special[e.exp], (base,), e, self.shape(e))
            return self._add(name, "power", (base, self.operand(e.exp)), e, self.shape(e))
        if isinstance(e, Add):
            return self._emit_add(e, name)
        if isinstance(e, Mul):
            return self._emit_mul(e, name)
        raise LoweringError(f"no lowering for {e}")

    def _emit_add(self, e: Expr, name: str) -> str:
        terms = sorted(e.as_ordered_terms(), key=lambda t: t.could_extract_minus_sign())
        acc = self.operand(terms[0])
        value = terms[0]
        for n, term in enumerate(terms[1:], 1):
            target = name if n == len(terms) - 1 else self.fresh()
            value = value + term
            if term.could_extract_minus_sign():
                acc = Ref(self._add(target, "subtract", (acc, self.operand(-term)), value,
                                    self.shape(value)))
            else:
                acc = Ref(self._add(target, "add", (acc, self.operand(term)), value,
                                    self.shape(value)))
        return acc.name

    def _emit_mul(self, e: Expr, name: str) -> str:
        """A product as multiplications and divisions, the smallest operands first (scalars,
        then rows, then whole arrays), so that as few operations as can be touch every class."""
        coeff, rest = e.as_coeff_Mul()
        items = []
        for f in Mul.make_args(rest):
            if isinstance(f, Pow) and f.exp.is_Number and f.exp < 0:
                items.append(("divide", Pow(f.base, -f.exp)))
            else:
                items.append(("multiply", f))
        negate = False
        if coeff.is_negative:
            coeff, negate = -coeff, True
        if coeff != 1 or not items or items[0][0] == "divide" and negate:
            items.append(("multiply", -coeff if negate else coeff))
            negate = False

        def rank(f):  # how many entries an operand has: scalars, rows, then whole arrays
            shape = self.shape(f)
            return shape.rows + shape.classes + 2 * shape.pair
        items.sort(key=lambda item: (rank(item[1]), item[0] == "divide"))
        if items[0][0] == "divide":  # x / T, not x · (1/T), which overflows for a tiny T
            firsts = [n for n, item in enumerate(items) if item[0] == "multiply"]
            if firsts:
                items.insert(0, items.pop(firsts[0]))
        first_op, first = items[0]
        if first_op == "divide":
            acc, value = Const(S.One), S.One
        else:
            acc, value, items = self.operand(first), first, items[1:]
        steps = list(items)
        if negate:  # on the smallest value that has it: a row rather than every class
            full = [n for n, (_, f) in enumerate(steps) if rank(f) >= 2]
            at = len(steps) if rank(value) >= 2 or not full else full[0]
            steps.insert(at, ("subtract", None))  # 0 - x: never a signed zero, as -x is
        if not steps:
            return self._add(name, "", (acc,), value, self.shape(value))
        for n, (op, other) in enumerate(steps):
            target = name if n == len(steps) - 1 else self.fresh()
            if other is None:
                value, args = -value, (Const(S.Zero), acc)
            else:
                value = value * other if op == "multiply" else value / other
                args = (acc, self.operand(other))
            acc = Ref(self._add(target, op, args, value, self.shape(value)))
        return acc.name

    def _add(self, name, op, args, meaning, shape):
        self.shapes[name] = shape
        meaning = meaning.xreplace(self.expansions)
        self.expansions[Symbol(name)] = meaning
        self.code.append(Line(name, op, tuple(args), shape, meaning))
        return name


def allocate(code: list[Line], shapes: dict[str, Shape], outputs: list[str],
             in_place: frozenset[str], owned: tuple[str, ...] = ("shifted",)) -> None:
    """Let each line whose operation may write in place (``in_place``, the backend's) write over
    an operand that no later line (nor the caller) reads: one of the arrays the lines make, or
    one of ``owned``, which the caller made for them."""
    last_use: dict[str, int] = {}
    for n, line in enumerate(code):
        for name in line.reads():
            last_use[name] = n
    for out in outputs:
        last_use[out] = len(code)
    for line in reversed(code):  # a name for another array keeps that array alive
        if not line.op and line.name in last_use and line.reads():
            base = line.reads()[0]
            last_use[base] = max(last_use.get(base, 0), last_use[line.name])
    owned_now = set(owned)
    for n, line in enumerate(code):
        if line.op in in_place and line.shape != SCALAR:  # not a scalar
            line.out = next((a.name for a in line.args if isinstance(a, Ref) and not a.view
                             and a.name in owned_now and last_use[a.name] == n
                             and shapes[a.name] == line.shape), None)
        if line.op:  # a new array; an alias (no operation) is not ours to overwrite
            owned_now.add(line.name)


def renumber(code: list[Line], temporaries: list[str]) -> None:
    """Number the temporaries t0, t1, ... in the order the lines create them."""
    made = set(temporaries)
    order = [line.name for line in code if line.name in made]
    new = {old: f"t{n}" for n, old in enumerate(order)}

    def rename(arg):
        return Ref(new.get(arg.name, arg.name), arg.view) if isinstance(arg, Ref) else arg
    for line in code:
        line.name = new.get(line.name, line.name)
        line.args = tuple(rename(a) for a in line.args)
        line.out = new.get(line.out, line.out)
