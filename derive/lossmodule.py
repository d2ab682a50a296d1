"""A NumPy module for a loss of your own, from its checked derivation.

:func:`spec` reads what the code needs off the derivation: the loss (its definition step), its
gradient (the last step that holds for any target, or the one-hot form for a loss of the
label c), its scalar parameters and per-class arrays, and the targets it accepts.
:func:`source` lowers the formulas with :mod:`derive.lowering` and fills the module's fixed
scaffolding (argument checks, dtypes, target conventions, reductions), which is the same for
every loss.
"""
from __future__ import annotations

import keyword
import re
import sys
import textwrap
import types
from dataclasses import dataclass

from sympy import Derivative, Expr, IndexedBase, Symbol

from . import __version__, budget
from .errors import DeriveError
from .helpers import HELPERS, needed
from .lowering import (LABEL_REWRITES, MASKED_SUM, REWRITES, LoweringError, Values, lower,
                       softmax_definitions, value_name)
from .model import PARAMETERS, POSITIVE, c, k, own_symbols, q, w
from .records import Derivation
from .render.printers import TextPrinter

#: The arguments of the generated functions: a parameter of the loss may not take these names.
ARGUMENTS = ("logits", "target", "reduction", "values")
DEFAULT_NAME = "your_loss"


#: Modules a generated module may not be named after: it would hide them where it is imported.
_TAKEN = {"numpy", "derive", "sympy", *sys.stdlib_module_names}


def module_name(name: str | None) -> str:
    """``name`` if it can name a Python module (and the files of ``derive build``)."""
    if name is None:
        return DEFAULT_NAME
    if (not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name)
            or keyword.iskeyword(name) or name.startswith("__")):
        raise DeriveError(f"module name {name!r}: give a Python identifier of at most 64 "
                          "letters, digits and underscores, not starting with a digit or __")
    if name in _TAKEN:
        raise DeriveError(f"module name {name!r} is the name of a module it would hide "
                          "(numpy, derive, sympy or the standard library's); choose another")
    return name


@dataclass(frozen=True)
class LossSpec:
    """What the generated code of a loss implements, and where each formula comes from."""

    name: str
    derivation: Derivation
    loss: Expr                  # the loss, with no free index
    grad: Expr                  # ∂loss/∂z_k, with the free index k
    loss_step: int              # 1-based steps of the derivation
    grad_step: int
    scalars: tuple[Symbol, ...]  # each > 0
    arrays: tuple[IndexedBase, ...]  # each of shape (K,), entries > 0
    labels_only: bool           # the loss uses the label c: integer labels only


def spec(d: Derivation, name: str | None = None) -> LossSpec:
    """The specification of the loss that ``d`` (made by :func:`derive.gradient`) derives."""
    steps = list(d.steps)
    loss_step = 1
    labels_only = steps[0].expr.has(c)
    # the code is made from the derivative as it is closed, before the steps that shorten it
    # for the page: the stable rewrites of the lowering know the forms that differentiation makes
    closed = [s for s in d.main_steps if s.phase != "tidy"]
    if labels_only:
        grad_step = steps.index(closed[-1]) + 1
    else:  # the last main step that holds for any target where the loss is defined
        grad_step = max(n for n, s in enumerate(steps, 1) if s in closed
                        and not s.facts - {POSITIVE} and isinstance(s.lhs, Derivative)
                        and not s.expr.has(Derivative))
    scalars, arrays = own_symbols(steps[0].expr)
    scalars = sorted({*scalars, *(p for p in PARAMETERS if steps[0].expr.has(p))}, key=str)
    if steps[0].expr.has(w):
        arrays = sorted({*arrays, w}, key=str)
    for s in (*scalars, *arrays):
        label = s.label.name if isinstance(s, IndexedBase) else s.name
        if label in ARGUMENTS:
            raise DeriveError(f"the loss's {label!r} has the name of an argument of the "
                              "generated functions (logits, target, reduction); rename it")
        value_name(s)
    return LossSpec(module_name(name), d, steps[0].expr, steps[grad_step - 1].expr, loss_step,
                    grad_step, tuple(scalars), tuple(arrays), labels_only)


def _softmax() -> tuple[dict, list[tuple[str, Derivation, int]]]:
    from . import derivation
    d = derivation("shift-invariance")
    probs = next(n for n, s in enumerate(d.steps, 1) if s.lhs == q[k] and s.rules == ("shift-softmax",))
    log_probs = len(d.steps)
    return (softmax_definitions(d.steps[probs - 1].expr, d.steps[log_probs - 1].expr),
            [("probs", d, probs), ("log_probs", d, log_probs)])


_FUNCTIONS = {  # public function -> (outputs computed, what it returns)
    "loss": (("loss",), "_reduce(_rows(loss, logits), reduction, out_dtype)"),
    "grad": (("grad",), "_scale(_full(grad, logits), reduction, out_dtype, logits)"),
    "loss_with_grad": (("loss", "grad"), "(_reduce(_rows(loss, logits), reduction, out_dtype), "
                       "_scale(_full(grad, logits), reduction, out_dtype, logits))"),
}
_DOCS = {
    "loss": "The loss of each row of ``logits`` against ``target``.",
    "grad": "The gradient of :func:`loss` with respect to the logits, shaped like them "
            '(divided by the number of rows for reduction="mean").',
    "loss_with_grad": "``(loss(...), grad(...))``, sharing the work.",
}


def source(s: LossSpec) -> str:
    """The module's source: the same bytes on every run."""
    definitions, softmax_sources = _softmax()
    text = TextPrinter()
    values = Values()
    for sym in s.scalars:
        values.scalar(sym)
    for base in s.arrays:
        values.array(base)
    rewrites: set[str] = set()
    called: set[str] = set()
    reads: set[str] = set()
    bodies = {}
    for function, (outputs, _) in _FUNCTIONS.items():
        formulas = [(o, {"loss": s.loss, "grad": s.grad}[o]) for o in outputs]
        cases = []
        for labels in ((True,) if s.labels_only else (True, False)):
            budget.check(f"generating the code of {function}")
            try:
                program = lower(formulas, values, definitions, labels=labels)
            except LoweringError as e:
                raise LoweringError(f"cannot generate code for this loss: {e}") from None
            rewrites |= program.rewrites
            called |= program.calls
            reads |= program.reads
            cases.append(program.lines)
        bodies[function] = cases
    helpers = needed(called)
    needs_shift = bool({"shift", "shifted", "top"} & reads)

    symbol = s.derivation.steps[0].lhs
    cited = [("loss", s.derivation, s.loss_step), ("grad", s.derivation, s.grad_step)]
    if needs_shift:
        cited += softmax_sources
    sources = []
    for what, d, n in cited:
        step = d.steps[n - 1]
        sources.append(f"  {what:<10} {d.name}, step {n}: {text.doprint(step.lhs)} = "
                       f"{text.doprint(step.expr)}")
    for rw in (*REWRITES, *LABEL_REWRITES, MASKED_SUM):
        if rw.name in rewrites:
            step = rw.step()
            where = f" ({step[0]}, step {step[1]})" if step else ""
            sources.append(f"  {rw.name}: {rw.why}{where}")

    scalars = ", ".join(sym.name for sym in s.scalars)
    arrays = ", ".join(base.label.name for base in s.arrays)
    value_names = [value_name(v) for v in (*s.scalars, *s.arrays)]
    unpack = ""
    if value_names:
        unpack = (f"    {', '.join(value_names)}, = _values(values, logits, "
                  f"{tuple(sym.name for sym in s.scalars)!r}, "
                  f"{tuple(b.label.name for b in s.arrays)!r})\n")
    else:
        unpack = "    _values(values, logits, (), ())\n"
    sources = [textwrap.fill(line, 95, subsequent_indent="      ", break_long_words=False,
                             break_on_hyphens=False) for line in sources]
    parts = [HEADER.format(
        title=s.name, loss=f"{text.doprint(symbol)} = {text.doprint(s.loss)}",
        version=__version__, sources="\n".join(sources),
        targets=textwrap.fill(
            "Targets: integer class labels of shape logits.shape[:-1] (the loss uses the label "
            "c)." if s.labels_only else "Targets: integer class labels of shape "
            "logits.shape[:-1], or probabilities of the logits' shape (used as given, not "
            "renormalised).", 95),
        values=_describe_values(scalars, arrays))]
    parts.append(PRELUDE + "".join(HELPERS[h] for h in helpers))
    for function, (outputs, returned) in _FUNCTIONS.items():
        cases = bodies[function]
        body = unpack
        if needs_shift:
            body += "    shift, top = _shift(logits)\n    shifted = numpy.subtract(logits, shift)\n"
        body += "    with numpy.errstate(divide=\"ignore\", invalid=\"ignore\"):\n"
        if s.labels_only:
            body += _indent(cases[0], 8)
        else:
            body += "        if labels is not None:  # a one-hot target: Σ_i y_i f_i = f_c\n"
            body += _indent(cases[0], 12)
            body += "        else:\n" + _indent(cases[1], 12)
        doc = _DOCS[function]
        if value_names:
            doc += "\n\n" + textwrap.fill(
                "Values: " + ", ".join([f"{sym.name} (a number > 0)" for sym in s.scalars]
                                       + [f"{b.label.name} (shape (K,), entries > 0)"
                                          for b in s.arrays]) + ".",
                91, initial_indent="    ", subsequent_indent="    ")
        parts.append(FUNCTION.format(
            name=function, doc=doc, labels_only=s.labels_only, body=body,
            returned=returned))
    return "".join(parts)


def _describe_values(scalars: str, arrays: str) -> str:
    parts = []
    if scalars:
        parts.append(f"scalar parameters {scalars} (each a real number > 0)")
    if arrays:
        parts.append(f"per-class arrays {arrays} (each of shape (K,), entries > 0)")
    if not parts:
        return "The loss has no parameters: pass no keyword values."
    return textwrap.fill("Keyword values: " + "; ".join(parts) + ".", 95)


def _indent(lines: list[str], width: int) -> str:
    return "".join(" " * width + line + "\n" for line in lines)


def load(s: LossSpec, text: str | None = None) -> types.ModuleType:
    """The generated module of ``s`` (or its source ``text``), compiled in memory and checked
    against its derivation by :func:`verify`."""
    module = types.ModuleType(s.name)
    module.__file__ = f"<derive:{s.name}>"
    exec(compile(source(s) if text is None else text, module.__file__, "exec"), module.__dict__)
    verify(module, s)
    return module


def checked_source(s: LossSpec) -> str:
    """:func:`source`, once the module it makes agrees with the derivation (:func:`verify`)."""
    text = source(s)
    load(s, text)
    return text


def verify(module: types.ModuleType, s: LossSpec, rows: int = 3, classes: int = 4) -> None:
    """Check the generated ``module`` against the derivation it comes from: its loss and
    gradient at random logits, labels and (where the loss takes them) probability targets
    against :func:`derive.evaluate` of the loss and of the gradient's step, which the checker's
    own evaluator computes. Raises :class:`~derive.errors.CheckError` where they disagree."""
    import numpy as np

    from . import evaluate
    from .errors import CheckError
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(rows, classes)) * 2
    labels = rng.integers(0, classes, rows)
    values = {sym.name: float(rng.uniform(0.5, 2.0)) for sym in s.scalars}
    values.update({b.label.name: rng.uniform(0.5, 2.0, classes) for b in s.arrays})
    # a loss defined for positive targets only is not defined at the zeros of a label's one-hot
    targets = [] if POSITIVE in s.derivation.steps[0].facts else \
        [("labels", labels, np.eye(classes)[labels])]
    if not s.labels_only:
        probs = rng.dirichlet(np.ones(classes), rows)
        targets.append(("probabilities", probs, probs))
    for kind, target, rows_of in targets:
        budget.check("running the generated module against its derivation")
        with np.errstate(all="ignore"):  # a loss that overflows here is compared, not warned of
            loss, grad = module.loss_with_grad(logits, target, **values)
        for n in range(rows):
            where = {"c": int(labels[n])} if s.labels_only else {}
            args = (list(logits[n]), list(rows_of[n]))
            expected_loss = evaluate(s.loss, *args, **where, **values)
            expected_grad = np.array([evaluate(s.grad, *args, k=j, **where, **values)
                                      for j in range(classes)])
            if not (_agree(loss[n], expected_loss) and _agree(grad[n], expected_grad)):
                raise CheckError(f"the generated code does not agree with the derivation with "
                                 f"{kind} at logits {np.round(logits[n], 4).tolist()}: loss "
                                 f"{loss[n]:.6g} (derived {expected_loss:.6g}), gradient "
                                 f"{np.round(grad[n], 6).tolist()} (derived "
                                 f"{np.round(expected_grad, 6).tolist()})")


def _agree(generated, derived) -> bool:
    """Whether the generated values equal the derived ones to 1e-7 (relative to 1 and to the
    largest derived entry), an overflow to the same infinity included."""
    import numpy as np
    generated, derived = np.atleast_1d(generated), np.atleast_1d(derived)
    with np.errstate(all="ignore"):
        finite = np.isfinite(derived)
        scale = max(1.0, float(np.max(np.abs(derived[finite]), initial=0.0)))
        close = np.abs(generated - derived) <= 1e-7 * scale
    return bool(np.all(close | (generated == derived)))


HEADER = '''"""{title}: loss and gradient for NumPy, generated from the checked derivation.

    {loss}

Generated by derive {version}. Do not edit: generate it again with `derive build --loss`.

Where each formula comes from (derivation, step), and the rewrites that make it stable:
{sources}

Conventions: the class axis is last; logits are finite and may have any leading shape.
{targets}
{values}
float32 stays float32, float16 is computed in float32 and returned as float16, integers
become float64. reduction: "none" (one loss a row), "mean" or "sum".
"""
import numpy

__all__ = ["loss", "grad", "loss_with_grad"]
'''

PRELUDE = '''

_REDUCTIONS = ("none", "mean", "sum")


def _prepare(logits, target, reduction, labels_only):
    """Check the arguments and bring them to the form the formulas use."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of 'none', 'mean', 'sum', not {reduction!r}")
    array = numpy.asarray(logits)
    if array.dtype.kind in "biu":
        array = array.astype(numpy.float64)
    elif array.dtype.kind != "f":
        raise ValueError(f"logits must be real numbers, not {array.dtype}")
    elif not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if array.ndim == 0 or array.shape[-1] == 0:
        raise ValueError("logits must have a non-empty class axis, the last")
    out_dtype = array.dtype
    if out_dtype == numpy.float16:
        array = array.astype(numpy.float32)
    given = numpy.asarray(target)
    classes = array.shape[-1]
    if given.shape == array.shape[:-1]:
        if given.dtype.kind not in "iu":
            raise ValueError(f"target: class labels must be integers, not {given.dtype}")
        if given.size and (given.min() < 0 or given.max() >= classes):
            raise ValueError(f"target: class labels must lie in 0..{classes - 1}")
        return array, out_dtype, given[..., None].astype(numpy.intp, copy=False), None
    if labels_only:
        raise ValueError(f"target: this loss uses the label c, so give integer class labels of "
                         f"shape {array.shape[:-1]}, not an array of shape {given.shape}")
    if given.shape == array.shape:
        if given.dtype.kind not in "fiu":
            raise ValueError(f"target: probabilities must be real numbers, not {given.dtype}")
        probs = given.astype(array.dtype)
        if not numpy.all(numpy.isfinite(probs)) or numpy.any(probs < 0):
            raise ValueError("target: probabilities must be finite and not negative")
        return array, out_dtype, None, probs
    raise ValueError(f"target of shape {given.shape} fits neither class labels of shape "
                     f"{array.shape[:-1]} nor probabilities of shape {array.shape}")


def _values(values, logits, scalars, arrays):
    """The loss's scalar parameters and per-class arrays, checked, in the logits' dtype."""
    unknown = sorted(set(values) - set(scalars) - set(arrays))
    if unknown:
        takes = ", ".join(scalars + arrays) or "no values"
        raise ValueError(f"unknown value {unknown[0]!r}: this loss takes {takes}")
    missing = [name for name in scalars + arrays if name not in values]
    if missing:
        raise ValueError(f"missing value for {', '.join(missing)}")
    out = []
    for name in scalars:
        value = values[name]
        if isinstance(value, numpy.ndarray) and value.ndim == 0:
            value = value[()]
        if (isinstance(value, (bool, numpy.bool_))
                or not isinstance(value, (int, float, numpy.integer, numpy.floating))):
            raise ValueError(f"{name} must be a real number, not {value!r}")
        with numpy.errstate(over="ignore", under="ignore"):
            try:
                number = logits.dtype.type(value)
            except OverflowError:  # a Python int too big for any float
                number = None
        if number is None or not numpy.isfinite(number) or not number > 0:
            raise ValueError(f"{name} must be a finite number > 0 in {logits.dtype}, "
                             f"not {value!s}")
        out.append(number)
    for name in arrays:
        array = numpy.asarray(values[name])
        if array.shape != logits.shape[-1:]:
            raise ValueError(f"{name} must have one entry a class, shape {logits.shape[-1:]}, "
                             f"not {array.shape}")
        if array.dtype.kind not in "fiu":
            raise ValueError(f"{name} must be real numbers, not {array.dtype}")
        with numpy.errstate(over="ignore", under="ignore"):
            array = array.astype(logits.dtype)
        if not numpy.all(numpy.isfinite(array)) or not numpy.all(array > 0):
            raise ValueError(f"{name} must be finite and > 0 in {logits.dtype}")
        out.append(array)
    return out


def _shift(logits):
    """a = max_j z_j, and where it is (the top): any real a gives the same softmax; this one
    keeps every exponent ≤ 0. A NaN counts as the largest."""
    top = numpy.argmax(logits, axis=-1, keepdims=True)
    return numpy.take_along_axis(logits, top, axis=-1), top


def _rows(loss, logits):
    """The loss of each row, whatever shape its formula broadcast to."""
    if numpy.shape(loss) != logits.shape[:-1] + (1,):
        loss = numpy.array(numpy.broadcast_to(loss, logits.shape[:-1] + (1,)), dtype=logits.dtype)
    return loss[..., 0]


def _full(grad, logits):
    """The gradient with the logits' shape, whatever shape its formula broadcast to, and never
    the caller's logits themselves."""
    if numpy.shape(grad) == logits.shape and not numpy.may_share_memory(grad, logits):
        return grad
    return numpy.array(numpy.broadcast_to(grad, logits.shape), dtype=logits.dtype)


def _reduce(loss, reduction, out_dtype):
    if reduction == "none":
        return loss.astype(out_dtype, copy=False)
    if reduction == "sum":
        return out_dtype.type(loss.sum())
    # the mean of no rows is NaN, as in PyTorch (numpy's mean would also warn)
    return out_dtype.type(loss.mean() if loss.size else numpy.nan)


def _scale(grad, reduction, out_dtype, logits):
    if reduction == "mean" and grad.size:
        grad /= grad.size // grad.shape[-1]
    return grad.astype(out_dtype, copy=False)
'''

FUNCTION = '''

def {name}(logits, target, reduction="none", **values):
    """{doc}"""
    logits, out_dtype, labels, target = _prepare(logits, target, reduction, {labels_only})
{body}    return {returned}
'''
