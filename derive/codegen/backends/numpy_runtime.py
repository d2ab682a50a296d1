"""The NumPy runtime of generated modules: the helpers that generated lines call, as real,
importable and tested Python, with the argument checks of :mod:`.numpy_checks`.  A generated
module includes the source of those its functions and lines use
(:func:`sources`), found with :mod:`inspect`, with the helpers they call in turn (read from their
code), so the module needs nothing of derive.

They are the NumPy spelling of the operations of the lowering that are not one NumPy call: the
entries at the labels, the stable forms of 1 - e^l, log(1 - e^l), log Σ e^s and the sigmoid,
and sums with 0 · log 0 = 0.
"""
from __future__ import annotations

import sys

import numpy

from . import emit, numpy_checks


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
    """Each row's entry at its class label (labels keep a trailing axis of length 1), of values
    of the logits' shape or of one row for all."""
    values = numpy.broadcast_to(values, labels.shape[:-1] + values.shape[-1:])
    return numpy.take_along_axis(values, labels, axis=-1)


def _sum_off_label(values, labels):
    """Σ_j values_j over the classes other than each row's label."""
    values = numpy.array(numpy.broadcast_to(values, labels.shape[:-1] + values.shape[-1:]))
    numpy.put_along_axis(values, labels, 0, axis=-1)
    return numpy.sum(values, axis=-1, keepdims=True)


def _class_at(array, labels):
    """A per-class array's entry at each row's label: of an array of shape (K,), or of one with
    a row of values a row of logits (labels keep a trailing axis of length 1)."""
    if array.ndim == 1:
        return array[labels]
    return numpy.take_along_axis(array, labels, axis=-1)


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


def _weighted_sum_off_top(weights, values, top):
    """Σ_(j≠top) w_j x_j, with 0 where w_j = 0 (a masked class, whose x may be infinite)."""
    terms = numpy.multiply(weights, values, out=numpy.zeros(numpy.broadcast_shapes(
        numpy.shape(weights), numpy.shape(values), top.shape[:-1] + (1,)),
        dtype=numpy.result_type(weights, values)), where=weights != 0)
    numpy.put_along_axis(terms, top, 0, axis=-1)
    return numpy.sum(terms, axis=-1, keepdims=True)


def _balance_top(grad, top, out=None):
    """The gradient with its entry at the top (the largest logit) replaced by minus the sum of
    the others: the entries of the gradient of a loss unchanged by z + a sum to zero, and the
    top's is then exact where it is a difference of two numbers near 1."""
    if out is None:
        out = numpy.array(numpy.broadcast_to(grad, top.shape[:-1] + grad.shape[-1:]))
    numpy.put_along_axis(out, top, 0, axis=-1)  # a masked class's NaN stays its own
    numpy.put_along_axis(out, top, -numpy.nansum(out, axis=-1, keepdims=True), axis=-1)
    return out


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


def _log_one_minus_softmax(log_probs, top):
    """log(1 - q_k) from log q: log(1 - e^(log q_k)), and at the top, where q is near 1,
    log Σ_(j≠top) q_j, which keeps its digits however small 1 - q_top is."""
    out = _log_one_minus_exp(log_probs)
    others = numpy.array(log_probs)
    numpy.put_along_axis(others, top, -numpy.inf, axis=-1)
    numpy.put_along_axis(out, top, _logsumexp(others), axis=-1)
    return out


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


#: The helpers, the argument checks first (:mod:`.numpy_checks`).
HELPERS = emit.helpers(numpy_checks, sys.modules[__name__])


def needed(called: set[str]) -> list[str]:
    """The helpers to define for lines that call ``called``, with those they call, in a fixed
    order."""
    return emit.needed(HELPERS, called)


def sources(called: set[str]) -> str:
    """The source of the helpers :func:`needed` for ``called``, as a module includes it."""
    return emit.sources(HELPERS, called)
