"""The NumPy runtime of generated modules: the argument checks, reductions and helpers that
generated functions and lines call, as real, importable and tested Python.  A generated module includes the source of those its lines use
(:func:`sources`), found with :mod:`inspect`, with the helpers they call in turn (read from their
code), so the module needs nothing of derive.

They are the NumPy spelling of the operations of the lowering that are not one NumPy call: the
entries at the labels, the stable forms of 1 - e^l, log(1 - e^l), log Σ e^s and the sigmoid,
and sums with 0 · log 0 = 0.
"""
from __future__ import annotations

import ast
import inspect
import textwrap

import numpy


def _floating(logits, axis=-1):
    """The logits as a float array with the class axis last, and the dtype to return."""
    if isinstance(axis, (bool, numpy.bool_)) or not isinstance(axis, (int, numpy.integer)):
        raise ValueError(f"axis must be an integer, not {axis!r}")
    array = numpy.asarray(logits)
    if array.dtype.kind in "biu":
        array = array.astype(numpy.float64)
    elif array.dtype.kind != "f":
        raise ValueError(f"logits must be real numbers, not {array.dtype}")
    elif not array.dtype.isnative:  # big-endian on a little-endian machine, or the reverse
        array = array.astype(array.dtype.newbyteorder("="))
    if array.ndim == 0:
        raise ValueError("logits must have a class axis, not be a scalar")
    if not -array.ndim <= axis < array.ndim:
        raise ValueError(f"axis {axis} is out of range for logits with {array.ndim} dimensions")
    array = numpy.moveaxis(array, axis, -1)
    if array.shape[-1] == 0:
        raise ValueError("logits have an empty class axis")
    out_dtype = array.dtype
    if out_dtype == numpy.float16:
        array = array.astype(numpy.float32)
    return array, out_dtype


def _shift(logits):
    """a = max_j z_j, and where it is (the top): any real a gives the same softmax
    (shift-invariance); this one keeps every exponent at or below 0, so nothing overflows.
    A NaN counts as the largest."""
    top = numpy.argmax(logits, axis=-1, keepdims=True)
    return numpy.take_along_axis(logits, top, axis=-1), top


def _target(target, logits):
    """``(labels, None)`` for integer class labels, ``(None, probabilities)`` otherwise."""
    array = numpy.asarray(target)
    classes = logits.shape[-1]
    if array.shape == logits.shape[:-1]:
        if array.dtype.kind not in "iu":
            raise ValueError(f"target: class labels must be integers, not {array.dtype}")
        if array.size and (array.min() < 0 or array.max() >= classes):
            raise ValueError(f"target: class labels must lie in 0..{classes - 1}")
        return array[..., None].astype(numpy.intp, copy=False), None
    if array.shape == logits.shape:
        if array.dtype.kind not in "fiu":
            raise ValueError(f"target: probabilities must be real numbers, not {array.dtype}")
        with numpy.errstate(over="ignore"):  # a probability too big for the dtype: see below
            probs = numpy.asarray(array, dtype=logits.dtype)
        if probs.size and not _finite_and_not_negative(probs):
            _check_probabilities(array, probs)
        return None, probs
    raise ValueError(f"target of shape {array.shape} fits neither class labels of shape "
                     f"{logits.shape[:-1]} nor probabilities of shape {logits.shape}")


def _finite_and_not_negative(array):
    """One pass over the bit patterns, read in the array's byte order: a set sign bit
    (negative, or -0.0, which the caller looks at again) or an exponent of all ones (inf, NaN)
    makes the pattern at least inf's. Other widths (longdouble, whose 80 bits are padded to
    12 or 16 bytes) are compared as numbers."""
    if array.itemsize not in (2, 4, 8):
        return bool(numpy.all(array >= 0)) and bool(numpy.all(array < numpy.inf))
    unsigned = numpy.dtype(f"u{array.itemsize}").newbyteorder(array.dtype.byteorder)
    return array.view(unsigned).max() < numpy.array(numpy.inf, array.dtype).view(unsigned)


def _check_probabilities(given, probs):
    """Say what is wrong with the probabilities ``given``, which failed the quick check once
    cast to the logits' dtype as ``probs`` (-0.0 fails it too, and is fine)."""
    if not numpy.all(numpy.isfinite(given)):
        raise ValueError("target: probabilities must be finite")
    if numpy.any(given < 0):
        raise ValueError("target: probabilities must not be negative")
    if not numpy.all(numpy.isfinite(probs)):
        raise ValueError(f"target: probability {given.max()!s} overflows {probs.dtype}, "
                         f"the dtype of the logits")


def _prepare(logits, target, reduction, labels_only=False):
    """Check the arguments of a loss function and bring them to the form the formulas use;
    with ``labels_only``, the target must be class labels (the loss uses the label c)."""
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be one of 'none', 'mean', 'sum', not {reduction!r}")
    logits, out_dtype = _floating(logits)
    if labels_only and numpy.shape(target) != logits.shape[:-1]:
        raise ValueError(f"target: this loss uses the label c, so give integer class labels of "
                         f"shape {logits.shape[:-1]}, not an array of shape {numpy.shape(target)}")
    labels, target = _target(target, logits)
    return logits, out_dtype, labels, target


def _layer(inputs, weight, bias):
    """A linear layer's arguments as float arrays of one dtype, their shapes checked, and the
    dtype to return (float16 is computed in float32, and returned as float16)."""
    arrays = [numpy.asarray(a) for a in (inputs, weight, bias)]
    for name, array in zip(("inputs", "weight", "bias"), arrays):
        if array.dtype.kind not in "fiu":
            raise ValueError(f"{name} must be real numbers, not {array.dtype}")
    inputs, weight, bias = arrays
    if (weight.ndim != 2 or bias.shape != weight.shape[:1] or inputs.ndim == 0
            or inputs.shape[-1] != weight.shape[1]):
        raise ValueError(f"shapes do not fit a linear layer: inputs {inputs.shape} (..., D), "
                         f"weight {weight.shape} (K, D), bias {bias.shape} (K,)")
    out_dtype = numpy.result_type(*(a.dtype for a in arrays), numpy.float16)
    if out_dtype == numpy.float16 and any(a.dtype.kind != "f" for a in arrays):
        out_dtype = numpy.dtype(numpy.float64)
    dtype = numpy.dtype(numpy.float32) if out_dtype == numpy.float16 else out_dtype
    return (inputs.reshape(-1, inputs.shape[-1]).astype(dtype, copy=False),
            weight.astype(dtype, copy=False), bias.astype(dtype, copy=False), out_dtype)


def _number(value, name, dtype, low, high, open_low=False):
    """A scalar parameter as a number of ``dtype``: a real number (a Python or NumPy int or
    float; not a bool, a string or a complex number) in its range (finite, and closed at
    ``high`` unless that is inf), which neither underflows to 0 nor overflows in ``dtype``."""
    if isinstance(value, numpy.ndarray) and value.ndim == 0:
        value = value[()]
    if (isinstance(value, (bool, numpy.bool_))
            or not isinstance(value, (int, float, numpy.integer, numpy.floating))):
        raise ValueError(f"{name} must be a real number, not {value!r}")
    if (not (low < value if open_low else low <= value)
            or not (value < high if high == numpy.inf else value <= high)):
        bracket = "(" if open_low else "["
        closing = ")" if high == numpy.inf else "]"
        raise ValueError(f"{name} must lie in {bracket}{low}, {high}{closing}, not {value!s}")
    with numpy.errstate(over="ignore", under="ignore"):
        try:
            number = dtype.type(value)
        except OverflowError:  # a Python int too big for any float
            number = dtype.type(numpy.inf)
    if numpy.isinf(number):
        raise ValueError(f"{name} {value!s} overflows {dtype}, the dtype of the logits")
    if number == 0 and value != 0:
        raise ValueError(f"{name} {value!s} underflows to 0 in {dtype}, the dtype of the logits")
    return number


def _weights(weight, logits):
    """Class weights: finite, not negative, one a class."""
    array = numpy.asarray(weight)
    if array.shape != logits.shape[-1:]:
        raise ValueError(f"weight must have one entry a class, shape {logits.shape[-1:]}, "
                         f"not {array.shape}")
    if array.dtype.kind not in "fiu":
        raise ValueError(f"weight must be real numbers, not {array.dtype}")
    array = array.astype(logits.dtype)
    if not numpy.all(numpy.isfinite(array)) or numpy.any(array < 0):
        raise ValueError("weight must be finite and not negative")
    return array


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


def _scale(grad, reduction, out_dtype):
    if reduction == "mean" and grad.size:
        grad /= grad.size // grad.shape[-1]
    return grad.astype(out_dtype, copy=False)


def _sum_xlogq(target, log_probs):
    """Σ_i y_i log q_i along the class axis, keeping it, with 0 · log 0 = 0 for masked classes."""
    total = numpy.einsum("...k,...k->...", target, log_probs)[..., None]
    bad = numpy.isnan(total[..., 0])
    if bad.any():  # only 0 · (-inf) or a NaN log-probability makes NaN: recompute those rows
        target, log_probs = target[bad], log_probs[bad]
        # 0 · log 0 = 0 for a masked class; a row that cannot be normalised (all -inf, or with
        # a +inf or NaN logit) has NaN log-probabilities, and stays NaN whatever its target
        counted = (target != 0) | numpy.isnan(log_probs)
        rows = numpy.multiply(target, log_probs, out=numpy.zeros_like(log_probs), where=counted)
        total[bad, 0] = rows.sum(axis=-1)
    return total


def _take(values, labels):
    """Each row's entry at its class label (labels keep a trailing axis of length 1)."""
    return numpy.take_along_axis(values, labels, axis=-1)


def _sum_off_label(values, labels):
    """Σ_j values_j over the classes other than each row's label."""
    values = numpy.array(numpy.broadcast_to(values, labels.shape[:-1] + values.shape[-1:]))
    numpy.put_along_axis(values, labels, 0, axis=-1)
    return numpy.sum(values, axis=-1, keepdims=True)


def _class_at(array, labels):
    """A per-class array's entry at each row's label."""
    return array[labels]


def _one_hot(labels, logits):
    """The one-hot targets of the labels, for the formulas that need whole rows."""
    return (labels == numpy.arange(logits.shape[-1])).astype(logits.dtype)


def _set_at_label(values, labels, row, logits, out=None):
    """values with each row's entry at its label replaced by row."""
    if out is None:
        out = numpy.array(numpy.broadcast_to(values, logits.shape), dtype=logits.dtype)
    numpy.put_along_axis(out, labels, row, axis=-1)
    return out


def _sum_off_top(exps, top):
    """Σ_j e^(s_j) over the classes other than the top, where e^(s) is exactly 1: summed
    without it, so that no digit of a tiny sum is lost to the 1; plus e^(s_top) - 1, which is 0,
    or NaN for a row whose top is NaN or infinite."""
    at_top = numpy.take_along_axis(exps, top, axis=-1)
    numpy.put_along_axis(exps, top, 0, axis=-1)
    others = numpy.sum(exps, axis=-1, keepdims=True)
    numpy.put_along_axis(exps, top, at_top, axis=-1)
    others += at_top - 1
    return others


def _logsumexp(u):
    """log Σ_j e^(u_j) = m + log1p(Σ_(j≠top) e^(u_j - m)) with m = max_j u_j at the top:
    nothing overflows, and a tiny sum of the others keeps its digits."""
    m = numpy.max(u, axis=-1, keepdims=True)
    m = numpy.where(numpy.isfinite(m), m, 0)
    top = numpy.argmax(u, axis=-1, keepdims=True)
    return m + numpy.log1p(_sum_off_top(numpy.exp(u - m), top))


def _log_softmax(u):
    """log softmax(u) = (u - m) - log1p(Σ_(j≠top) e^(u_j - m)) with m = max_j u_j at the top:
    nothing overflows, and at the top, where the log is near 0, no digit is lost to m."""
    m = numpy.max(u, axis=-1, keepdims=True)
    m = numpy.where(numpy.isfinite(m), m, 0)
    top = numpy.argmax(u, axis=-1, keepdims=True)
    shifted = u - m
    return shifted - numpy.log1p(_sum_off_top(numpy.exp(shifted), top))


def _softmax(u):
    """e^(u_k) / Σ_j e^(u_j), from the max-shifted exponentials."""
    e = numpy.exp(u - numpy.max(u, axis=-1, keepdims=True))
    return e / numpy.sum(e, axis=-1, keepdims=True)


def _softplus(u, out=None):
    """log(1 + e^u) without overflow."""
    return numpy.logaddexp(0, u, out=out)


def _sigmoid(u, out=None):
    """1 / (1 + e^(-u)), from e^(-|u|), which never overflows."""
    e = numpy.exp(-numpy.abs(u))
    return numpy.divide(numpy.where(u >= 0, 1, e), 1 + e, out=out)


def _one_minus_exp(l, out=None):
    """1 - e^l as -expm1(l): exact as l → 0, where 1 - q loses every digit."""
    out = numpy.expm1(l, out=out)
    return numpy.negative(out, out=out)


def _log_one_minus_exp(l):
    """log(1 - e^l) for l ≤ 0: log(-expm1(l)) near 0, log1p(-e^l) further away."""
    with numpy.errstate(divide="ignore", invalid="ignore"):
        near = numpy.log(-numpy.expm1(l))
        far = numpy.log1p(-numpy.exp(l))
    return numpy.where(l > numpy.log(0.5), near, far)  # -expm1 is exact above log 1/2


def _log_ratio(l):
    """l / (1 - e^l), and its limit -1 at l = 0."""
    l = numpy.asarray(l)
    d = -numpy.expm1(l)
    out = numpy.full_like(l, -1)
    return numpy.divide(l, d, out=out, where=d != 0)


def _xlogy(x, y):
    """x log y, with 0 log 0 = 0."""
    with numpy.errstate(divide="ignore", invalid="ignore"):
        return numpy.where(x == 0, 0, x * numpy.log(y))


#: The helpers, in the order a module defines them.
HELPERS = {name: fn for name, fn in list(globals().items())
           if name.startswith("_") and inspect.isfunction(fn) and fn.__module__ == __name__}


def _calls(name: str) -> set[str]:
    """The helpers that helper ``name`` calls, read from its code."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(HELPERS[name])))
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)
            and node.id in HELPERS and node.id != name}


def needed(called: set[str]) -> list[str]:
    """The helpers to define for lines that call ``called``, with those they call, in a fixed
    order."""
    wanted, pending = set(), [name for name in called if name in HELPERS]
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending.extend(_calls(name))
    return [name for name in HELPERS if name in wanted]


def sources(called: set[str]) -> str:
    """The source of the helpers :func:`needed` for ``called``, as a module includes it."""
    return "".join("\n\n" + inspect.getsource(HELPERS[name]) for name in needed(called))
