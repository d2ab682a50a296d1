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

__version__ = "0.1.0"

from .derivations import names
if TYPE_CHECKING:
    from .records import Derivation, Step  # noqa: F401

from .budget import OutOfTime
from .errors import (CheckError, DeriveError, InputError, OutputError, ParseError,
                     RuleDoesNotApplyError, UnknownDerivationError, UnknownRuleError)
# the input language; lark and SymPy load on the first parse, not here
from .parse import arrays, parameters, parse, uses_class


def __getattr__(name: str):
    """``Derivation`` and ``Step`` load SymPy; import them only when asked for, so that
    ``derive --version``, ``derive list`` and ``--help`` start quickly."""
    if name in ("Derivation", "Step"):
        from . import records
        return getattr(records, name)
    raise AttributeError(f"module 'derive' has no attribute {name!r}")

__all__ = ["Derivation", "Step", "derivation", "names", "evaluate", "gradient", "parse",
           "parameters", "arrays", "uses_class", "numpy_module", "ParseError", "OutOfTime",
           "DeriveError", "CheckError", "InputError", "OutputError", "RuleDoesNotApplyError",
           "UnknownDerivationError", "UnknownRuleError", "__version__"]


def derivation(name: str) -> Derivation:
    """The derivation ``name`` (see :func:`names`), with every step checked."""
    from .check import checked
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
        from .auto import gradient as build
        from .check import check
        from sympy import Basic
        expr = loss if isinstance(loss, Basic) else parse(loss)
        d = build(expr, assume=assume, name=name)
        return d, check(d)


def evaluate(expr, z=None, y=None, k=None, **values) -> float:
    """The value of any expression of the model at logits ``z`` and targets ``y``.

    ``K`` is ``len(z)``; sums are written out and ``q``, ``E`` and the other abbreviations
    expanded.  ``k`` (and any other free index passed by name, such as ``i``, ``c`` or ``m``)
    is a **0-based** position in the arrays: the mathematical index, which runs over 1..K, is
    ``k + 1``.  Other arrays (class weights ``w``, a batch's logits ``Z`` and targets ``Y``,
    of shape (N, K)) and parameters (``a``, ``T``, ``epsilon``) are passed by name too.
    """
    import numpy as np

    from . import model
    from .check import Point
    from .check import evaluate as evaluate_at

    own = model.own_symbols(expr)
    bases = {base.name: base for base in (*model.ARRAYS, *own[1])}
    given = {"z": z, "y": y, **{name: values.pop(name) for name in list(values) if name in bases}}
    arrays = {bases[name]: np.asarray(v, dtype=float) for name, v in given.items() if v is not None}
    sizes = {}  # K, N and D, read off the arrays' shapes
    for base, array in arrays.items():
        shape = model.SHAPES.get(base, (model.K,))
        if array.ndim != len(shape) or 0 in array.shape:
            raise InputError(f"{base} must be a non-empty array of {len(shape)} dimension(s), "
                             f"not of shape {array.shape}")
        for extent, length in zip(shape, array.shape):
            if sizes.setdefault(extent, length) != length:
                raise InputError("the arrays disagree on the number of classes, examples or "
                                 "inputs: " + ", ".join(f"{b} {a.shape}" for b, a in arrays.items()))
    if model.K not in sizes:
        raise InputError("give the logits z, a target y or another array with one entry a class")
    size, batch, features = sizes[model.K], sizes.get(model.N, 1), sizes.get(model.D, 1)
    extents = {model.K: size, model.N: batch, model.D: features}
    for base in model.ARRAYS:  # arrays not given are zero
        arrays.setdefault(base, np.zeros([extents[e] for e in model.SHAPES[base]]))
    if k is not None:
        values["k"] = k
    indices, parameters = {}, {}
    for name, value in values.items():
        parameter = next((s for s in (*own[0], *model.PARAMETERS) if s.name == name), None)
        index = None if parameter is not None else \
            next((s for s in model.INDICES if s.name == name), None)
        if index is not None:
            top = {model.N: batch, model.D: features}.get(model.EXTENT.get(index), size)
            if not 0 <= int(value) < top:
                raise InputError(f"index {name}={value} is out of range 0..{top - 1}")
            indices[index] = np.array([int(value) + 1])
        elif parameter is not None:
            parameters[parameter] = np.array([float(value)])
        else:
            raise InputError(f"unknown index, array or parameter {name!r}")
    missing = model.free_indices(expr) - set(indices)
    if missing:
        raise InputError(f"the expression needs a value for index {', '.join(sorted(map(str, missing)))}")
    absent = [s.name for s in own[0] if s not in parameters] + \
        [b.name for b in own[1] if b not in arrays]
    if absent:
        raise InputError(f"the expression needs a value for {', '.join(absent)}")
    point = Point(size, 1, {base: array[None] for base, array in arrays.items()}, parameters,
                  indices, batch, features)
    return float(evaluate_at(expr, point)[0])



def numpy_module(loss=None, *, assume: str | None = None, name: str | None = None,
                 timeout: float = 60.0):
    """A generated NumPy module, compiled in memory from checked derivations.

    With no ``loss``, the catalogue's module (softmax, cross-entropy and its variants).  With a
    loss (text, LaTeX or a SymPy expression, as for :func:`gradient`), a module of its own with
    ``loss``, ``grad`` and ``loss_with_grad(logits, target, reduction="none", **values)``;
    ``assume`` is as for :func:`gradient` (default: ``"probability"``, or ``"one-hot"`` for a
    loss of the label c); ``name`` names the module (a Python identifier).
    """
    from . import budget
    with budget.deadline(timeout):
        if loss is None:
            from .codegen import load_module
            return load_module()
        from . import lossmodule
        lossmodule.module_name(name)  # refuse a bad name before deriving anything
        d = gradient(loss, assume=assume, name=name, timeout=timeout)
        return lossmodule.load(lossmodule.spec(d, name))
