"""The PyTorch runtime of generated modules: the helpers of :mod:`.numpy_runtime` (same names,
same results) written with torch, the class axis last, for CPU and CUDA tensors alike.  A
generated module includes the source of those its lines call (:mod:`.emit`), after
``import math`` and ``import torch``: a helper names nothing else but its arguments and the
other helpers, and this file imports without torch.

Labels and tops are int64 tensors with a trailing axis of length 1.  The helpers run inside a
loss's custom operator, where no autograd records them: a helper that takes ``out`` may write
its result there (one of its inputs that nothing later reads).  One synchronises with the
device: :func:`_sum_off_top` asks which rows need their sum taken without the top
(``torch.nonzero``), so that on the CPU only those rows are summed again.
"""
import math
import sys

try:
    import torch
except ImportError:  # emitted as source; only a generated module needs torch
    torch = None

from .emit import helpers


def _shift(logits):
    """a = max_j z_j, with a trailing axis of 1: any a gives the same softmax, and this one keeps
    every exponent at or below 0 (NaN where a row has one).  And where it is (the top), as a
    function that finds it the first time it is asked (:func:`_indices`): an index reduction
    costs several passes on the CPU, and most losses never need it."""
    shift = torch.amax(logits, dim=-1, keepdim=True)
    found = []

    def top():
        if not found:  # a NaN counts as the largest
            found.append(torch.argmax(torch.where(torch.isnan(logits), math.inf, logits),
                                      dim=-1, keepdim=True))
        return found[0]
    return shift, top


def _indices(top):
    """The top's index of each row: ``top`` itself, or what :func:`_shift`'s function finds."""
    return top() if callable(top) else top


def _sum_xlogq(target, log_probs):
    """Σ_i y_i log q_i along the class axis, keeping it, with 0 · log 0 = 0 for a masked class:
    a log-probability whose target is 0 counts as 0 (unless it is NaN, which stays NaN)."""
    counted = (target != 0) | torch.isnan(log_probs)
    return torch.sum(target * torch.where(counted, log_probs, 0), dim=-1, keepdim=True)


def _take(values, labels):
    """Each row's entry at its class label, of values of the logits' shape or of one row for
    all."""
    labels = _indices(labels)  # the labels, or the top
    values = values.expand(labels.shape[:-1] + values.shape[-1:])
    return torch.gather(values, -1, labels)


def _sum_off_label(values, labels):
    """Σ_j values_j over the classes other than each row's label."""
    values = values.expand(labels.shape[:-1] + values.shape[-1:])
    return torch.sum(values.scatter(-1, labels, 0), dim=-1, keepdim=True)


def _class_at(array, labels):
    """A per-class array's entry at each row's label: of an array of shape (K,), or of one
    with a row of values a row of logits."""
    if array.dim() == 1:
        return array[labels]
    return torch.gather(array, -1, labels)


def _one_hot(labels, logits):
    """The one-hot targets of the labels, in the logits' dtype, for formulas on whole rows."""
    classes = torch.arange(logits.shape[-1], device=logits.device)
    return (labels == classes).to(logits.dtype)


def _set_at_label(values, labels, row, logits, out=None):
    """values with each row's entry at its label replaced by row."""
    if out is None:
        out = values.expand(logits.shape).to(logits.dtype, copy=True)
    row = torch.as_tensor(row, dtype=out.dtype, device=out.device).expand(labels.shape)
    return out.scatter_(-1, labels, row)


def _sum_off_top(exps, top):
    """Σ_j e^(s_j) - 1 for the exponentials of logits shifted by their maximum, whose top is
    exactly e^0 = 1: the whole sum less 1 where that keeps its digits (a sum of the others of
    at least 1/2), and for the rows whose others sum to between 0 and 1/2 the entries below 1
    summed on their own, so that no digit of a tiny sum is lost; NaN for a row of NaN.  Such a
    row has one top (a tie would make the others at least 1), the one entry that the
    fractional part of e^(s), ``torch.frac``, sets to 0.  Those rows are copied out first where
    they are fewer than half of them, and otherwise all are taken."""
    others = torch.sum(exps, dim=-1, keepdim=True).sub_(1)
    flat, rows_out = exps.reshape(-1, exps.shape[-1]), others.view(-1, 1)
    need = (rows_out[:, 0] >= 0) & (rows_out[:, 0] < 0.5)
    rows = torch.nonzero(need)[:, 0]
    if 2 * rows.numel() > len(rows_out):
        exact = torch.sum(torch.frac(flat), dim=-1, keepdim=True)
        rows_out.copy_(torch.where(need[:, None], exact, rows_out))
    elif rows.numel():
        near = torch.frac_(torch.index_select(flat, 0, rows))
        rows_out[rows] = torch.sum(near, dim=-1, keepdim=True)
    return others


def _weighted_sum_off_top(weights, values, top):
    """Σ_(j≠top) w_j x_j, with 0 where w_j = 0 (a masked class, whose x may be infinite)."""
    top = _indices(top)
    weights, values = torch.broadcast_tensors(torch.as_tensor(weights), torch.as_tensor(values))
    terms = torch.where(weights != 0, weights * values, 0)
    terms = terms.expand(top.shape[:-1] + terms.shape[-1:]).scatter(-1, top, 0)
    return torch.sum(terms, dim=-1, keepdim=True)


def _balance_top(grad, top, out=None):
    """The gradient with its entry at the top (the largest logit) replaced by minus the sum of
    the others (NaNs, of masked classes, left out): the entries of the gradient of a loss
    unchanged by z + a sum to zero, and the top's is then exact where it is a difference of two
    numbers near 1."""
    top = _indices(top)
    if out is None:
        out = grad.expand(top.shape[:-1] + grad.shape[-1:]).clone()
    out.scatter_(-1, top, 0)
    return out.scatter_(-1, top, -torch.nansum(out, dim=-1, keepdim=True))


def _exp(u, out=None):
    """e^u.  For float32 on the CPU as 2^(u log2 e), which torch computes there faster than
    e^u, the product included: 1.1 to 1.2 times for shifted logits of N(0, 1)·3, and ten times
    where many results are subnormal (N(0, 1)·30), which slows its exp down.  Rounding u log2 e
    changes the result as much as a change of u in its last digit would, which u, a difference
    of logits, already carries."""
    if u.dtype == torch.float32 and u.device.type == "cpu":
        out = torch.mul(u, 1 / math.log(2), out=out)
        return torch.exp2(out, out=out)
    return torch.exp(u, out=out)


def _logsumexp(u):
    """log Σ_j e^(u_j) = m + log1p(Σ_(j≠top) e^(u_j - m)) with m = max_j u_j at the top (0
    where infinite or NaN): nothing overflows, and a tiny sum of the others keeps its digits."""
    m, top = _shift(u)
    m = torch.where(torch.isfinite(m), m, 0)
    return m + torch.log1p(_sum_off_top(_exp(u - m), top))


def _log_softmax(u):
    """log softmax(u) = (u - m) - log1p(Σ_(j≠top) e^(u_j - m)) with m = max_j u_j at the top:
    nothing overflows, and at the top, where the log is near 0, no digit is lost to m."""
    m, top = _shift(u)
    shifted = u - torch.where(torch.isfinite(m), m, 0)
    return shifted - torch.log1p(_sum_off_top(_exp(shifted), top))


def _softmax(u):
    """e^(u_k - m) / Σ_j e^(u_j - m) with m = max_j u_j: every exponent is at most 0."""
    e = _exp(u - torch.amax(u, dim=-1, keepdim=True))
    return e / torch.sum(e, dim=-1, keepdim=True)


def _softplus(u, out=None):
    """log(1 + e^u) without overflow."""
    return torch.logaddexp(torch.zeros((), dtype=u.dtype, device=u.device), u, out=out)


def _sigmoid(u, out=None):
    """1 / (1 + e^(-u)), as torch computes it: from e^(-|u|), which never overflows."""
    return torch.sigmoid(u, out=out)


def _one_minus_exp(l, out=None):
    """1 - e^l as -expm1(l): exact as l → 0, where 1 - q loses every digit."""
    out = torch.expm1(l, out=out)
    return out.neg_()


def _log_one_minus_exp(l):
    """log(1 - e^l) for l ≤ 0: log(-expm1(l)) near 0, log1p(-e^l) further away."""
    return torch.where(l > math.log(0.5), torch.log(-torch.expm1(l)),
                       torch.log1p(-torch.exp(l)))


def _log_one_minus_softmax(log_probs, top):
    """log(1 - q_k) from log q: log(1 - e^(log q_k)), and at the top, where q is near 1,
    log Σ_(j≠top) q_j, which keeps its digits however small 1 - q_top is."""
    top = _indices(top)
    out = _log_one_minus_exp(log_probs)
    others = _logsumexp(log_probs.scatter(-1, top, -math.inf))
    return out.scatter_(-1, top, others)


def _log_ratio(l):
    """l / (1 - e^l), and its limit -1 at l = 0."""
    d = -torch.expm1(l)
    return torch.where(d != 0, l / d, -1.0).to(l.dtype)


def _xlogy(x, y):
    """x log y, with 0 log 0 = 0."""
    return torch.where(x == 0, 0, x * torch.log(y))


#: The helpers, in the order a module defines them.
HELPERS = helpers(sys.modules[__name__])
