"""The argument checks, layouts and custom JVP of generated JAX modules, as real, importable
Python (emitted into a module by :mod:`.emit`; jax is needed only where a generated module runs).

A loss is a ``jax.custom_jvp`` (:func:`_fused`) of a function that returns the loss and its
gradient from one pass: the rule's tangent is Σ_k ∂E/∂z_k · dz_k, with the gradient computed
with the loss, so ``jit``, ``vmap``, ``grad``, ``jvp`` and ``hessian`` (forward over reverse, which
differentiates the gradient's own code) all work.  Derivatives flow to the logits only: the
target and the loss's values are held constant (:func:`jax.lax.stop_gradient`)."""
import math

import numpy

try:
    import jax
    import jax.numpy as jnp
except ImportError:  # emitted as source; only a generated module needs jax
    jax = jnp = None


def _fused(with_grad):
    """The loss that ``with_grad(logits, *rest)`` returns with its gradient, as a
    ``jax.custom_jvp`` whose rule uses that gradient; ``.with_grad`` is the function itself."""
    if jax is None or with_grad.__module__.startswith("derive.codegen.backends."):
        return with_grad  # the template itself, not a generated module

    @jax.custom_jvp
    def fused(logits, *rest):
        return with_grad(logits, *rest)[0]

    @fused.defjvp
    def rule(primals, tangents):
        loss, grad = with_grad(*primals)
        return loss, jnp.sum(grad * tangents[0], axis=-1)

    def loss(logits, *rest):
        return fused(logits, *(jax.lax.stop_gradient(value) for value in rest))
    loss.with_grad = with_grad
    loss.__doc__ = with_grad.__doc__
    return loss


def _concrete(value):
    """``value`` as a NumPy array where it can be looked at, None where it is traced (under
    ``jit``, ``vmap`` or a derivative): the checks of values run where they can."""
    if isinstance(value, jax.core.Tracer):
        return None
    return numpy.asarray(value)


def _prepare(logits, target, labels_only=False):
    """The logits as a float array, classes last (float16 and bfloat16 computed in float32),
    and the target: ``(labels, None)`` for integer labels, with a trailing axis of 1, or
    ``(None, probabilities)`` of the logits' shape."""
    logits = jnp.asarray(logits)
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise ValueError(f"logits must be floating-point, not {logits.dtype}")
    if logits.ndim == 0 or logits.shape[-1] == 0:
        raise ValueError("logits must have a class axis (the last), not be empty or a scalar")
    if logits.dtype in (jnp.float16, jnp.bfloat16):
        logits = logits.astype(jnp.float32)
    target = jnp.asarray(target)
    if jnp.issubdtype(target.dtype, jnp.integer):
        if target.shape != logits.shape[:-1]:
            raise ValueError(f"target: integer labels must have shape {logits.shape[:-1]}, "
                             f"not {target.shape}")
        seen = _concrete(target)
        if seen is not None and seen.size and not (seen.min() >= 0
                                                   and seen.max() < logits.shape[-1]):
            raise ValueError(f"target: class labels must lie in 0..{logits.shape[-1] - 1}")
        return logits, target[..., None], None
    if labels_only:
        raise ValueError("target: this loss uses the label c, so give integer labels")
    if not jnp.issubdtype(target.dtype, jnp.floating) or target.shape != logits.shape:
        raise ValueError(f"target of shape {target.shape} and dtype {target.dtype} fits neither "
                         f"integer labels of shape {logits.shape[:-1]} nor probabilities of "
                         f"shape {logits.shape}")
    return logits, None, target.astype(logits.dtype)


def _finish(loss, grad, logits, dtype):
    """One loss an example, and the gradient with the logits' shape, both in ``dtype``."""
    loss = jnp.broadcast_to(loss, logits.shape[:-1] + (1,))[..., 0]
    return loss.astype(dtype), jnp.broadcast_to(grad, logits.shape).astype(dtype)


def _number(value, name, low, high, open_low=False):
    """A real parameter inside [low, high] (or (low, high]) where it can be looked at."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a real number, not {value!r}")
    seen = _concrete(value)
    if seen is not None and seen.ndim == 0:
        number = float(seen)
        if not (math.isfinite(number) and (low < number if open_low else low <= number)
                and number <= high):
            raise ValueError(f"{name} must lie in {'(' if open_low else '['}{low:g}, "
                             f"{high:g}], not {value!r}")
    return value


def _arguments(values, scalars, arrays, domains):
    """The loss's keyword values, in the order of its custom JVP: each scalar checked against
    its domain, each array of shape (K,) or the logits' (checked where it can be looked at)."""
    unknown = sorted(set(values) - set(scalars) - set(arrays))
    if unknown:
        raise ValueError(f"unknown value {unknown[0]!r}: this loss takes "
                         f"{', '.join(scalars + arrays) or 'no values'}")
    missing = [name for name in scalars + arrays if name not in values]
    if missing:
        raise ValueError(f"missing value for {', '.join(missing)}")
    out = []
    for name in scalars + arrays:
        value = values[name]
        if isinstance(value, bool) or not (isinstance(value, (int, float))
                                           or hasattr(value, "dtype")):
            raise ValueError(f"{name} must be a real number or array, not {value!r}")
        array = _concrete(value)
        if array is not None:
            array = array.astype(numpy.float64)
            intervals, words = domains[name]
            inside = numpy.zeros(array.shape, dtype=bool)
            for low, high, closed_low, closed_high in intervals:
                part = numpy.isfinite(array)
                if low is not None:
                    part &= (array >= low) if closed_low else (array > low)
                if high is not None:
                    part &= (array <= high) if closed_high else (array < high)
                inside |= part
            if not inside.all():
                each = "each entry of " if name in arrays else ""
                raise ValueError(f"{each}{name} must be {words}, not {value!r}")
        out.append(value)
    return out


def _values(values, logits):
    """The loss's values in the logits' dtype (scalars as numbers, arrays of shape (K,) or the
    logits')."""
    out = []
    for value in values:
        value = jnp.asarray(value, dtype=logits.dtype)
        if value.ndim and value.shape not in (logits.shape[-1:], logits.shape):
            raise ValueError(f"a per-class array must have shape {logits.shape[-1:]} or "
                             f"{logits.shape}, not {value.shape}")
        out.append(value)
    return out


def _weights(weight, logits):
    """Class weights: one non-negative finite entry a class, in the logits' dtype."""
    weight = jnp.asarray(weight, dtype=logits.dtype)
    if weight.shape != logits.shape[-1:]:
        raise ValueError(f"weight must have shape {logits.shape[-1:]}, not {weight.shape}")
    seen = _concrete(weight)
    if seen is not None and not numpy.all((seen >= 0) & numpy.isfinite(seen)):
        raise ValueError("weight: class weights must be finite and not negative")
    return weight
