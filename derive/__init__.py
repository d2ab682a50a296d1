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

__version__ = "0.1.0"

from .derivations import names
from .errors import (CheckError, DeriveError, InputError, RuleDoesNotApplyError,
                     UnknownDerivationError, UnknownRuleError)
from .records import Derivation, Step

__all__ = ["Derivation", "Step", "derivation", "names", "evaluate", "numpy_module",
           "DeriveError", "CheckError", "InputError", "RuleDoesNotApplyError",
           "UnknownDerivationError", "UnknownRuleError", "__version__"]


def derivation(name: str) -> Derivation:
    """The derivation ``name`` (see :func:`names`), with every step checked."""
    from .check import checked
    return checked(name)


def evaluate(expr, z, y=None, k=None, *, w=None, **values) -> float:
    """The value of any expression of the model at logits ``z``, targets ``y`` and class
    weights ``w``.

    ``K`` is ``len(z)``; sums are written out and ``q``, ``E`` and the other abbreviations
    expanded.  ``k`` (and any other free index passed by name, such as ``i`` or ``c``) is a
    **0-based** position in the arrays: the mathematical index, which runs over 1..K, is
    ``k + 1``.  Parameters (``a``, ``T``, ``epsilon``) are passed by name too.
    """
    import numpy as np

    from . import model
    from .check import concretize, numeric_value

    logits = np.asarray(z, dtype=float)
    if logits.ndim != 1 or logits.size == 0:
        raise InputError("z must be a non-empty 1-D sequence of logits")
    arrays = {model.z: logits}
    for base, given in ((model.y, y), (model.w, w)):
        array = np.zeros_like(logits) if given is None else np.asarray(given, dtype=float)
        if array.shape != logits.shape:
            raise InputError(f"{base} has {array.size} entries but z has {logits.size}")
        arrays[base] = array
    if k is not None:
        values["k"] = k
    indices, parameters = {}, {}
    for name, value in values.items():
        index = next((s for s in model.INDICES if s.name == name), None)
        parameter = next((s for s in model.PARAMETERS if s.name == name), None)
        if index is not None:
            if not 0 <= int(value) < logits.size:
                raise InputError(f"index {name}={value} is out of range 0..{logits.size - 1}")
            indices[index] = int(value) + 1
        elif parameter is not None:
            parameters[parameter] = float(value)
        else:
            raise InputError(f"unknown index or parameter {name!r}")
    missing = model.free_indices(expr) - set(indices)
    if missing:
        raise InputError(f"the expression needs a value for index {', '.join(sorted(map(str, missing)))}")
    return numeric_value(concretize(expr, logits.size, indices), arrays, parameters)


def numpy_module():
    """The generated NumPy implementation, compiled in memory from the derived results."""
    from .codegen import load_module
    return load_module()
