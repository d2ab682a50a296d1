"""Stage 6a of the pipeline: indexed formulas as NumPy source lines.

:func:`vectorize` turns an indexed formula into an array formula: the free index ``k`` becomes
the last axis, a sum over a bound index a reduction along that axis (``keepdims``), ``y_k`` the
target array.  SymPy's ``cse`` finds the pieces several formulas share; :class:`_Lowering` then
writes one NumPy call a line (three-address code), each with a comment saying what it computes,
and lets a line write over an array that nothing later reads.  :func:`layer_lines` writes the
linear layer's products of indexed arrays as ``numpy.einsum`` calls.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sympy import (Add, Expr, Function, Indexed, IndexedBase, KroneckerDelta, Mul, Sum, Symbol, cse,
                   exp, log, numbered_symbols)
from sympy.printing.numpy import NumPyPrinter

from .model import K, T, W, a, b, c, epsilon, free_indices, k, p, q, sig, w, x, y, y_ls, z
from .render.printers import TextPrinter


class ClassSum(Function):
    """Σ over the class axis of an array formula (a reduction that keeps the axis)."""


class SquareClassSum(ClassSum):
    """A class sum that enters a (..., K, K) result: it keeps one more axis."""


class SoftPlus(Function):
    """log(1 + e^u), computed as numpy.logaddexp(0, u) so that no exponential overflows."""


class AtLabel(Function):
    """The entry of an array at each row's class label: ``x_c`` for a one-hot target at c."""


# Array-level symbols: what each indexed object becomes once the class axis is implicit.
Z, Y, Q, LOGQ, A, SHIFTED, DELTA, ONEHOT = (
    Symbol(n) for n in ("z", "y", "q", "log_q", "a", "z_a", "δ", "onehot"))
Q_ROW, Q_COL = Symbol("q_row"), Symbol("q_col")  # q along the second-last or the last axis
CLASS_WEIGHTS, Y_LS, TEMPERATURE, EPSILON, CLASSES, SIG = (
    Symbol(n) for n in ("w", "y'", "T", "ε", "K", "σ"))

#: How each array symbol is spelled in the generated code.
CODE_NAMES = {Z: "logits", Y: "target", Q: "probs", LOGQ: "log_probs", A: "shift",
              SHIFTED: "shifted", DELTA: "numpy.eye(probs.shape[-1], dtype=probs.dtype)",
              Q_ROW: "probs[..., :, None]", Q_COL: "probs[..., None, :]", CLASS_WEIGHTS: "weight",
              Y_LS: "smoothed", TEMPERATURE: "temperature", EPSILON: "epsilon", SIG: "sigmoid",
              CLASSES: "logits.shape[-1]"}
_SCALARS = {TEMPERATURE, EPSILON, CLASSES}
_SQUARE = {DELTA, Q_ROW, Q_COL}
_RANK = {"scalar": 0, "row": 1, "full": 2, "square": 3}


def vectorize(expr: Expr, rows: Symbol | None = None, one_hot: bool = False) -> Expr:
    """An indexed formula as an array formula along the class axis.

    Every index stands for the class axis, except ``rows`` (the Jacobian's i), which stands for
    a second axis before it.  ``log q_n`` becomes the log-softmax array; the tempered softmax
    ``p`` is the softmax of the logits the caller has divided by T, so it is ``q`` here.  With
    ``one_hot`` the target is given by labels: ``y_k`` is the one-hot array and ``z_c`` the
    logit at the label; ``δ_kc`` is always the one-hot target array.
    """
    def convert(e):
        if isinstance(e, Sum):
            return (ClassSum if rows is None else SquareClassSum)(convert(e.function))
        if isinstance(e, log) and isinstance(e.args[0], Indexed) and e.args[0].base in (q, p):
            return LOGQ
        if isinstance(e, log) and e.args[0].is_Add and len(e.args[0].args) == 2 and 1 in e.args[0].args:
            (power,) = [t for t in e.args[0].args if t != 1]
            if isinstance(power, exp):
                return SoftPlus(convert(power.args[0]))
        if isinstance(e, KroneckerDelta):
            return Y if c in e.args else DELTA
        if isinstance(e, Indexed):
            if e.indices[0] == c:
                return AtLabel(convert(e.base[k]))
            if e.base in (q, p) and rows is not None:
                return Q_ROW if e.indices[0] == rows else Q_COL
            if e.base == y and one_hot:
                return ONEHOT
            return {z: Z, y: Y, q: Q, p: Q, w: CLASS_WEIGHTS, y_ls: Y_LS, sig: SIG}[e.base]
        names = {a: A, T: TEMPERATURE, epsilon: EPSILON, K: CLASSES}
        if e in names:
            return names[e]
        if not e.args:
            return e
        return e.func(*map(convert, e.args))

    return convert(expr).subs({AtLabel(Z) - A: AtLabel(SHIFTED), Z - A: SHIFTED})


class ArrayPrinter(NumPyPrinter):
    """NumPy source for the leaves of array formulas (names and numbers)."""

    def _print_Symbol(self, expr):
        return CODE_NAMES.get(expr, expr.name)


class _CommentPrinter(TextPrinter):
    """Array formulas as the comments of generated lines."""

    def _print_ClassSum(self, expr):
        return "Σ_j %s" % self._factor(expr.args[0])

    _print_SquareClassSum = _print_ClassSum

    def _print_SoftPlus(self, expr):
        return "log(1 + e^%s)" % self._factor(expr.args[0])

    def _print_AtLabel(self, expr):
        return "%s at the label" % self._factor(expr.args[0])

    def _print_Symbol(self, expr):
        return "(z - a)" if expr == SHIFTED else expr.name


@dataclass
class _Instruction:
    name: str
    call: str                 # "numpy.exp", "_take", ...
    args: tuple[str, ...]
    shape: str                # scalar, row, full or square
    meaning: Expr             # what the value is, as an array formula
    inplace: bool = True      # may write over a dead operand
    extra: str = ""           # keyword arguments after the operands
    out: str | None = None
    suffix: str = ""          # indexing after the call


class _Lowering:
    """Array formulas as one NumPy call a line, writing over arrays that are no longer needed.

    Each operation of a formula gets its own line (three-address code); a line may reuse the
    buffer of an operand that nothing later reads, so the generated code allocates about as
    little as careful hand-written NumPy.
    """

    def __init__(self):
        self.code: list[_Instruction] = []
        self.names: dict[Expr, str] = {}
        self.shapes: dict[str, str] = {"logits": "full", "target": "full", "shift": "row",
                                       "labels": "row"}
        self.meaning: dict[str, Expr] = {}
        self.expansions: dict[Symbol, Expr] = {}  # name of a value -> what it is
        self.fresh = numbered_symbols("t")
        self.printer = ArrayPrinter()

    def define(self, symbol: Symbol, expr: Expr, name: str | None = None) -> str:
        name = name or self.printer.doprint(symbol)
        self.names[symbol] = self.operand(expr, name)
        self.expansions[symbol] = self.expansions.get(Symbol(self.names[symbol]), symbol)
        return self.names[symbol]

    def operand(self, e: Expr, name: str | None = None) -> str:
        if e in self.names and name is None:
            return self.names[e]  # computed before (also catches what cse leaves)
        if e.is_Number:
            return self.printer.doprint(e)
        if e == ONEHOT:  # only where the formula needs the one-hot rows themselves
            return self._emit(e, name or str(next(self.fresh)))
        if isinstance(e, Symbol) and name is None:
            code = self.printer.doprint(e)
            shape = "square" if e in _SQUARE else "scalar" if e in _SCALARS else "full"
            self.shapes.setdefault(code, shape)
            return code
        self.names[e] = self._emit(e, name or str(next(self.fresh)))
        return self.names[e]

    def _emit(self, e: Expr, name: str) -> str:
        if e == ONEHOT:
            return self._add(name, "_one_hot", ("labels", "logits"), e, shape="full",
                             inplace=False)
        if isinstance(e, Symbol):  # an output that is another array under a new name
            return self._add(name, "", (self.operand(e),), e, inplace=False)
        if isinstance(e, ClassSum):
            inner = e.args[0]
            weight, rest = inner.as_independent(LOGQ, as_Add=False)
            if rest == LOGQ:  # Σ_i f_i log q_i with 0·log 0 = 0 for classes that are masked
                return self._add(name, "_sum_xlogq", (self.operand(weight), self.operand(LOGQ)),
                                 e, shape="row", inplace=False)
            self._add(name, "numpy.sum", (self.operand(inner),), e, shape="row", inplace=False,
                      extra="axis=-1, keepdims=True")
            if isinstance(e, SquareClassSum):
                self.code[-1].suffix = "[..., None]"
            return name
        if isinstance(e, AtLabel):
            return self._add(name, "_take", (self.operand(e.args[0]), "labels"), e, shape="row",
                             inplace=False)
        if isinstance(e, SoftPlus):
            return self._add(name, "numpy.logaddexp", ("0", self.operand(e.args[0])), e)
        if isinstance(e, (exp, log)):
            return self._add(name, f"numpy.{type(e).__name__}", (self.operand(e.args[0]),), e)
        if e.is_Pow:
            base = self.operand(e.base)
            if e.exp == -1:
                return self._add(name, "numpy.divide", ("1", base), e)
            return self._add(name, "numpy.power", (base, self.operand(e.exp)), e)
        if e.is_Add:
            return self._emit_add(e, name)
        if e.is_Mul:
            return self._emit_mul(e, name)
        raise NotImplementedError(f"no NumPy lowering for {e}")

    def _emit_add(self, e: Expr, name: str) -> str:
        terms = sorted(e.as_ordered_terms(), key=lambda t: t.could_extract_minus_sign())
        first, rest = terms[0], terms[1:]
        acc = self.operand(first) if rest else None
        for n, term in enumerate(rest):
            last = n == len(rest) - 1
            target = name if last else str(next(self.fresh))
            partial = Add(*terms[:n + 2])
            if -term == ONEHOT:
                acc = self._add(target, "_subtract_one_hot", (acc, "labels"), partial)
            elif term.could_extract_minus_sign():
                acc = self._add(target, "numpy.subtract", (acc, self.operand(-term)), partial)
            else:
                acc = self._add(target, "numpy.add", (acc, self.operand(term)), partial)
        return acc

    def _emit_mul(self, e: Expr, name: str) -> str:
        coeff, rest = e.as_coeff_Mul()
        factors = Mul.make_args(rest)
        num = [f for f in factors if not (f.is_Pow and f.exp == -1)]
        den = [f.base for f in factors if f.is_Pow and f.exp == -1]
        steps = [("numpy.multiply", f) for f in num[1:]] + [("numpy.divide", f) for f in den]
        if coeff == -1:
            steps.append(("numpy.negative", None))
        elif coeff != 1:
            steps.append(("numpy.multiply", coeff))
        acc = self.operand(num[0]) if num else "1"
        value = num[0] if num else 1
        for n, (call, other) in enumerate(steps):
            target = name if n == len(steps) - 1 else str(next(self.fresh))
            value = -value if other is None else value * other if call.endswith("multiply") \
                else value / other
            args = (acc,) if other is None else (acc, self.operand(other))
            acc = self._add(target, call, args, value)
        return acc

    def _add(self, name, call, args, meaning, shape=None, inplace=True, extra=""):
        if shape is None:
            shape = max((self.shapes.get(a, "scalar") for a in args), key=_RANK.get)
        self.shapes[name] = shape
        self.meaning[name] = meaning.xreplace(self.expansions)
        self.expansions[Symbol(name)] = self.meaning[name]
        self.code.append(_Instruction(name, call, tuple(args), shape, meaning, inplace, extra))
        return name

    def allocate(self, outputs: list[str]) -> None:
        """Let each line write over an operand that no later line (nor the caller) reads."""
        last_use: dict[str, int] = {}
        for n, ins in enumerate(self.code):
            for arg in ins.args:
                last_use[arg] = n
        for out in outputs:
            last_use[out] = len(self.code)
        owned: set[str] = set()
        for n, ins in enumerate(self.code):
            if ins.inplace and ins.call:
                ins.out = next((arg for arg in ins.args if arg in owned and last_use[arg] == n
                                and self.shapes[arg] == ins.shape), None)
            if ins.call:  # a new array; an alias (no call) is not ours to overwrite
                owned.add(ins.name)

    def renumber(self) -> None:
        """Number the temporaries t0, t1, ... in the order the lines create them."""
        order = [ins.name for ins in self.code if re.fullmatch(r"t\d+", ins.name)]
        new = {old: f"t{n}" for n, old in enumerate(order)}
        for ins in self.code:
            ins.name = new.get(ins.name, ins.name)
            ins.args = tuple(new.get(a, a) for a in ins.args)
            ins.out = new.get(ins.out, ins.out)
        self.meaning = {new.get(n, n): m for n, m in self.meaning.items()}

    def lines(self, formulas: dict[str, Expr]) -> list[str]:
        comment = _CommentPrinter()
        out = []
        for ins in self.code:
            args = ", ".join(ins.args + ((ins.extra,) if ins.extra else ()) +
                             ((f"out={ins.out}",) if ins.out else ()))
            code = f"{ins.call}({args}){ins.suffix}" if ins.call else args
            what = formulas.get(ins.name) or comment.doprint(self.meaning[ins.name])
            out.append(f"{ins.name} = {code}  # {what}")
        return out


# The linear layer: products of indexed arrays, summed over bound indices and over the rows.
_LOGIT_GRAD = IndexedBase("dz")  # ∂E/∂z_k for each row, as cross_entropy_with_grad returns it
_LAYER_NAMES = {W: "weight", x: "inputs", b: "bias", _LOGIT_GRAD: "grad"}
_BATCHED = {x, _LOGIT_GRAD}  # arrays with one entry a row, n: (N, K) or (N, D)


def _einsum(product: Expr, summed: set, over_rows: bool) -> str:
    """``numpy.einsum`` of a product of indexed arrays, summing the indices ``summed`` (and the
    rows, with ``over_rows``); each index is named by its first letter."""
    factors = Mul.make_args(product)
    batched = any(f.base in _BATCHED for f in factors)
    inputs = ",".join(("n" if f.base in _BATCHED else "") + "".join(str(s)[0] for s in f.indices)
                      for f in factors)
    kept = dict.fromkeys(str(s)[0] for f in factors for s in f.indices if s not in summed)
    output = ("n" if batched and not over_rows else "") + "".join(kept)
    args = ", ".join(_LAYER_NAMES[f.base] for f in factors)
    return f'numpy.einsum("{inputs}->{output}", {args})'


def layer_lines(logits: Expr, grads: list[tuple[str, Expr]]) -> tuple[list[str], list[str]]:
    """The lines computing a linear layer's logits, and its gradients summed over the rows."""
    text = TextPrinter()
    (summed,), bias = [t for t in Add.make_args(logits) if isinstance(t, Sum)], \
        [t for t in Add.make_args(logits) if not isinstance(t, Sum)]
    (index, _, _), = summed.limits
    first = [f"logits = {_einsum(summed.function, {index}, False)} + {_LAYER_NAMES[bias[0].base]}"
             f"  # z_k = {text.doprint(logits)}"]
    second = []
    for name, result in grads:
        product = result.xreplace({q[k] - y[k]: _LOGIT_GRAD[k]})
        second.append(f"{name} = {_einsum(product, set(), True)}"
                      f"  # the rows' sum of {text.doprint(result)}")
    return first, second


def lines(outputs: list[tuple[Symbol, Expr]], returns: tuple[str, ...] | None = None,
          rows: Symbol | None = None, one_hot: bool = False) -> list[str]:
    """Source lines computing each output array, one NumPy call and one comment a line.

    An output is an array symbol (``Q``, ``LOGQ`` or a new name) and the indexed formula it
    implements; an output computed earlier stands for itself in later formulas.  ``returns``
    names the arrays read after these lines (default: every output); the others may be
    overwritten.  SymPy's ``cse`` finds the pieces the formulas share.
    """
    # A formula with two free indices fills a (..., K, K) array; the others a (..., K) one.
    arrays = [vectorize(e, rows if len(free_indices(e)) > 1 else None, one_hot) for _, e in outputs]
    lowering = _Lowering()
    if any(x.has(SHIFTED) for x in arrays):
        lowering.define(SHIFTED, Z - A)
    replacements, common = cse(arrays, symbols=numbered_symbols("s"), optimizations=None)
    for symbol, value in replacements:
        lowering.define(symbol, value, name=str(next(lowering.fresh)))
    names = []
    for (symbol, _), value in zip(outputs, common):
        names.append(lowering.define(symbol, value))
    lowering.allocate(list(returns) if returns is not None else names)
    lowering.renumber()
    text = TextPrinter()
    formulas = {name: f"{text.doprint(indexed)}" for name, (_, indexed) in zip(names, outputs)}
    formulas[CODE_NAMES[SHIFTED]] = "z - a, where a = max_j z_j"
    return lowering.lines(formulas)
