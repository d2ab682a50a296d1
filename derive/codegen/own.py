"""A NumPy module for a loss of your own, from its checked derivation.

:func:`spec` reads what the code needs off the derivation: the loss (its definition step), its
gradient (the last step that holds for any target, or the one-hot form for a loss of the
label c), its scalar parameters and per-class arrays, and the targets it accepts.
:func:`source` lowers the formulas with :func:`.lower.lower` and fills the backend's public
functions (for NumPy :mod:`.backends.numpy_own`), whose argument checks, dtypes, target
conventions and reductions are the same for every loss: the module is a
:class:`~.spec.ModuleSpec`, made by :func:`.spec.generate`.
"""
from __future__ import annotations

import keyword
import re
import sys
import textwrap
import types
from dataclasses import dataclass

from sympy import Derivative, Expr, IndexedBase, Symbol

from .. import budget
from ..version import __version__
from ..errors import DeriveError
from ..domains import Domain, of_loss, values_of
from ..model import POSITIVE, c, k, q
from ..records import Derivation
from ..render.printers import TextPrinter
from . import module
from .backends import numpy as numpy_backend
from .ir import LoweringError, Values, value_name
from .lower import lower
from .spec import ModuleSpec, checked, generate
from .to_array import softmax_definitions

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
    scalars: tuple[Symbol, ...]
    arrays: tuple[IndexedBase, ...]  # each of shape (K,), or one row a row of logits
    labels_only: bool           # the loss uses the label c: integer labels only
    # whether the loss is unchanged by z + a (see shift_invariant): with one-hot targets (the
    # labels' case), and with any target of the module (probabilities not renormalised)
    shift_invariant: tuple[bool, bool] = (False, False)
    domains: tuple[Domain, ...] = ()  # of the scalars, then the arrays (:mod:`derive.domains`)


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
    scalars, arrays = values_of(steps[0].expr)
    for s in (*scalars, *arrays):
        label = s.label.name if isinstance(s, IndexedBase) else s.name
        if label in ARGUMENTS:
            raise DeriveError(f"the loss's {label!r} has the name of an argument of the "
                              "generated functions (logits, target, reduction); rename it")
        value_name(s)
    return LossSpec(module_name(name), d, steps[0].expr, steps[grad_step - 1].expr, loss_step,
                    grad_step, tuple(scalars), tuple(arrays), labels_only,
                    (shift_invariant(steps[0].expr, scalars, arrays, one_hot=True),
                     not labels_only and shift_invariant(steps[0].expr, scalars, arrays,
                                                         one_hot=False)),
                    tuple(of_loss(steps[0].expr)[v] for v in (*scalars, *arrays)))


def shift_invariant(loss: Expr, scalars, arrays, one_hot: bool, samples: int = 24) -> bool:
    """Whether ``loss`` is unchanged by adding one number to every logit, checked by the
    checker's evaluator at K = 2, 3 and 5 with logits, shifts, labels and positive values drawn
    at random, and targets one-hot (``one_hot``: near one-hot, summing to 1, for a loss of any
    target) or as the module takes them, not summing to 1:
    then Σ_k ∂E/∂z_k = 0 (a loss of q alone is, since q is; -Σ y z + log Σ e^z is only where
    Σ y = 1)."""
    import numpy

    from ..check.numeric import Point, evaluate
    from ..model import y, z
    rng = numpy.random.default_rng(20)
    for size in (2, 3, 5):
        logits = rng.normal(scale=2.0, size=(samples, size))
        shift = rng.normal(scale=5.0, size=(samples, 1))
        label = rng.integers(1, size + 1, size=samples)
        if not one_hot:
            target = rng.uniform(0.2, 1.5, size=(samples, size))
        elif loss.has(c):
            target = numpy.eye(size)[label - 1]
        else:  # near one-hot and summing to 1, where y log y has no 0 · log 0 to evaluate
            target = 0.999 * numpy.eye(size)[label - 1] + 0.001 * rng.dirichlet(
                numpy.ones(size), size=samples)
        values = {sym: rng.uniform(0.5, 1.5, size=samples) for sym in scalars}
        arrays_at = {base: rng.uniform(0.5, 1.5, size=(samples, size)) for base in arrays}
        at = [evaluate(loss, Point(size, samples, {z: x, y: target, **arrays_at}, values,
                                   {c: label} if loss.has(c) else {}))
              for x in (logits, logits + shift)]
        if not (numpy.all(numpy.isfinite(at)) and numpy.allclose(at[0], at[1], rtol=1e-9,
                                                                 atol=1e-12)):
            return False
    return True


_derivation = checked  # a derivation by name, checked on first use


def _softmax() -> tuple[dict, list[tuple[str, Derivation, int]]]:
    d = _derivation("shift-invariance")
    probs = next(n for n, s in enumerate(d.steps, 1) if s.lhs == q[k] and s.rules == ("shift-softmax",))
    log_probs = len(d.steps)
    return (softmax_definitions(d.steps[probs - 1].expr, d.steps[log_probs - 1].expr),
            [("probs", d, probs), ("log_probs", d, log_probs)])


def source(s: LossSpec, backend=numpy_backend) -> str:
    """The module's source for ``backend``: the same bytes on every run."""
    definitions, softmax_sources = _softmax()
    text = TextPrinter()
    values = Values(positive=frozenset(v for v, d in zip((*s.scalars, *s.arrays), s.domains)
                                       if _positive(d)))
    for sym in s.scalars:
        values.scalar(sym)
    for base in s.arrays:
        values.array(base)

    def lowered(function, hole, made):  # the labels' case, and the probabilities' case
        formulas = [(o, {"loss": s.loss, "grad": s.grad}[o])
                    for o in backend.OWN.OUTPUTS[function]]
        cases = []
        for labels in ((True,) if s.labels_only else (True, False)):
            budget.check(f"generating the code of {function}")
            try:
                cases.append(made.add(lower(formulas, values, definitions, labels=labels,
                                            backend=backend, scale=backend.SCALE,
                                            balance=s.shift_invariant[0 if labels else 1])))
            except LoweringError as e:
                raise LoweringError(f"cannot generate code for this loss: {e}") from None
        return cases

    def shifts(made) -> bool:
        return bool({"shift", "shifted", "top"} & made.reads)

    value_names = [value_name(v) for v in (*s.scalars, *s.arrays)]
    names = (tuple(sym.name for sym in s.scalars), tuple(b.label.name for b in s.arrays))
    unpack = backend.OWN.unpack(value_names, *names)

    def body(function, hole, cases, made):
        lines = list(unpack)
        if shifts(made):
            lines += ["shift, top = _shift(logits)", backend.SHIFT_CODE]
        width = 0
        if backend.QUIET:
            lines.append(backend.QUIET)
            width = 4
        if s.labels_only:
            return lines + _indent(cases[0], width)
        labels = "if labels is not None:  # a one-hot target: Σ_i y_i f_i = f_c"
        return (lines + [" " * width + labels]
                + _indent(cases[0], width + 4) + [" " * width + "else:"]
                + _indent(cases[1], width + 4))

    def cite(made):
        cited = [("loss", s.derivation, s.loss_step), ("grad", s.derivation, s.grad_step)]
        if shifts(made):
            cited += softmax_sources
        return [f"  {what:<10} {d.name}, step {n}: {text.doprint(d.steps[n - 1].lhs)} = "
                f"{text.doprint(d.steps[n - 1].expr)}" for what, d, n in cited]

    symbol = s.derivation.steps[0].lhs

    def head(sources, made):
        return backend.OWN.HEADER.format(
            title=s.name, loss=f"{text.doprint(symbol)} = {text.doprint(s.loss)}",
            version=__version__, sources=sources,
            targets=textwrap.fill(
                "Targets: integer class labels of shape logits.shape[:-1] (the loss uses the "
                "label c)." if s.labels_only else "Targets: integer class labels of shape "
                "logits.shape[:-1], or probabilities of the logits' shape (used as given, not "
                "renormalised).", 95),
            values=_describe_values(s), labels_only=s.labels_only, domains=_domains(s),
            namespace=f"derive_{s.name}_{made.digest[:12]}", scalars=names[0], arrays=names[1])
    spec = ModuleSpec(tuple((f, getattr(backend.OWN, f), backend.OWN.HOLES[f])
                            for f in backend.OWN.HOLES),
                      lowered,
                      cite, head, _derivation, arrange=body)
    return generate(spec, backend)


def _positive(domain) -> bool:
    """Whether every value of ``domain`` is > 0."""
    return all(low is not None and (low > 0 or low == 0 and not closed)
               for low, _, closed, _ in domain.intervals)


def _names(s: LossSpec) -> list[str]:
    return [v.label.name if isinstance(v, IndexedBase) else v.name for v in (*s.scalars, *s.arrays)]


def _domains(s: LossSpec) -> str:
    """The module's ``_DOMAINS``: each value's domain as data, in a fixed order."""
    entries = [f"    {n!r}: {d.data()!r},\n" for n, d in zip(_names(s), s.domains)]
    return "{\n" + "".join(entries) + "}" if entries else "{}"


def _describe_values(s: LossSpec) -> str:
    words = dict(zip(_names(s), (d.words for d in s.domains)))
    parts = []
    if s.scalars:
        parts.append("scalar parameters " + ", ".join(f"{v.name} ({words[v.name]})"
                                                      for v in s.scalars))
    if s.arrays:
        parts.append("per-class arrays " + ", ".join(
            f"{b.label.name} (each entry {words[b.label.name]})" for b in s.arrays)
            + ", each of shape (K,) or the logits' shape, one row of values a row of logits")
    if not parts:
        return "The loss has no parameters: pass no keyword values."
    return textwrap.fill("Keyword values: " + "; ".join(parts) + "; inf and NaN are refused.", 95)


def _indent(lines: list[str], width: int) -> list[str]:
    return [" " * width + line for line in lines]


def load(s: LossSpec, text: str | None = None, backend=numpy_backend) -> types.ModuleType:
    """The generated module of ``s`` (or its source ``text``) for ``backend``, compiled in
    memory and checked against its derivation (:func:`.module.verify_own`)."""
    from .backends import require
    require(backend.NAME)
    loaded = module.load(s.name, source(s, backend) if text is None else text)
    module.verify_own(module.seen_as_numpy(loaded, backend.NAME), s)
    return loaded


def checked_source(s: LossSpec, backend=numpy_backend) -> str:
    """:func:`source`, once the module it makes agrees with the derivation."""
    text = source(s, backend)
    load(s, text, backend)
    return text
