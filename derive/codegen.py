"""Stage 6 of the pipeline: NumPy code generated from the derived results.

The formulas come from the checked derivations, never from a copy written here:

* ``q_k = e^{z_k - a} / Σ_j e^{z_j - a}`` and ``log q_k = z_k - a - log Σ_j e^{z_j - a}``
  (``shift-invariance``), with ``a = max_j z_j`` so that no exponent is positive;
* ``E = -Σ_i y_i log q_i`` and ``∂E/∂z_k = (Σ_i y_i) q_k - y_k`` (``logsumexp``: its definition
  step and its last step before the probability fact);
* ``∂q_i/∂z_k = q_i (δ_ik - q_k)`` (``softmax-jacobian``).

:func:`vectorize` turns an indexed formula into an array formula: the free index ``k`` becomes
the last axis, a sum over a bound index a reduction along that axis (``keepdims``), ``y_k`` the
target array.  SymPy's ``cse`` shares the common pieces and :class:`ArrayPrinter`, a
``NumPyPrinter``, prints each line.  What is not a formula (dtypes, target conventions, checks,
reductions) is the fixed scaffolding in ``_SCAFFOLD``.
"""
from __future__ import annotations

import os
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path

from sympy import (Derivative, Expr, Function, Indexed, KroneckerDelta, Mul, Sum, Symbol, cse,
                   log, numbered_symbols)
from sympy.printing.numpy import NumPyPrinter

from . import __version__
from .model import E, PROBABILITY, a, i, k, q, y, z
from .records import Derivation
from .render.printers import TextPrinter

MODULE_NAME = "softmax_cross_entropy"


class ClassSum(Function):
    """Σ over the class axis of an array formula (kept as a reduction with keepdims)."""


# Array-level symbols: what each indexed object becomes once the class axis is implicit.
Z, Y, Q, LOGQ, A, SHIFTED, DELTA = (Symbol(n) for n in ("z", "y", "q", "log_q", "a", "z_a", "δ"))
Q_ROW, Q_COL = Symbol("q_i"), Symbol("q_k")

CODE_NAMES = {Z: "logits", Y: "target", Q: "probs", LOGQ: "log_probs", A: "shift",
              SHIFTED: "shifted", DELTA: "numpy.eye(probs.shape[-1], dtype=probs.dtype)",
              Q_ROW: "probs[..., :, None]", Q_COL: "probs[..., None, :]"}


def vectorize(expr: Expr, rows: Symbol | None = None) -> Expr:
    """An indexed formula as an array formula along the class axis.

    Every index stands for the class axis, except ``rows`` (for the Jacobian), which stands
    for a second axis before it.  ``log q_n`` becomes the log-softmax array.
    """
    def convert(e):
        if isinstance(e, Sum):
            (index, lo, hi), = e.limits
            return ClassSum(convert(e.function))
        if isinstance(e, log) and isinstance(e.args[0], Indexed) and e.args[0].base == q:
            return LOGQ
        if isinstance(e, KroneckerDelta):
            return DELTA
        if isinstance(e, Indexed):
            if e.base == q and rows is not None:
                return Q_ROW if e.indices[0] == rows else Q_COL
            return {z: Z, y: Y, q: Q}[e.base]
        if e == a:
            return A
        if not e.args:
            return e
        return e.func(*map(convert, e.args))

    return convert(expr).subs(Z - A, SHIFTED)


class ArrayPrinter(NumPyPrinter):
    """NumPy source for array formulas: class sums keep their axis, 0·log 0 is 0."""

    def _print_Symbol(self, expr):
        return CODE_NAMES.get(expr, expr.name)

    def _print_ClassSum(self, expr):
        return "numpy.sum(%s, axis=-1, keepdims=True)" % self._print(expr.args[0])

    def _print_Mul(self, expr):
        if Y in expr.args and LOGQ in expr.args:  # y log q with the convention 0·log 0 = 0
            rest = Mul(*(f for f in expr.args if f not in (Y, LOGQ)))
            term = "_xlogq(target, log_probs)"
            return term if rest == 1 else "%s*%s" % (self.parenthesize(rest, 50), term)
        return super()._print_Mul(expr)


class _CommentPrinter(TextPrinter):
    def _print_ClassSum(self, expr):
        return "Σ_j %s" % self._factor(expr.args[0])

    def _print_Symbol(self, expr):
        return "(z - a)" if expr == SHIFTED else expr.name


@dataclass(frozen=True)
class Formulas:
    """The derived results the generated functions implement, as indexed expressions."""

    probs: Expr
    log_probs: Expr
    loss: Expr
    grad: Expr
    jacobian: Expr


def formulas() -> Formulas:
    from . import derivation
    shift, route, jac = (derivation(n) for n in ("shift-invariance", "logsumexp", "softmax-jacobian"))
    probs = _last(shift, q[k])
    loss = _last(route, E, first=True)
    grad = _last(route, Derivative(E, z[k]), without=PROBABILITY)
    return Formulas(probs, shift.result, loss, grad, jac.result)


def _last(d: Derivation, lhs, first=False, without=None) -> Expr:
    """The last (or first) main step of ``d`` with left-hand side ``lhs`` (and no fact ``without``)."""
    found = [s.expr for s in d.main_steps if s.lhs == lhs and without not in s.facts]
    return found[0] if first else found[-1]


def lines(outputs: list[tuple[Symbol, Expr]], rows: Symbol | None = None) -> list[str]:
    """Source lines computing each output array, sharing common pieces, one comment a line.

    An output is an array symbol (``Q``, ``LOGQ`` or a new name) and the indexed formula it
    implements; an output computed earlier stands for itself in later formulas.
    """
    printer, comment = ArrayPrinter(), _CommentPrinter()
    arrays = [vectorize(e, rows) for _, e in outputs]
    out = []
    if any(x.has(SHIFTED) for x in arrays):
        out.append("shifted = logits - shift  # z - a, where a = max_j z_j")
    replacements, common = cse(arrays, symbols=numbered_symbols("t"), optimizations=None)
    meaning: dict = {}
    for symbol, value in replacements:
        meaning[symbol] = value.xreplace(meaning)
        out.append(f"{symbol} = {printer.doprint(value)}  # {comment.doprint(meaning[symbol])}")
    for (name, indexed), value in zip(outputs, common):
        out.append(f"{printer.doprint(name)} = {printer.doprint(value)}"
                   f"  # {TextPrinter().doprint(indexed)}")
    return out


_HEADER = '''"""Softmax cross-entropy for NumPy: softmax, log-softmax, loss, gradient and Jacobian.

Generated by derive {version} from its checked derivations. Do not edit: run `derive build`.

Where each formula comes from (derivation, step):
{sources}

Conventions: the class axis is last; logits may have any leading shape. A target is either
integer class labels of shape logits.shape[:-1] or probabilities of the shape of the logits
(not renormalised; the gradient is (Σy)·q - y, which is q - y when Σy = 1). float32 stays
float32, float16 is computed in float32 and returned as float16, integers become float64.
A -inf logit is masked: probability 0, and a finite loss unless the target puts mass there
(then +inf). A row whose logits are all -inf, or that has a +inf or NaN logit, gives NaN.
"""
import numpy

__all__ = ["softmax", "log_softmax", "cross_entropy", "cross_entropy_grad",
           "cross_entropy_with_grad", "softmax_jacobian"]

_REDUCTIONS = ("none", "mean", "sum")
'''

_SCAFFOLD = '''

def _floating(logits, axis=-1):
    """The logits as a float array with the class axis last, and the dtype to return."""
    array = numpy.asarray(logits)
    if array.dtype.kind in "biu":
        array = array.astype(numpy.float64)
    elif array.dtype.kind != "f":
        raise ValueError(f"logits must be real numbers, not {{array.dtype}}")
    if array.ndim == 0:
        raise ValueError("logits must have a class axis, not be a scalar")
    if not -array.ndim <= axis < array.ndim:
        raise ValueError(f"axis {{axis}} is out of range for logits with {{array.ndim}} dimensions")
    array = numpy.moveaxis(array, axis, -1)
    if array.shape[-1] == 0:
        raise ValueError("logits have an empty class axis")
    out_dtype = array.dtype
    if out_dtype == numpy.float16:
        array = array.astype(numpy.float32)
    return array, out_dtype


def _shift(logits):
    """a = max_j z_j: any real a gives the same softmax (shift-invariance); this one keeps
    every exponent at or below 0, so nothing overflows."""
    return numpy.max(logits, axis=-1, keepdims=True)


def _target(target, logits):
    """The target as probabilities of the logits' shape, from labels or from probabilities."""
    array = numpy.asarray(target)
    classes = logits.shape[-1]
    if array.shape == logits.shape[:-1]:
        if array.dtype.kind not in "iu":
            raise ValueError(f"target: class labels must be integers, not {{array.dtype}}")
        if array.size and (array.min() < 0 or array.max() >= classes):
            raise ValueError(f"target: class labels must lie in 0..{{classes - 1}}")
        return (array[..., None] == numpy.arange(classes)).astype(logits.dtype)
    if array.shape == logits.shape:
        if array.dtype.kind not in "fiu":
            raise ValueError(f"target: probabilities must be real numbers, not {{array.dtype}}")
        array = numpy.asarray(array, dtype=logits.dtype)
        if array.size:
            low, high = array.min(), array.max()
            if numpy.isnan(low) or numpy.isinf(low) or numpy.isinf(high):
                raise ValueError("target: probabilities must be finite")
            if low < 0:
                raise ValueError("target: probabilities must not be negative")
        return array
    raise ValueError(f"target of shape {{array.shape}} fits neither class labels of shape "
                     f"{{logits.shape[:-1]}} nor probabilities of shape {{logits.shape}}")


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of 'none', 'mean', 'sum', not {{reduction!r}}")


def _xlogq(target, log_probs):
    """target * log_probs with 0 * log 0 = 0, so masked classes without mass cost nothing."""
    return numpy.multiply(target, log_probs, out=numpy.zeros_like(log_probs), where=target != 0)


def _reduce(loss, reduction, out_dtype):
    if reduction == "none":
        return loss.astype(out_dtype, copy=False)
    value = loss.sum() if reduction == "sum" else loss.mean()
    return out_dtype.type(value)


def _scale(grad, reduction, out_dtype):
    if reduction == "mean" and grad.size:
        grad /= grad.size // grad.shape[-1]
    return grad.astype(out_dtype, copy=False)


def softmax(logits, axis=-1):
    """Softmax along ``axis``: q_k = e^(z_k - a) / Σ_j e^(z_j - a) with a = max_j z_j."""
    logits, out_dtype = _floating(logits, axis)
    shift = _shift(logits)
    with numpy.errstate(invalid="ignore"):
{softmax}
    return numpy.moveaxis(probs, -1, axis).astype(out_dtype, copy=False)


def log_softmax(logits, axis=-1):
    """Log-softmax along ``axis``: log q_k = z_k - a - log Σ_j e^(z_j - a), a = max_j z_j."""
    logits, out_dtype = _floating(logits, axis)
    shift = _shift(logits)
    with numpy.errstate(invalid="ignore"):
{log_softmax}
    return numpy.moveaxis(log_probs, -1, axis).astype(out_dtype, copy=False)


def cross_entropy(logits, target, reduction="none"):
    """Cross-entropy -Σ_i y_i log q_i of each row of ``logits`` against ``target``.

    ``target``: integer class labels of shape ``logits.shape[:-1]``, or probabilities of the
    shape of ``logits``. ``reduction``: "none" (one loss a row), "mean" or "sum".
    """
    _check_reduction(reduction)
    logits, out_dtype = _floating(logits)
    target = _target(target, logits)
    shift = _shift(logits)
    with numpy.errstate(invalid="ignore"):
{cross_entropy}
    return _reduce(loss[..., 0], reduction, out_dtype)


def cross_entropy_grad(logits, target, reduction="none"):
    """Gradient of :func:`cross_entropy` with respect to the logits, shaped like them:
    (Σ_i y_i) q_k - y_k, which is q_k - y_k when the target sums to 1; divided by the
    number of rows for reduction="mean"."""
    _check_reduction(reduction)
    logits, out_dtype = _floating(logits)
    target = _target(target, logits)
    shift = _shift(logits)
    with numpy.errstate(invalid="ignore"):
{cross_entropy_grad}
    return _scale(grad, reduction, out_dtype)


def cross_entropy_with_grad(logits, target, reduction="none"):
    """``(cross_entropy(...), cross_entropy_grad(...))`` from one log-softmax pass."""
    _check_reduction(reduction)
    logits, out_dtype = _floating(logits)
    target = _target(target, logits)
    shift = _shift(logits)
    with numpy.errstate(invalid="ignore"):
{cross_entropy_with_grad}
    return _reduce(loss[..., 0], reduction, out_dtype), _scale(grad, reduction, out_dtype)


def softmax_jacobian(logits):
    """Jacobian of the softmax of each row, shape (..., K, K): entry [..., i, k] is
    ∂q_i/∂z_k = q_i (δ_ik - q_k)."""
    logits, out_dtype = _floating(logits)
    shift = _shift(logits)
    with numpy.errstate(invalid="ignore"):
{softmax_jacobian}
    return jacobian.astype(out_dtype, copy=False)
'''


def source() -> str:
    """The generated module's source: deterministic, the same bytes on every run."""
    f = formulas()
    loss, grad = Symbol("loss"), Symbol("grad")
    bodies = {
        "softmax": lines([(Q, f.probs)]),
        "log_softmax": lines([(LOGQ, f.log_probs)]),
        "cross_entropy": lines([(LOGQ, f.log_probs), (loss, f.loss)]),
        "cross_entropy_grad": lines([(Q, f.probs), (grad, f.grad)]),
        "cross_entropy_with_grad": lines([(Q, f.probs), (LOGQ, f.log_probs), (loss, f.loss),
                                          (grad, f.grad)]),
        "softmax_jacobian": lines([(Q, f.probs), (Symbol("jacobian"), f.jacobian)], rows=i),
    }
    indented = {name: "\n".join(" " * 8 + line for line in body) for name, body in bodies.items()}
    sources = "\n".join(f"  {what:<18} {where}" for what, where in _sources())
    return _HEADER.format(version=__version__, sources=sources) + _SCAFFOLD.format(**indented)


def _sources() -> list[tuple[str, str]]:
    from . import derivation
    shift, route, jac = (derivation(n) for n in ("shift-invariance", "logsumexp", "softmax-jacobian"))
    f = formulas()

    def where(d: Derivation, expr) -> str:
        number = next(n for n, s in enumerate(d.steps, 1) if s.expr == expr and not s.aside)
        return f"{d.name}, step {number}: {TextPrinter().doprint(d.steps[number - 1].lhs)} = " \
               f"{TextPrinter().doprint(expr)}"

    return [("probs", where(shift, f.probs)), ("log_probs", where(shift, f.log_probs)),
            ("loss", where(route, f.loss)), ("grad", where(route, f.grad)),
            ("jacobian", where(jac, f.jacobian))]


def load_module(name: str = MODULE_NAME) -> types.ModuleType:
    """Compile :func:`source` in memory into a module (for the CLI and notebooks)."""
    module = types.ModuleType(name)
    module.__file__ = f"<derive:{name}>"
    exec(compile(source(), module.__file__, "exec"), module.__dict__)
    return module


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
