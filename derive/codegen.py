"""Stage 6 of the pipeline: NumPy code generated from the derived results.

The formulas come from the checked derivations, never from a copy written here:

* ``q_k = e^{z_k - a} / Σ_j e^{z_j - a}`` and ``log q_k = z_k - a - log Σ_j e^{z_j - a}``
  (``shift-invariance``), with ``a = max_j z_j`` so that no exponent is positive;
* ``E = -Σ_i y_i log q_i`` and ``∂E/∂z_k = (Σ_i y_i) q_k - y_k`` (``any-target``: its definition
  step and its last step before the probability fact);
* ``∂q_i/∂z_k = q_i (δ_ik - q_k)`` (``softmax-jacobian``).

:mod:`derive.arraycode` turns each formula into NumPy lines; what is not a formula (dtypes,
target conventions, checks, reductions) is the fixed scaffolding in :mod:`derive.scaffold`.

Each formula is read off its derivation only when a function that needs it is generated, so
``source(functions=...)`` (a module of only some public functions, such as ``derive eval``
uses) checks only the derivations those functions need.
"""
from __future__ import annotations

import os
import string
import tempfile
import textwrap
import types
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable

from sympy import Derivative, Expr, Symbol, log

from . import __version__, scaffold
from .arraycode import LOGQ, Q, SIG, Y_LS, layer_lines, lines
from .model import (LINEAR, E, E_b, E_lin, E_ls, E_T, E_w, b, c, i, k, l, p, q, sig,
                    y_ls, z)
from .records import Derivation
from .render.printers import TextPrinter

MODULE_NAME = "softmax_cross_entropy"


def _derived(name: str) -> Derivation:
    """The derivation ``name``, checked (on first use) by :func:`derive.derivation`."""
    from . import derivation
    return derivation(name)


def _rule(name: str, expr: Expr) -> Expr:
    from . import rules
    return rules.apply(name, expr)


class Formulas:
    """The derived results the generated functions implement, as indexed expressions.

    Each is read off its checked derivations when first asked for, and remembered, so a module
    of a few functions asks for (and checks) only the derivations those functions need.  The
    one-hot forms are specialised with the rule ``one-hot-select`` (Σ_i y_i f_i = f_c,
    Σ_i y_i = 1).
    """

    @cached_property
    def probs(self) -> Expr:  # q_k = e^(z_k - a) / Σ_j e^(z_j - a)
        return _last(_derived("shift-invariance"), q[k])

    @cached_property
    def log_probs(self) -> Expr:  # log q_k = z_k - a - log Σ_j e^(z_j - a)
        return _derived("shift-invariance").result

    @cached_property
    def loss(self) -> Expr:  # E = -Σ_i y_i log q_i
        return _last(_derived("any-target"), E, first=True)

    @cached_property
    def grad(self) -> Expr:  # ∂E/∂z_k = (Σ_i y_i) q_k - y_k
        return _last(_derived("any-target"), Derivative(E, z[k]))

    @cached_property
    def jacobian(self) -> Expr:  # ∂q_i/∂z_k = q_i (δ_ik - q_k)
        return _derived("softmax-jacobian").result

    @cached_property
    def loss_labels(self) -> Expr:  # E for a one-hot target at c
        return _rule("one-hot-select", self.loss).subs(log(q[c]), self.log_probs.subs(k, c))

    @cached_property
    def grad_labels(self) -> Expr:  # ∂E/∂z_k for a one-hot target at c
        return _rule("one-hot-select", self.grad)

    @cached_property
    def hessian(self) -> Expr:  # ∂²E/∂z_l∂z_k = (Σ_i y_i) q_k (δ_kl - q_l)
        return _last(_derived("any-target"), Derivative(E, z[k], z[l]))

    @cached_property
    def hessian_labels(self) -> Expr:
        return _rule("one-hot-select", self.hessian)

    @cached_property
    def tempered_loss(self) -> Expr:  # E_T = -Σ_i y_i log p_i
        return _last(_derived("any-target"), E_T, first=True)

    @cached_property
    def tempered_grad(self) -> Expr:  # ∂E_T/∂z_k = ((Σ_i y_i) p_k - y_k) / T
        return _last(_derived("any-target"), Derivative(E_T, z[k]))

    @cached_property
    def tempered_loss_labels(self) -> Expr:
        # the code divides the logits by T first: log p_c is then the log-softmax at c
        return _rule("one-hot-select", self.tempered_loss).subs(log(p[c]),
                                                                self.log_probs.subs(k, c))

    @cached_property
    def tempered_grad_labels(self) -> Expr:
        return _rule("one-hot-select", self.tempered_grad)

    @cached_property
    def weighted_loss(self) -> Expr:  # E_w = -Σ_i w_i y_i log q_i
        return _last(_derived("class-weights"), E_w, first=True)

    @cached_property
    def weighted_grad(self) -> Expr:  # ∂E_w/∂z_k = q_k Σ_i w_i y_i - w_k y_k
        return _derived("class-weights").result

    @cached_property
    def smoothed_target(self) -> Expr:  # y'_k = (1 - ε) δ_kc + ε/K
        return _rule("definition-smoothed-target", y_ls[k])

    @cached_property
    def smoothed_loss(self) -> Expr:  # E' = -Σ_i y'_i log q_i
        return _rule("definition-smoothed-cross-entropy", E_ls)

    @cached_property
    def smoothed_grad(self) -> Expr:  # ∂E'/∂z_k = q_k - y'_k
        return _last(_derived("label-smoothing"), Derivative(E_ls, z[k]), with_rule="smoothed-sum")

    @cached_property
    def linear_logits(self) -> Expr:  # z_k = Σ_g W_kg x_g + b_k
        return LINEAR.statement.rhs.subs(i, k)

    @cached_property
    def linear_bias(self) -> Expr:  # ∂E/∂b_k = q_k - y_k
        return _last(_derived("linear-layer"), Derivative(E_lin, b[k]))

    @cached_property
    def linear_weight(self) -> Expr:  # ∂E/∂W_kd = (q_k - y_k) x_d
        return _derived("linear-layer").result

    @cached_property
    def sigmoid(self) -> Expr:  # σ_k = 1 / (1 + e^{-z_k})
        return _rule("definition-sigmoid", sig[k])

    @cached_property
    def bce_loss(self) -> Expr:
        # E_b with log σ_i = -log(1 + e^{-z_i}), log(1 - σ_i) = -log(1 + e^{z_i});
        # xreplace, not subs: the terms to replace contain the summation index i on purpose
        logsig = _derived("log-sigmoid")
        return _rule("definition-binary-cross-entropy", E_b).xreplace(
            {log(sig[i]): _last(logsig, log(sig[k])).subs(k, i),
             log(1 - sig[i]): _last(logsig, log(1 - sig[k])).subs(k, i)})

    @cached_property
    def bce_grad(self) -> Expr:  # ∂E_b/∂z_k = σ_k - y_k
        return _derived("sigmoid-bce").result

    def used(self) -> set[str]:
        """The formulas asked for so far (each remembered as an attribute once read)."""
        return {name for name in vars(self) if isinstance(getattr(type(self), name, None),
                                                          cached_property)}


def formulas() -> Formulas:
    """The formulas of the generated module, each read off its checked derivations when first
    asked for."""
    return Formulas()


def _last(d: Derivation, lhs, first=False, without=None, with_rule=None) -> Expr:
    """The last (or first) main step of ``d`` with left-hand side ``lhs``, without the fact
    ``without`` in force, or the one made by the rule ``with_rule``."""
    found = [s.expr for s in d.main_steps if s.lhs == lhs and without not in s.facts
             and (with_rule is None or with_rule in s.rules)]
    return found[0] if first else found[-1]


def _bodies(f: Formulas) -> dict[str, Callable[[], list[str]]]:
    """How each hole of the templates is filled: lines generated from the formulas ``f``, read
    (and so checked) only when a template with that hole is filled."""
    loss, grad, jacobian, hessian = (Symbol(n) for n in ("loss", "grad", "jacobian", "hessian"))

    def linear(part: int) -> Callable[[], list[str]]:
        return lambda: layer_lines(f.linear_logits, [("grad_bias", f.linear_bias),
                                                     ("grad_weight", f.linear_weight)])[part]

    return {
        # probability targets
        "softmax": lambda: lines([(Q, f.probs)], ("probs",)),
        "log_softmax": lambda: lines([(LOGQ, f.log_probs)], ("log_probs",)),
        "cross_entropy": lambda: lines([(LOGQ, f.log_probs), (loss, f.loss)], ("loss",)),
        "cross_entropy_grad": lambda: lines([(Q, f.probs), (grad, f.grad)], ("grad",)),
        "cross_entropy_with_grad": lambda: lines(
            [(Q, f.probs), (LOGQ, f.log_probs), (loss, f.loss), (grad, f.grad)], ("loss", "grad")),
        # one-hot targets
        "cross_entropy_labels": lambda: lines([(loss, f.loss_labels)], ("loss",), one_hot=True),
        "cross_entropy_grad_labels": lambda: lines([(Q, f.probs), (grad, f.grad_labels)],
                                                   ("grad",), one_hot=True),
        "cross_entropy_with_grad_labels": lambda: lines(
            [(Q, f.probs), (loss, f.loss_labels), (grad, f.grad_labels)], ("loss", "grad"),
            one_hot=True),
        "softmax_jacobian": lambda: lines([(Q, f.probs), (jacobian, f.jacobian)], ("jacobian",),
                                          rows=i),
        "tempered": lambda: lines([(Q, f.probs), (LOGQ, f.log_probs), (loss, f.tempered_loss),
                                   (grad, f.tempered_grad)], ("loss", "grad")),
        "tempered_labels": lambda: lines([(Q, f.probs), (loss, f.tempered_loss_labels),
                                          (grad, f.tempered_grad_labels)], ("loss", "grad"),
                                         one_hot=True),
        "weighted": lambda: lines([(Q, f.probs), (LOGQ, f.log_probs), (loss, f.weighted_loss),
                                   (grad, f.weighted_grad)], ("loss", "grad")),
        "smoothed": lambda: lines([(Y_LS, f.smoothed_target), (Q, f.probs), (LOGQ, f.log_probs),
                                   (loss, f.smoothed_loss), (grad, f.smoothed_grad)],
                                  ("loss", "grad")),
        "linear_logits": linear(0),
        "linear_grads": linear(1),
        "sigmoid_bce": lambda: lines([(SIG, f.sigmoid), (loss, f.bce_loss), (grad, f.bce_grad)],
                                     ("loss", "grad")),
        "cross_entropy_hessian": lambda: lines([(Q, f.probs), (hessian, f.hessian)], ("hessian",),
                                               rows=k),
        "cross_entropy_hessian_labels": lambda: lines([(Q, f.probs), (hessian, f.hessian_labels)],
                                                      ("hessian",), rows=k, one_hot=True),
    }


def _indent(hole: str, body: list[str]) -> str:
    """A hole's lines, indented as its template needs them."""
    nested = ("cross", "tempered")  # bodies inside an if/else on the kind of target
    width = 12 if hole.startswith(nested) else 4 if hole.startswith("linear") else 8
    return "\n".join(" " * width + line for line in body)


def _functions(subset: Iterable[str] | None) -> list[str]:
    """The public functions of a module with ``subset`` (default: all of them), together with
    the functions they call, in the module's order."""
    if subset is None:
        return list(scaffold.FUNCTIONS)
    wanted = {subset} if isinstance(subset, str) else set(subset)
    unknown = wanted - set(scaffold.FUNCTIONS)
    if unknown:
        raise ValueError(f"unknown function(s) {', '.join(sorted(unknown))}; choose from "
                         f"{', '.join(scaffold.FUNCTIONS)}")
    pending = list(wanted)
    while pending:
        for needed in scaffold.REQUIRES.get(pending.pop(), ()):
            if needed not in wanted:
                wanted.add(needed)
                pending.append(needed)
    return [name for name in scaffold.FUNCTIONS if name in wanted]


def source(functions: Iterable[str] | None = None) -> str:
    """The generated module's source: deterministic, the same bytes on every run.

    ``functions`` names the public functions to put in it (the functions they call come too);
    by default all of them.  Only the derivations whose formulas those functions implement are
    asked for, so only those are checked.
    """
    names = _functions(functions)
    f = Formulas()
    bodies = _bodies(f)
    parts = []
    for name in names:
        template = scaffold.FUNCTIONS[name]
        holes = [field for _, field, _, _ in string.Formatter().parse(template) if field]
        parts.append(template.format(**{hole: _indent(hole, bodies[hole]()) for hole in holes}))
    sources = "\n".join(f"  {what:<18} {where}" for what, where in _sources(f, names))
    return (scaffold.HEADER.format(version=__version__, sources=sources, exports=_exports(names))
            + scaffold.PRELUDE.format() + "".join(parts))


def _exports(names: list[str]) -> str:
    """The module's ``__all__``, wrapped at 99 columns."""
    return textwrap.fill(", ".join(f'"{name}"' for name in names), width=98,
                         initial_indent="__all__ = [", subsequent_indent=" " * len("__all__ = ["),
                         break_long_words=False, break_on_hyphens=False) + "]"


def _sources(f: Formulas, names: list[str]) -> list[tuple[str, str]]:
    """Where each formula of the module comes from: (what, derivation and step), for the
    formulas its functions use (and the ``batch-mean`` derivation, which
    ``cross_entropy_grad(..., reduction="mean")`` implements, when it has that function)."""
    def where(d: Derivation, expr) -> str:
        number = next(n for n, s in enumerate(d.steps, 1) if s.expr == expr and not s.aside)
        return f"{d.name}, step {number}: {TextPrinter().doprint(d.steps[number - 1].lhs)} = " \
               f"{TextPrinter().doprint(expr)}"

    cited = f.used() | set(names)
    # (what, derivation, the expression cited, the formula or function that makes it cited)
    entries: list[tuple[str, str, Callable[[Derivation], Expr], str]] = [
        ("probs", "shift-invariance", lambda d: f.probs, "probs"),
        ("log_probs", "shift-invariance", lambda d: f.log_probs, "log_probs"),
        ("loss", "any-target", lambda d: f.loss, "loss"),
        ("grad", "any-target", lambda d: f.grad, "grad"),
        ("jacobian", "softmax-jacobian", lambda d: f.jacobian, "jacobian"),
        ("hessian", "any-target", lambda d: f.hessian, "hessian"),
        ('reduction="mean"', "batch-mean", lambda d: d.result, "cross_entropy_grad"),
        ("tempered grad", "any-target", lambda d: f.tempered_grad, "tempered_grad"),
        ("weighted grad", "class-weights", lambda d: f.weighted_grad, "weighted_grad"),
        ("smoothed grad", "label-smoothing", lambda d: f.smoothed_grad, "smoothed_grad"),
        ("log(1 - sigmoid)", "log-sigmoid", lambda d: d.result, "bce_loss"),
        ("sigmoid grad", "sigmoid-bce", lambda d: f.bce_grad, "bce_grad"),
    ]
    return [(what, where(_derived(name), expr(_derived(name))))
            for what, name, expr, when in entries if when in cited]


def load_module(name: str = MODULE_NAME,
                functions: Iterable[str] | None = None) -> types.ModuleType:
    """Compile :func:`source` in memory into a module (for the CLI and notebooks); with
    ``functions``, a module of only those public functions (and what they call), which checks
    only the derivations they need."""
    module = types.ModuleType(name)
    module.__file__ = f"<derive:{name}>"
    exec(compile(source(functions), module.__file__, "exec"), module.__dict__)
    return module


def _mode(path: Path) -> int:
    """The permissions a written file gets: those of the file it replaces, or what the umask
    allows of rw-rw-rw-."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.chmod(tmp, _mode(path))  # mkstemp makes the file private; the result should not be
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
