"""derive: the gradient of softmax cross-entropy, derived step by step for any number of classes.

The pipeline runs one way: model -> rules -> derivations -> checked records -> renderers and
code generator -> CLI, notebook and ``output/``.

>>> import derive
>>> d = derive.derivation("chain")
>>> d.result
q[k] - y[k]
>>> round(derive.evaluate(d.result, [1.0, 2.0, 0.5], [0.0, 1.0, 0.0], k=1), 4)
-0.3715
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .version import __version__

from .derivations import names
if TYPE_CHECKING:
    from .records import Derivation, Step  # noqa: F401

from .budget import OutOfTime
from .errors import (CheckError, DeriveError, InputError, OutputError, ParseError,
                     RuleDoesNotApplyError, UnknownDerivationError, UnknownRuleError)
# the input language; lark and SymPy load on the first parse, not here
from .parse import arrays, parameters, parse, uses_class
from .evaluation import evaluate


def __getattr__(name: str):
    """``Derivation`` and ``Step`` load SymPy; import them only when asked for, so that
    ``derive --version``, ``derive list`` and ``--help`` start quickly."""
    if name in ("Derivation", "Step"):
        from . import records
        return getattr(records, name)
    raise AttributeError(f"module 'derive' has no attribute {name!r}")

__all__ = ["Derivation", "Step", "derivation", "names", "evaluate", "gradient", "parse",
           "parameters", "arrays", "uses_class", "numpy_module", "torch_module", "jax_module",
           "ParseError", "OutOfTime",
           "DeriveError", "CheckError", "InputError", "OutputError", "RuleDoesNotApplyError",
           "UnknownDerivationError", "UnknownRuleError", "__version__"]


def derivation(name: str) -> Derivation:
    """The derivation ``name`` (see :func:`names`), with every step checked."""
    from .check import checked
    from .render import register
    register()  # a derivation prints itself through the renderers
    return checked(name)


def gradient(loss, *, assume: str | None = None, name: str | None = None,
             timeout: float = 60.0) -> Derivation:
    """The derivation of ∂ℒ/∂z_k for a loss of your own, built automatically and checked.

    ``loss`` is text (``-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)``, or the LaTeX that derive
    prints) or a SymPy expression over the model's symbols.  ``assume`` is the fact about the
    target: ``"any"``, ``"probability"`` (Σ_i y_i = 1) or ``"one-hot"`` (at class c); by
    default one-hot for a loss of the class c, else probability.  Everything the call does,
    from parsing to the last check, ends within ``timeout`` seconds, or raises
    :class:`OutOfTime` (a :class:`DeriveError` and a :class:`TimeoutError`) naming what it was
    doing.  No signal or timer is used, so it may be called from any thread.
    """
    return _checked_gradient(loss, assume, name, timeout)[0]


def _checked_gradient(loss, assume, name, timeout):
    """The checked derivation of ``loss`` and the checker's report on it."""
    from . import budget
    with budget.deadline(timeout):
        from .render import register
        register()  # a derivation prints itself through the renderers
        from .auto import gradient as build
        from .check import check
        from sympy import Basic
        expr = loss if isinstance(loss, Basic) else parse(loss)
        d = build(expr, assume=assume, name=name)
        return d, check(d)


def numpy_module(loss=None, *, assume: str | None = None, name: str | None = None,
                 timeout: float = 60.0):
    """A generated NumPy module, compiled in memory from checked derivations.

    With no ``loss``, the catalogue's module (softmax, cross-entropy and its variants).  With a
    loss (text, LaTeX or a SymPy expression, as for :func:`gradient`), a module of its own with
    ``loss``, ``grad`` and ``loss_with_grad(logits, target, reduction="none", **values)``;
    ``assume`` is as for :func:`gradient` (default: ``"probability"``, or ``"one-hot"`` for a
    loss of the label c); ``name`` names the module (a Python identifier).
    """
    return _module("numpy", loss, assume, name, timeout)


def torch_module(loss=None, *, assume: str | None = None, name: str | None = None,
                 timeout: float = 60.0):
    """A generated PyTorch module, compiled in memory from checked derivations and run against
    them, with the conventions of ``torch.nn.functional.cross_entropy``.

    With no ``loss``, the catalogue's (``cross_entropy``, ``CrossEntropyLoss``, the tempered,
    weighted, smoothed and sigmoid losses, softmax and log-softmax).  With a loss, as for
    :func:`numpy_module`: ``loss(input, target, reduction="mean", **values)``,
    ``loss_with_grad`` and the ``nn.Module`` ``Loss(reduction="mean", **values)``.  Each loss
    is a ``torch.library.custom_op`` whose forward computes its gradient in the same pass.
    Needs PyTorch (``pip install 'derive[torch]'``).
    """
    return _module("torch", loss, assume, name, timeout)


def jax_module(loss=None, *, assume: str | None = None, name: str | None = None,
               timeout: float = 60.0):
    """A generated JAX module, compiled in memory from checked derivations and run against
    them, with optax's conventions (class axis last, one loss an example).

    With no ``loss``, the catalogue's; with a loss, ``loss(logits, target, **values)`` and
    ``loss_with_grad``.  Each loss is a ``jax.custom_jvp`` whose rule is the checked gradient,
    so ``jit``, ``vmap``, ``grad``, ``jvp`` and ``hessian`` work.  Needs JAX
    (``pip install 'derive[jax]'``).
    """
    return _module("jax", loss, assume, name, timeout)


def _module(backend_name, loss, assume, name, timeout):
    from . import budget
    from .codegen.backends import get, require
    backend = get(backend_name)
    with budget.deadline(timeout):
        require(backend_name)
        if loss is None:
            from .codegen import load_module
            return load_module(backend=backend)
        from .codegen import own as lossmodule
        lossmodule.module_name(name)  # refuse a bad name before deriving anything
        d = gradient(loss, assume=assume, name=name, timeout=timeout)
        return lossmodule.load(lossmodule.spec(d, name), backend=backend)
