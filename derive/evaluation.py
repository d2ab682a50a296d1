"""The value of an expression of the model at given logits, targets and parameters: the
checker's evaluator, for one point, with the arrays and indices given by name."""
from __future__ import annotations

from .errors import InputError


def evaluate(expr, z=None, y=None, k=None, **values) -> float:
    """The value of any expression of the model at logits ``z`` and targets ``y``.

    ``K`` is ``len(z)``; sums are written out and ``q``, ``E`` and the other abbreviations
    expanded.  ``k`` (and any other free index passed by name, such as ``i``, ``c`` or ``m``)
    is a **0-based** position in the arrays: the mathematical index, which runs over 1..K, is
    ``k + 1``.  Other arrays (class weights ``w``, a batch's logits ``Z`` and targets ``Y``,
    of shape (N, K)) and parameters (``a``, ``T``, ``epsilon``) are passed by name too.  They
    must be finite, and the values of a user's loss ℒ in ``expr`` must lie in their domains
    (:mod:`derive.domains`), as the command line and the generated modules require.
    """
    import numpy as np

    from . import domains, model
    from .check import Point
    from .check import evaluate as evaluate_at

    own = model.own_symbols(expr)
    allowed = {}  # the domains of the values of a user's loss ℒ in expr (:mod:`derive.domains`)
    for loss in expr.atoms(model.Loss):
        allowed.update(domains.of_loss(loss.formula))
    bases = {base.name: base for base in (*model.ARRAYS, *own[1])}
    given = {"z": z, "y": y, **{name: values.pop(name) for name in list(values) if name in bases}}
    arrays = {bases[name]: np.asarray(v, dtype=float) for name, v in given.items() if v is not None}
    for base, array in arrays.items():
        if base in own[1] or base in allowed:
            for entry in array.flat:
                domains.check(base.name, entry, allowed.get(base, domains.ANY), entry=True)
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
            domains.check(name, value, allowed.get(parameter, domains.ANY))
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
