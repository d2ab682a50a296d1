"""Stage 6 of the pipeline: NumPy code generated from the derived results.

The formulas come from the checked derivations, never from a copy written here:

* ``q_k = e^{z_k - a} / Σ_j e^{z_j - a}`` and ``log q_k = z_k - a - log Σ_j e^{z_j - a}``
  (``shift-invariance``), with ``a = max_j z_j`` so that no exponent is positive;
* ``E = -Σ_i y_i log q_i`` and ``∂E/∂z_k = (Σ_i y_i) q_k - y_k`` (``logsumexp``: its definition
  step and its last step before the probability fact);
* ``∂q_i/∂z_k = q_i (δ_ik - q_k)`` (``softmax-jacobian``).

:mod:`derive.arraycode` turns each formula into NumPy lines; what is not a formula (dtypes,
target conventions, checks, reductions) is the fixed scaffolding in :mod:`derive.scaffold`.
"""
from __future__ import annotations

import os
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path

from sympy import Derivative, Expr, Symbol, log

from . import __version__, scaffold
from .arraycode import LOGQ, Q, SIG, Y_LS, layer_lines, lines
from .model import (LINEAR, PROBABILITY, E, E_b, E_lin, E_ls, E_T, E_w, b, c, i, k, l, p, q, sig,
                    y_ls, z)
from .records import Derivation
from .render.printers import TextPrinter

MODULE_NAME = "softmax_cross_entropy"


@dataclass(frozen=True)
class Formulas:
    """The derived results the generated functions implement, as indexed expressions."""

    probs: Expr          # q_k = e^(z_k - a) / Σ_j e^(z_j - a)
    log_probs: Expr      # log q_k = z_k - a - log Σ_j e^(z_j - a)
    loss: Expr           # E = -Σ_i y_i log q_i
    grad: Expr           # ∂E/∂z_k = (Σ_i y_i) q_k - y_k
    jacobian: Expr       # ∂q_i/∂z_k = q_i (δ_ik - q_k)
    loss_labels: Expr    # E for a one-hot target at c
    grad_labels: Expr    # ∂E/∂z_k for a one-hot target at c
    hessian: Expr        # ∂²E/∂z_l∂z_k = (Σ_i y_i) q_k (δ_kl - q_l)
    hessian_labels: Expr
    tempered_loss: Expr  # E_T = -Σ_i y_i log p_i
    tempered_grad: Expr  # ∂E_T/∂z_k = ((Σ_i y_i) p_k - y_k) / T
    tempered_loss_labels: Expr
    tempered_grad_labels: Expr
    weighted_loss: Expr  # E_w = -Σ_i w_i y_i log q_i
    weighted_grad: Expr  # ∂E_w/∂z_k = q_k Σ_i w_i y_i - w_k y_k
    smoothed_target: Expr  # y'_k = (1 - ε) δ_kc + ε/K
    smoothed_loss: Expr  # E' = -Σ_i y'_i log q_i
    smoothed_grad: Expr  # ∂E'/∂z_k = q_k - y'_k
    linear_logits: Expr  # z_k = Σ_g W_kg x_g + b_k
    linear_bias: Expr    # ∂E/∂b_k = q_k - y_k
    linear_weight: Expr  # ∂E/∂W_kd = (q_k - y_k) x_d
    sigmoid: Expr        # σ_k = 1 / (1 + e^{-z_k})
    bce_loss: Expr       # E_b with log σ_i = -log(1 + e^{-z_i}), log(1 - σ_i) = -log(1 + e^{z_i})
    bce_grad: Expr       # ∂E_b/∂z_k = σ_k - y_k


def formulas() -> Formulas:
    """Read the formulas off the checked derivations; specialise them to one-hot targets with
    the rule ``one-hot-select`` (Σ_i y_i f_i = f_c, Σ_i y_i = 1)."""
    from . import derivation, rules
    shift, route, jac, hess = (derivation(n) for n in
                               ("shift-invariance", "logsumexp", "softmax-jacobian", "hessian"))
    probs, log_probs = _last(shift, q[k]), shift.result
    loss = _last(route, E, first=True)
    grad = _last(route, Derivative(E, z[k]), without=PROBABILITY)
    loss_labels = rules.apply("one-hot-select", loss).subs(log(q[c]), log_probs.subs(k, c))
    grad_labels = rules.apply("one-hot-select", grad)
    hessian = _last(hess, Derivative(E, z[k], z[l]), without=PROBABILITY)
    hessian_labels = rules.apply("one-hot-select", hessian)
    temp, weights, smooth = (derivation(n) for n in ("temperature", "class-weights", "label-smoothing"))
    tempered_loss = _last(temp, E_T, first=True)
    tempered_grad = rules.apply("factor", _last(temp, Derivative(E_T, z[k]), without=PROBABILITY))
    # the code divides the logits by T first: log p_c is then the log-softmax at c
    tempered_loss_labels = rules.apply("one-hot-select", tempered_loss).subs(
        log(p[c]), log_probs.subs(k, c))
    tempered_grad_labels = rules.apply("one-hot-select", tempered_grad)
    smoothed_grad = _last(smooth, Derivative(E_ls, z[k]), with_rule="smoothed-sum")
    logsig, bce = derivation("log-sigmoid"), derivation("sigmoid-bce")
    # xreplace, not subs: the terms to replace contain the summation index i on purpose
    bce_loss = rules.apply("definition-binary-cross-entropy", E_b).xreplace(
        {log(sig[i]): _last(logsig, log(sig[k])).subs(k, i),
         log(1 - sig[i]): _last(logsig, log(1 - sig[k])).subs(k, i)})
    lin = derivation("linear-layer")
    linear_bias = _last(lin, Derivative(E_lin, b[k]))
    return Formulas(probs, log_probs, loss, grad, jac.result, loss_labels, grad_labels,
                    hessian, hessian_labels, tempered_loss, tempered_grad, tempered_loss_labels,
                    tempered_grad_labels, _last(weights, E_w, first=True), weights.result,
                    rules.apply("definition-smoothed-target", y_ls[k]),
                    rules.apply("definition-smoothed-cross-entropy", E_ls), smoothed_grad,
                    LINEAR.statement.rhs.subs(i, k), linear_bias, lin.result,
                    rules.apply("definition-sigmoid", sig[k]), bce_loss, bce.result)


def _last(d: Derivation, lhs, first=False, without=None, with_rule=None) -> Expr:
    """The last (or first) main step of ``d`` with left-hand side ``lhs``, without the fact
    ``without`` in force, or the one made by the rule ``with_rule``."""
    found = [s.expr for s in d.main_steps if s.lhs == lhs and without not in s.facts
             and (with_rule is None or with_rule in s.rules)]
    return found[0] if first else found[-1]


def source() -> str:
    """The generated module's source: deterministic, the same bytes on every run."""
    f = formulas()
    loss, grad = Symbol("loss"), Symbol("grad")
    loss, grad, jacobian = Symbol("loss"), Symbol("grad"), Symbol("jacobian")
    probability_target = {
        "softmax": ([(Q, f.probs)], ("probs",)),
        "log_softmax": ([(LOGQ, f.log_probs)], ("log_probs",)),
        "cross_entropy": ([(LOGQ, f.log_probs), (loss, f.loss)], ("loss",)),
        "cross_entropy_grad": ([(Q, f.probs), (grad, f.grad)], ("grad",)),
        "cross_entropy_with_grad": ([(Q, f.probs), (LOGQ, f.log_probs), (loss, f.loss),
                                     (grad, f.grad)], ("loss", "grad")),
    }
    one_hot_target = {
        "cross_entropy_labels": ([(loss, f.loss_labels)], ("loss",)),
        "cross_entropy_grad_labels": ([(Q, f.probs), (grad, f.grad_labels)], ("grad",)),
        "cross_entropy_with_grad_labels": ([(Q, f.probs), (loss, f.loss_labels),
                                            (grad, f.grad_labels)], ("loss", "grad")),
    }
    bodies = {name: lines(*spec) for name, spec in probability_target.items()}
    bodies.update({name: lines(*spec, one_hot=True) for name, spec in one_hot_target.items()})
    bodies["softmax_jacobian"] = lines([(Q, f.probs), (jacobian, f.jacobian)], ("jacobian",),
                                       rows=i)
    tempered = [(Q, f.probs), (LOGQ, f.log_probs), (loss, f.tempered_loss), (grad, f.tempered_grad)]
    bodies["tempered"] = lines(tempered, ("loss", "grad"))
    bodies["tempered_labels"] = lines([(Q, f.probs), (loss, f.tempered_loss_labels),
                                       (grad, f.tempered_grad_labels)], ("loss", "grad"),
                                      one_hot=True)
    bodies["weighted"] = lines([(Q, f.probs), (LOGQ, f.log_probs), (loss, f.weighted_loss),
                                (grad, f.weighted_grad)], ("loss", "grad"))
    bodies["smoothed"] = lines([(Y_LS, f.smoothed_target), (Q, f.probs), (LOGQ, f.log_probs),
                                (loss, f.smoothed_loss), (grad, f.smoothed_grad)], ("loss", "grad"))
    logits_lines, grad_lines = layer_lines(
        f.linear_logits, [("grad_bias", f.linear_bias), ("grad_weight", f.linear_weight)])
    bodies["linear_logits"], bodies["linear_grads"] = logits_lines, grad_lines
    bodies["sigmoid_bce"] = lines([(SIG, f.sigmoid), (loss, f.bce_loss), (grad, f.bce_grad)],
                                  ("loss", "grad"))
    hessian = Symbol("hessian")
    bodies["cross_entropy_hessian"] = lines([(Q, f.probs), (hessian, f.hessian)], ("hessian",),
                                            rows=k)
    bodies["cross_entropy_hessian_labels"] = lines([(Q, f.probs), (hessian, f.hessian_labels)],
                                                   ("hessian",), rows=k, one_hot=True)
    nested = ("cross", "tempered")  # bodies inside an if/else on the kind of target
    indent = {name: 12 if name.startswith(nested) else 4 if name.startswith("linear") else 8
              for name in bodies}
    indented = {name: "\n".join(" " * indent[name] + line
                                 for line in body) for name, body in bodies.items()}
    sources = "\n".join(f"  {what:<18} {where}" for what, where in _sources())
    return (scaffold.HEADER.format(version=__version__, sources=sources)
            + scaffold.SCAFFOLD.format(**indented))


def _sources() -> list[tuple[str, str]]:
    from . import derivation
    shift, route, jac, hess, batch, temp, weights, smooth, logsig, bce = (
        derivation(n) for n in ("shift-invariance", "logsumexp", "softmax-jacobian", "hessian",
                                "batch-mean", "temperature", "class-weights", "label-smoothing",
                                "log-sigmoid", "sigmoid-bce"))
    f = formulas()

    def where(d: Derivation, expr) -> str:
        number = next(n for n, s in enumerate(d.steps, 1) if s.expr == expr and not s.aside)
        return f"{d.name}, step {number}: {TextPrinter().doprint(d.steps[number - 1].lhs)} = " \
               f"{TextPrinter().doprint(expr)}"

    return [("probs", where(shift, f.probs)), ("log_probs", where(shift, f.log_probs)),
            ("loss", where(route, f.loss)), ("grad", where(route, f.grad)),
            ("jacobian", where(jac, f.jacobian)), ("hessian", where(hess, f.hessian)),
            ('reduction="mean"', where(batch, batch.result))] + [
        (what, where(d, expr)) for what, d, expr in (
            ("tempered grad", temp, _last(temp, temp.main_steps[-1].lhs, without=PROBABILITY)),
            ("weighted grad", weights, f.weighted_grad),
            ("smoothed grad", smooth, f.smoothed_grad),
            ("log(1 - sigmoid)", logsig, logsig.result),
            ("sigmoid grad", bce, f.bce_grad))]


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
