"""The JAX runtime of generated modules: the helpers of :mod:`.numpy_runtime` (same names, same
results) written with ``jax.numpy`` as pure functions, the class axis last, so that ``jit``,
``vmap``, ``grad``, ``jvp`` and ``hessian`` of the code that calls them work.  A generated module
includes the source of those its lines call (:mod:`.emit`), after ``import math``, ``import jax``
and ``import jax.numpy as jnp``: a helper names nothing else but its arguments and the other
helpers, and this file imports without jax.

Labels and tops are integer arrays with a trailing axis of length 1.  No value of an array
decides a Python branch: entries are picked with masks (``jnp.arange(K)`` against the labels or
the top) and ``jnp.where``.  Where the branch that ``jnp.where`` drops would have a NaN or
infinite derivative (0 · log 0, 0 / 0, log 0), its operand is first replaced by a harmless value
(the "double where"), so that the derivative stays finite wherever the true one is.
"""
import math
import sys

try:
    import jax
    import jax.numpy as jnp
except ImportError:  # emitted as source; only a generated module needs jax
    jax = jnp = None

from .emit import helpers


def _shift(logits):
    """a = max_j z_j, and where it is (the top), both with a trailing axis of 1: any a gives
    the same softmax, and this one keeps every exponent at or below 0.  Held constant
    (stop_gradient): no result depends on it.  A NaN counts as the largest, as in numpy.  The
    maximum is a plain reduction, not read off the top, so that where no formula asks for the
    top XLA drops its argmax, which costs several passes on the CPU."""
    shift = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    return shift, jnp.argmax(logits, axis=-1, keepdims=True)


def _sum_xlogq(target, log_probs):
    """Σ_i y_i log q_i along the class axis, keeping it, with 0 · log 0 = 0 for a masked class:
    a log-probability whose target is 0 counts as 0 (unless it is NaN, which stays NaN)."""
    counted = (target != 0) | jnp.isnan(log_probs)
    return jnp.sum(target * jnp.where(counted, log_probs, 0), axis=-1, keepdims=True)


def _take(values, labels):
    """Each row's entry at its class label, of values of the logits' shape or of one row for
    all."""
    values = jnp.broadcast_to(values, labels.shape[:-1] + values.shape[-1:])
    return jnp.take_along_axis(values, labels, axis=-1)


def _take_shifted(logits, shift, labels):
    """(z - a) at each row's label, computed as z_c - a: the same number as the shifted logits
    have there, but read from the logits, so that XLA need not write the shifted logits out
    (it fuses them into the exponential otherwise)."""
    return jnp.subtract(_take(logits, labels), shift)


def _sum_off_label(values, labels):
    """Σ_j values_j over the classes other than each row's label (that entry masked to 0, so
    an infinite or NaN value at the label does not count)."""
    at_label = jnp.arange(values.shape[-1]) == labels
    return jnp.sum(jnp.where(at_label, 0, values), axis=-1, keepdims=True)


def _class_at(array, labels):
    """A per-class array's entry at each row's label: of an array of shape (K,), or of one
    with a row of values a row of logits."""
    if array.ndim == 1:  # the rank is static: no branch on values
        return array[labels]
    return jnp.take_along_axis(array, labels, axis=-1)


def _one_hot(labels, logits):
    """The one-hot targets of the labels, in the logits' dtype, for formulas on whole rows."""
    return (labels == jnp.arange(logits.shape[-1])).astype(logits.dtype)


def _set_at_label(values, labels, row, logits):
    """values, of the logits' shape and dtype, with each row's entry at its label replaced by
    row."""
    at_label = jnp.arange(logits.shape[-1]) == labels
    return jnp.broadcast_to(jnp.where(at_label, row, values), logits.shape).astype(logits.dtype)


def _sum_off_top(exps, top, logits, shift):
    """Σ_j e^(s_j) - 1 for the exponentials e^(s) of ``logits`` shifted by their maximum
    ``shift``, whose top is exactly e^0 = 1: the whole sum less 1 where that keeps its digits
    (a sum of the others of at least 1/2), and elsewhere the entries below 1 summed on their
    own (:func:`_sum_below_one`), so that no digit of a tiny sum is lost; NaN for a row of NaN.
    Where the others sum to between 0 and 1/2 the row has one top (a tie would make them at
    least 1, a row without a top less than 0).  The derivative is that of the whole sum: it
    reaches every entry, the top's too, as that of Σ_j e^(s_j) does; nothing is differentiated
    through the exact sums."""
    whole = jnp.sum(exps, axis=-1, keepdims=True) - 1
    sure = jax.lax.stop_gradient(whole)
    need = (sure >= 0) & (sure < 0.5)  # the rows whose top dominates; NaN is not among them
    exact = _sum_below_one(need, sure, jax.lax.stop_gradient(logits), shift)
    return jnp.where(need, exact + (whole - sure), whole)  # whole - sure: 0, with its derivative


def _sum_below_one(need, whole, logits, shift):
    """``whole`` with its entries at the rows that ``need`` it replaced by Σ_j e^(s_j) over the
    entries below 1 of s = logits - shift.  The exponentials of those rows only are computed
    again, a block of rows at a time, with the rows found by ``jnp.nonzero``: summing a whole
    array with a mask costs XLA on the CPU several times a plain sum, and most rows of logits
    from an untrained model do not need it.  A loop (``lax.while_loop``), not an array's value,
    decides how many blocks; it reads the logits rather than their exponentials, which XLA
    would otherwise copy into the loop."""
    classes = logits.shape[-1]
    if whole.size == 0:
        return whole
    rows = logits.reshape(-1, classes)
    tops = jnp.broadcast_to(shift, logits.shape[:-1] + (1,)).reshape(-1, 1)
    count = rows.shape[0]
    block = max(1, min(count, 128))

    def exact(out):
        order = jnp.nonzero(need.reshape(-1), size=count + block, fill_value=count)[0]

        def step(state):
            i, out = state
            at = jax.lax.dynamic_slice(order, (i * block,), (block,))
            e = jnp.exp(jnp.take(rows, at, axis=0, mode="clip")
                        - jnp.take(tops, at, axis=0, mode="clip"))
            return i + 1, out.at[at].set(jnp.sum(jnp.where(e < 1, e, 0), axis=-1),
                                         mode="drop")
        return jax.lax.while_loop(lambda state: state[0] * block < jnp.sum(need),
                                  step, (0, out))[1]
    # where no row needs it (as with the logits of an untrained model), not even the rows
    # are looked for: finding them costs XLA on the CPU a dozen small passes
    out = jax.lax.cond(jnp.any(need), exact, lambda out: out, whole.reshape(-1))
    return out.reshape(whole.shape)


def _weighted_sum_off_top(weights, values, top):
    """Σ_(j≠top) w_j x_j, with 0 where w_j = 0 (a masked class, whose x may be infinite): such
    an x is replaced before the product, so neither 0 · ∞ nor its derivative makes a NaN."""
    classes = jnp.broadcast_shapes(jnp.shape(weights), jnp.shape(values))[-1]
    kept = (weights != 0) & (jnp.arange(classes) != top)
    terms = jnp.where(kept, weights * jnp.where(kept, values, 0), 0)
    return jnp.sum(terms, axis=-1, keepdims=True)


def _balance_top(grad, top):
    """The gradient with its entry at the top replaced by minus the sum of the others (NaNs,
    of masked classes, left out): the entries of the gradient of a loss unchanged by z + a sum
    to 0, and the top's is then exact where it is a difference of two numbers near 1."""
    at_top = jnp.arange(jnp.shape(grad)[-1]) == top
    others = jnp.nansum(jnp.where(at_top, 0, grad), axis=-1, keepdims=True)
    return jnp.where(at_top, -others, grad)


def _logsumexp(u):
    """log Σ_j e^(u_j) = m + log1p(Σ_(j≠top) e^(u_j - m)), m = max_j u_j at the top (0 where
    infinite or NaN): nothing overflows, a tiny sum of the others keeps its digits, and the
    gradient is the softmax."""
    m, top = _shift(u)
    m = jnp.where(jnp.isfinite(m), m, 0)
    return m + jnp.log1p(_sum_off_top(jnp.exp(u - m), top, u, m))


def _log_softmax(u):
    """log softmax(u) = (u - m) - log1p(Σ_(j≠top) e^(u_j - m)), m = max_j u_j at the top:
    nothing overflows, and at the top, where the log is near 0, no digit is lost to m."""
    m, top = _shift(u)
    m = jnp.where(jnp.isfinite(m), m, 0)
    shifted = u - m
    return shifted - jnp.log1p(_sum_off_top(jnp.exp(shifted), top, u, m))


def _softmax(u):
    """e^(u_k - m) / Σ_j e^(u_j - m) with m = max_j u_j: every exponent is at most 0."""
    e = jnp.exp(u - jax.lax.stop_gradient(jnp.max(u, axis=-1, keepdims=True)))
    return e / jnp.sum(e, axis=-1, keepdims=True)


def _softplus(u):
    """log(1 + e^u) = logaddexp(0, u), without overflow (derivative σ(u), 0 and 1 at ∓∞)."""
    return jnp.logaddexp(0, u)


def _sigmoid(u):
    """1 / (1 + e^(-u)) from z = e^(-|u|), which never overflows: 1 / (1 + z) for u ≥ 0, and
    z / (1 + z) below.  z is e^(-u) or e^u chosen by the sign, not e^(-|u|) spelled with abs,
    whose derivative at u = 0 would be 0."""
    below = u < 0
    z = jnp.exp(jnp.where(below, u, -u))
    return jnp.where(below, z, 1) / (1 + z)


def _one_minus_exp(l):
    """1 - e^l as -expm1(l): exact as l → 0, where 1 - e^l loses every digit."""
    return -jnp.expm1(l)


def _log_one_minus_exp(l):
    """log(1 - e^l) for l ≤ 0: log(-expm1(l)) above log(1/2), where -expm1 is exact, and
    log1p(-e^l) below; each branch sees log(1/2) in place of the l it does not take, so the
    dropped branch's log 0 at l = 0 makes no NaN derivative."""
    cut = math.log(0.5)
    near = l > cut
    return jnp.where(near, jnp.log(-jnp.expm1(jnp.where(near, l, cut))),
                     jnp.log1p(-jnp.exp(jnp.where(near, cut, l))))


def _log_one_minus_softmax(log_probs, top):
    """log(1 - q_k) from log q: log(1 - e^(log q_k)), and at the top, where q is near 1,
    log Σ_(j≠top) q_j, which keeps its digits however small 1 - q_top is."""
    at_top = jnp.arange(log_probs.shape[-1]) == top
    others = _logsumexp(jnp.where(at_top, -jnp.inf, log_probs))
    # the top's log q (maybe exactly 0) never reaches log(1 - e^l), whose derivative is -∞ there
    return jnp.where(at_top, others, _log_one_minus_exp(jnp.where(at_top, -1, log_probs)))


def _log_ratio(l):
    """l / (1 - e^l) = l / -expm1(l), with its limit -1 at l = 0.  Near 0 (|l| below about
    eps^(1/4)) the series -1 + l/2 - l²/12, exact to the last digit there: its derivatives
    are the true ones at 0, where those of the quotient (0 / 0) are not."""
    l = jnp.asarray(l, dtype=jnp.result_type(l, 0.0))
    small = jnp.abs(l) < (45 * jnp.finfo(l.dtype).eps) ** 0.25
    ratio = l / -jnp.expm1(jnp.where(small, 1, l))
    return jnp.where(small, -1 + l * (0.5 - l / 12), ratio)


def _xlogy(x, y):
    """x log y, with 0 · log y = 0 where log y is not finite (y = 0, y = ∞ or NaN): there y is
    replaced by 1 before the log, so neither the value nor its derivatives make a NaN."""
    bad = (x == 0) & ~((y > 0) & (y < jnp.inf))
    return x * jnp.log(jnp.where(bad, 1, y))


#: The helpers, in the order a module defines them.
HELPERS = helpers(sys.modules[__name__])
