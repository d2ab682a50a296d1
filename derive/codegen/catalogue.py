"""Stage 6 of the pipeline: the catalogue's NumPy module, generated from the derived results.

Every formula the module computes is a step of a checked derivation, named here as data
(:data:`FORMULAS`): the softmax and its log (``shift-invariance``), the loss and its gradient for
any target, the tempered ones and the Hessian (``any-target``), the class-weighted ones
(``class-weights``), the smoothed target (``label-smoothing``), the binary cross-entropy
(``sigmoid-bce``) and the softmax Jacobian (``softmax-jacobian``).  Each hole of the
backend's public functions (for NumPy :mod:`.backends.numpy_functions`: dtypes, target
conventions, checks, reductions) is filled by :func:`.lower.lower` from the formulas
:data:`BODIES` gives it: what differs between functions is data (the outputs, labels or
probabilities, the second axis of a (..., K, K) result, the names the scaffolding gives the
values), not code.  The linear layer's contractions are ``einsum`` lines of the IR
(:mod:`.layer`).  The module is a :class:`~.spec.ModuleSpec`, made by :func:`.spec.generate`.

Each formula is read off its derivation only when a function that needs it is generated, so
``source(functions=...)`` (a module of only some public functions, such as ``derive eval``
uses) checks only the derivations those functions need, and the softmax's
(``shift-invariance``), which every module uses.
"""
from __future__ import annotations

import inspect
import textwrap
import types
from dataclasses import dataclass, field
from typing import Callable, Iterable

from sympy import Derivative, Expr, Symbol, log

from ..version import __version__
from ..model import LINEAR, E, E_b, E_T, E_w, T, W, b, epsilon, i, k, l, p, q, w, y, y_ls, z
from ..records import Derivation
from ..render.printers import TextPrinter
from . import module, scaffold
from .backends import numpy as numpy_backend
from .ir import Values
from .layer import comment as layer_comment
from .layer import layer_lines
from .lines import allocate
from .lower import lower
from .spec import ModuleSpec, checked, generate
from .to_array import softmax_definitions

MODULE_NAME = "softmax_cross_entropy"
#: The public functions of the module and their holes, in the module's order (the backend's).
HOLES = numpy_backend.CATALOGUE.HOLES


_derived = checked  # a derivation by name, checked on first use


@dataclass(frozen=True)
class Formula:
    """A formula of the module: a step of a checked derivation (or the part of it that
    ``part`` reads: the loss inside a derivative, the terms of a sum)."""

    what: str
    derivation: str
    pick: Callable[[Derivation], int]          # the step's number, from 1
    part: Callable[[Expr], Expr] = lambda e: e

    def step(self) -> tuple[Derivation, int]:
        d = _derived(self.derivation)
        return d, self.pick(d)

    def expr(self) -> Expr:
        d, n = self.step()
        return self.part(d.steps[n - 1].expr)


def _first(lhs) -> Callable[[Derivation], int]:
    """The first main step with left-hand side ``lhs``."""
    return lambda d: next(n for n, s in enumerate(d.steps, 1) if s.lhs == lhs and not s.aside)


def _last(lhs) -> Callable[[Derivation], int]:
    """The last main step with left-hand side ``lhs`` that holds for any target (no fact)."""
    return lambda d: max(n for n, s in enumerate(d.steps, 1)
                         if s.lhs == lhs and not s.aside and not s.facts)


def _made_by(rule: str) -> Callable[[Derivation], int]:
    return lambda d: next(n for n, s in enumerate(d.steps, 1) if rule in s.rules)


FORMULAS = {
    "probs": Formula("probs", "shift-invariance", _made_by("shift-softmax")),
    "log_probs": Formula("log_probs", "shift-invariance", _last(log(q[k]))),
    "loss": Formula("loss", "any-target", _first(E)),
    "grad": Formula("grad", "any-target", _last(Derivative(E, z[k]))),
    "hessian": Formula("hessian", "any-target", _last(Derivative(E, z[k], z[l]))),
    "tempered loss": Formula("tempered loss", "any-target", _first(E_T)),
    "tempered grad": Formula("tempered grad", "any-target", _last(Derivative(E_T, z[k]))),
    "weighted loss": Formula("weighted loss", "class-weights", _first(E_w)),
    "weighted grad": Formula("weighted grad", "class-weights", _last(Derivative(E_w, z[k]))),
    "smoothed target": Formula("smoothed target", "label-smoothing",
                               _made_by("definition-smoothed-target"),
                               part=lambda e: e.function),  # the terms y'_i of the sum
    "smoothed grad": Formula("smoothed grad", "label-smoothing",
                             _made_by("smoothed-sum")),
    "bce loss": Formula("bce loss", "sigmoid-bce", _first(Derivative(E_b, z[k])),
                        part=lambda e: e.expr),  # the loss that step 1 differentiates
    "bce grad": Formula("bce grad", "sigmoid-bce", _last(Derivative(E_b, z[k]))),
    "jacobian": Formula("jacobian", "softmax-jacobian", _last(Derivative(q[i], z[k]))),
}


@dataclass(frozen=True)
class Body:
    """What fills one hole of the scaffolding: the arrays it computes, each from a formula;
    for integer labels or for target arrays; the free indices of a (..., K, K) result; the
    names the scaffolding gives the values; which bases are the softmax of the logits given
    (p for logits the scaffolding has divided by T) and which the target."""

    outputs: tuple[tuple[str, str | Expr], ...]  # a formula of FORMULAS, or q_k and log q_k
    labels: bool = False
    free: Symbol = k
    rows: Symbol | None = None
    names: dict = field(default_factory=dict)
    softmax: tuple = (q,)
    target: tuple = (y,)
    returns: tuple[str, ...] | None = None


_PLAIN = (("loss", "loss"),)
_TEMPERED = {"names": {T: "temperature"}, "softmax": (q, p)}

#: The formulas that fill each hole of the scaffolding.
BODIES = {
    "softmax": Body((("probs", q[k]),)),          # q_k, as shift-invariance defines it
    "log_softmax": Body((("log_probs", log(q[k])),)),
    "cross_entropy": Body(_PLAIN),
    "cross_entropy_labels": Body(_PLAIN, labels=True),
    "cross_entropy_grad": Body((("grad", "grad"),)),
    "cross_entropy_grad_labels": Body((("grad", "grad"),), labels=True),
    "cross_entropy_with_grad": Body((("loss", "loss"), ("grad", "grad"))),
    "cross_entropy_with_grad_labels": Body((("loss", "loss"), ("grad", "grad")), labels=True),
    "cross_entropy_hessian": Body((("hessian", "hessian"),), free=l, rows=k),
    "cross_entropy_hessian_labels": Body((("hessian", "hessian"),), labels=True, free=l, rows=k),
    "tempered": Body((("loss", "tempered loss"), ("grad", "tempered grad")), **_TEMPERED),
    "tempered_labels": Body((("loss", "tempered loss"), ("grad", "tempered grad")),
                            labels=True, **_TEMPERED),
    "weighted": Body((("loss", "weighted loss"), ("grad", "weighted grad")),
                     names={w: "weight"}),
    "smoothed_target": Body((("target", "smoothed target"),), labels=True, free=i,
                            names={epsilon: "epsilon"}),
    "smoothed": Body((("loss", "loss"), ("grad", "smoothed grad")), target=(y, y_ls)),
    "sigmoid_bce": Body((("loss", "bce loss"), ("grad", "bce grad"))),
    "softmax_jacobian": Body((("jacobian", "jacobian"),), free=k, rows=i),
}


def _fill(hole: str, definitions: dict, made, backend) -> list[str]:
    """The lines of one hole: its formulas lowered by :func:`.lower.lower`, after the line of
    the shifted logits where they read them."""
    body = BODIES[hole]
    values = Values(names=body.names, softmax=body.softmax, target=body.target)
    outputs = []
    for name, formula in body.outputs:
        if isinstance(formula, str):
            made.formulas.add(formula)
            formula = FORMULAS[formula].expr()
        outputs.append((name, formula))
    program = lower(outputs, values, definitions, labels=body.labels, returns=body.returns,
                    free=body.free, rows=body.rows, backend=backend,
                    scale=backend.SCALE)
    lines = made.add(program)
    return [backend.SHIFTED, *lines] if "shifted" in program.reads else lines


def _layer(part: int, backend) -> list[str]:
    lines = layer_lines(LINEAR.statement, [("grad_bias", _last_result("linear-layer", b)),
                                           ("grad_weight", _derived("linear-layer").result)])[part]
    if backend.IN_PLACE:
        outputs = [lines[-1].name] if part == 0 else [code.name for code in lines]  # the logits;
        allocate(lines, {code.name: code.shape for code in lines}, outputs,   # the gradients
                 backend.IN_PLACE, owned=())
    return [backend.line(code, layer_comment(code)) for code in lines]


def _last_result(name: str, base) -> Expr:
    """The last main step of ``name`` whose left-hand side differentiates with respect to an
    entry of ``base``."""
    d = _derived(name)
    return next(s.expr for s in reversed(d.main_steps) if isinstance(s.lhs, Derivative)
                and s.lhs.variables[0].base == base)


def _requires(name: str, backend) -> set[str]:
    """The other public functions that public function ``name`` calls, read from its code."""
    function = getattr(backend.CATALOGUE, name)
    return scaffold.names(inspect.getsource(function)) & set(backend.CATALOGUE.HOLES) - {name}


def _functions(subset: Iterable[str] | None, backend=numpy_backend) -> list[str]:
    """The public functions of a module with ``subset`` (default: all of them), together with
    the functions they call, in the module's order."""
    holes = backend.CATALOGUE.HOLES
    if subset is None:
        return list(holes)
    wanted = {subset} if isinstance(subset, str) else set(subset)
    unknown = wanted - set(holes)
    if unknown:
        raise ValueError(f"unknown function(s) {', '.join(sorted(unknown))}; choose from "
                         f"{', '.join(holes)}")
    pending = list(wanted)
    while pending:
        for needed in _requires(pending.pop(), backend):
            if needed not in wanted:
                wanted.add(needed)
                pending.append(needed)
    return [name for name in holes if name in wanted]


def source(functions: Iterable[str] | None = None, backend=numpy_backend) -> str:
    """The generated module's source for ``backend``: deterministic, the same bytes on every
    run.

    ``functions`` names the public functions to put in it (the functions they call come too);
    by default all of them.  Only the derivations whose formulas those functions implement are
    asked for, so only those are checked.
    """
    names = _functions(functions, backend)
    definitions = softmax_definitions(FORMULAS["probs"].expr(), FORMULAS["log_probs"].expr())

    def fill(function, hole, made):
        if hole.startswith("linear"):
            return _layer(0 if hole == "linear_logits" else 1, backend)
        return _fill(hole, definitions, made, backend)

    def head(sources, made):
        return backend.HEADER.format(version=__version__, sources=sources, exports=_exports(names),
                                     namespace=f"derive_{MODULE_NAME}_{made.digest[:12]}")
    spec = ModuleSpec(tuple((name, getattr(backend.CATALOGUE, name), backend.CATALOGUE.HOLES[name])
                            for name in names),
                      fill, lambda made: _sources(made.formulas | {"probs", "log_probs"}, names),
                      head, _derived)
    return generate(spec, backend)


def _exports(names: list[str]) -> str:
    """The module's ``__all__`` (its public names), wrapped at 99 columns."""
    return textwrap.fill(", ".join(f'"{name}"' for name in names if not name.startswith("_")),
                         width=98,
                         initial_indent="__all__ = [", subsequent_indent=" " * len("__all__ = ["),
                         break_long_words=False, break_on_hyphens=False) + "]"


def _sources(used: set[str], names: list[str]) -> list[str]:
    """Where each formula of the module comes from (derivation and step), for the formulas its
    functions use, and the ``batch-mean`` derivation that ``reduction="mean"`` implements."""
    text = TextPrinter().doprint
    lines = []
    for key, formula in FORMULAS.items():
        if key in used:
            d, n = formula.step()
            step = d.steps[n - 1]
            lines.append(f"  {formula.what:<16} {d.name}, step {n}: {text(step.lhs)} = "
                         f"{text(step.expr)}")
    if "cross_entropy_grad" in names or "_cross_entropy" in names:
        d = _derived("batch-mean")
        what = 'reduction="mean"'
        lines.append(f"  {what:<16} {d.name}, step {len(d.steps)}: "
                     f"{text(d.steps[-1].lhs)} = {text(d.result)}")
    if any(name.startswith("linear") for name in names):
        d = _derived("linear-layer")
        for what, base in (("bias grad", b), ("weight grad", W)):
            n = max(n for n, s in enumerate(d.steps, 1) if isinstance(s.lhs, Derivative)
                    and s.lhs.variables[0].base == base and not s.aside)
            lines.append(f"  {what:<16} {d.name}, step {n}: {text(d.steps[n - 1].lhs)} = "
                         f"{text(d.steps[n - 1].expr)}, with q - y the gradient of "
                         "cross_entropy_with_grad, (Σy) q - y for any target")
    return lines


def load_module(name: str = MODULE_NAME, functions: Iterable[str] | None = None,
                backend=numpy_backend) -> types.ModuleType:
    """Compile :func:`source` for ``backend`` in memory into a module (for the CLI and
    notebooks), run against the derivations of its formulas (:func:`.module.verify_catalogue`);
    with ``functions``, a module of only those public functions (and what they call), which
    checks only the derivations they need."""
    from .backends import require
    require(backend.NAME)
    loaded = module.load(name, source(functions, backend))
    module.verify_catalogue(module.seen_as_numpy(loaded, backend.NAME),
                            lambda key: FORMULAS[key].expr())
    return loaded
