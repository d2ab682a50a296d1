"""The argument checks and reductions of generated NumPy modules, as real, importable and tested
Python: the logits and targets, the loss's parameters and per-class arrays, and the reduction
of the rows.  :mod:`.numpy_runtime` emits those that a module's functions call."""
from __future__ import annotations

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


def _values(values, logits, scalars, arrays, domains):
    """The loss's scalar parameters and per-class arrays, checked, in the logits' dtype.

    ``domains`` gives each one's domain as data, ``(intervals, words)``: intervals ``(low, high,
    low closed, high closed)``, None for an unbounded end, and the words of the message.  An
    array has shape (K,) or the logits' shape (one row of values a row of logits); where one is
    given a row, all of them are seen with the logits' shape (read-only views)."""
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
        intervals, words = domains[name]
        with numpy.errstate(over="ignore", under="ignore"):
            try:
                given = numpy.float64(value)
                number = logits.dtype.type(value)
            except OverflowError:  # a Python int too big for any float
                given = number = numpy.float64(numpy.inf)
        if not _inside(given, intervals):
            raise ValueError(f"{name} must be {words}, not {_shown(value)}")
        _in_dtype(name, value, number, logits.dtype, intervals)
        out.append(number)
    per_row = False
    for name in arrays:
        array = numpy.asarray(values[name])
        if array.shape not in (logits.shape[-1:], logits.shape):
            rows = f" or the logits' shape {logits.shape}" if logits.ndim > 1 else ""
            raise ValueError(f"{name} must have shape (K,) = {logits.shape[-1:]}{rows}, not "
                             f"{array.shape}")
        if array.dtype.kind not in "fiu":
            raise ValueError(f"{name} must be real numbers, not {array.dtype}")
        intervals, words = domains[name]
        inside = _inside(array.astype(numpy.float64), intervals)
        if not numpy.all(inside):
            bad = array[~inside].flat[0]
            raise ValueError(f"each entry of {name} must be {words}, not {_shown(bad)}")
        with numpy.errstate(over="ignore", under="ignore"):
            cast = array.astype(logits.dtype)
        if not numpy.all(_inside(cast, intervals)):
            bad = ~_inside(cast, intervals)
            _in_dtype(f"an entry of {name}", array[bad].flat[0], cast[bad].flat[0],
                      logits.dtype, intervals)
        per_row = per_row or array.ndim > 1
        out.append(cast)
    if per_row:
        out[len(scalars):] = [numpy.broadcast_to(a, logits.shape) for a in out[len(scalars):]]
    return out


def _inside(values, intervals):
    """Whether each of ``values`` is finite and lies in one of ``intervals``."""
    values = numpy.asarray(values)
    inside = numpy.zeros(values.shape, dtype=bool)
    for low, high, closed_low, closed_high in intervals:
        part = numpy.isfinite(values)
        if low is not None:
            part &= (values >= low) if closed_low else (values > low)
        if high is not None:
            part &= (values <= high) if closed_high else (values < high)
        inside |= part
    return inside


def _in_dtype(name, value, number, dtype, intervals):
    """Refuse a value in its domain that leaves it once it is a number of ``dtype``."""
    if _inside(number, intervals):
        return
    if numpy.isinf(number):
        raise ValueError(f"{name} {_shown(value)} overflows {dtype}, the dtype of the logits")
    if number == 0:
        raise ValueError(f"{name} {_shown(value)} underflows to 0 in {dtype}, the dtype of the "
                         f"logits")
    raise ValueError(f"{name} {_shown(value)} rounds to {_shown(number)} in {dtype}, the dtype "
                     f"of the logits, outside its domain")


def _shown(value):
    """A number as a message shows it: -1, 0.5, inf, nan."""
    if isinstance(value, (int, numpy.integer)):
        return str(int(value))
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)


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
    with numpy.errstate(over="ignore"):  # a loss beyond float16 is inf, silently
        if reduction == "none":
            return loss.astype(out_dtype, copy=False)
        if reduction == "sum":
            return out_dtype.type(loss.sum())
        # the mean of no rows is NaN, as in PyTorch (numpy's mean would also warn)
        return out_dtype.type(loss.mean() if loss.size else numpy.nan)


def _scale(grad, reduction, out_dtype):
    if reduction == "mean" and grad.size:
        grad /= grad.size // grad.shape[-1]
    with numpy.errstate(over="ignore"):
        return grad.astype(out_dtype, copy=False)
