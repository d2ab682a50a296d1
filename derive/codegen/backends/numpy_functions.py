"""The public functions of the catalogue's NumPy module, as real Python with declared holes.

Each function is the fixed part of one public function of ``output/softmax_cross_entropy.py``:
argument checks, dtypes, target conventions and reductions.  A line ``...  # hole: NAME`` is
where the lines that the lowering generates for ``NAME`` go, at that line's indentation
(:data:`HOLES` declares them; :func:`derive.codegen.scaffold.fill` checks them).  The names that the holes define
(``probs``, ``loss``, ``grad``, ...) are not defined here: the functions' source is emitted,
filled, into a generated module; they are not called here.
"""
# ruff: noqa: F821
import numpy

from .numpy_checks import _floating, _layer, _number, _prepare, _reduce, _scale, _shift, _weights
from .numpy_runtime import _one_hot


def softmax(logits, axis=-1):
    """Softmax along ``axis``: q_k = e^(z_k - a) / Σ_j e^(z_j - a) with a = max_j z_j."""
    logits, out_dtype = _floating(logits, axis)
    shift, top = _shift(logits)
    with numpy.errstate(invalid="ignore"):
        ...  # hole: softmax
    return numpy.moveaxis(probs, -1, axis).astype(out_dtype, copy=False)


def log_softmax(logits, axis=-1):
    """Log-softmax along ``axis``: log q_k = z_k - a - log Σ_j e^(z_j - a), a = max_j z_j."""
    logits, out_dtype = _floating(logits, axis)
    shift, top = _shift(logits)
    with numpy.errstate(invalid="ignore"):
        ...  # hole: log_softmax
    return numpy.moveaxis(log_probs, -1, axis).astype(out_dtype, copy=False)


def cross_entropy(logits, target, reduction="none"):
    """Cross-entropy -Σ_i y_i log q_i of each row of ``logits`` against ``target``.

    ``target``: integer class labels of shape ``logits.shape[:-1]``, or probabilities of the
    shape of ``logits``. ``reduction``: "none" (one loss a row), "mean" or "sum".
    """
    logits, out_dtype, labels, target = _prepare(logits, target, reduction)
    shift, top = _shift(logits)
    with numpy.errstate(invalid="ignore"):
        if labels is not None:  # y one-hot at the labels: Σ_i y_i f_i = f_c, Σ_i y_i = 1
            ...  # hole: cross_entropy_labels
        else:
            ...  # hole: cross_entropy
    return _reduce(loss[..., 0], reduction, out_dtype)


def cross_entropy_grad(logits, target, reduction="none"):
    """Gradient of :func:`cross_entropy` with respect to the logits, shaped like them:
    (Σ_i y_i) q_k - y_k, which is q_k - y_k when the target sums to 1; divided by the
    number of rows for reduction="mean"."""
    logits, out_dtype, labels, target = _prepare(logits, target, reduction)
    shift, top = _shift(logits)
    with numpy.errstate(invalid="ignore"):
        if labels is not None:  # y one-hot at the labels: Σ_i y_i f_i = f_c, Σ_i y_i = 1
            ...  # hole: cross_entropy_grad_labels
        else:
            ...  # hole: cross_entropy_grad
    return _scale(grad, reduction, out_dtype)


def cross_entropy_with_grad(logits, target, reduction="none"):
    """``(cross_entropy(...), cross_entropy_grad(...))`` from one log-softmax pass."""
    logits, out_dtype, labels, target = _prepare(logits, target, reduction)
    shift, top = _shift(logits)
    with numpy.errstate(invalid="ignore"):
        if labels is not None:  # y one-hot at the labels: Σ_i y_i f_i = f_c, Σ_i y_i = 1
            ...  # hole: cross_entropy_with_grad_labels
        else:
            ...  # hole: cross_entropy_with_grad
    return _reduce(loss[..., 0], reduction, out_dtype), _scale(grad, reduction, out_dtype)


def cross_entropy_hessian(logits, target):
    """Hessian of :func:`cross_entropy` for each row, shape (..., K, K): entry [..., k, l] is
    ∂²E/∂z_l∂z_k = (Σ_i y_i) q_k (δ_kl - q_l), which is diag(q) - q qᵀ when the target
    sums to 1 (as it does for labels)."""
    logits, out_dtype, labels, target = _prepare(logits, target, "none")
    shift, top = _shift(logits)
    with numpy.errstate(invalid="ignore"):
        if labels is not None:  # y one-hot at the labels: Σ_i y_i = 1
            ...  # hole: cross_entropy_hessian_labels
        else:
            ...  # hole: cross_entropy_hessian
    return hessian.astype(out_dtype, copy=False)


def tempered_cross_entropy_with_grad(logits, target, temperature, reduction="none"):
    """Loss and gradient of the cross-entropy of p = softmax(logits / temperature):
    E_T = -Σ_i y_i log p_i and ∂E_T/∂z_k = ((Σ_i y_i) p_k - y_k) / T."""
    logits, out_dtype, labels, target = _prepare(logits, target, reduction)
    temperature = _number(temperature, "temperature", logits.dtype, 0, numpy.inf, open_low=True)
    logits = numpy.divide(logits, temperature)  # z / T: p is the softmax of z / T
    shift, top = _shift(logits)
    with numpy.errstate(invalid="ignore"):
        if labels is not None:  # y one-hot at the labels: Σ_i y_i f_i = f_c, Σ_i y_i = 1
            ...  # hole: tempered_labels
        else:
            ...  # hole: tempered
    return _reduce(loss[..., 0], reduction, out_dtype), _scale(grad, reduction, out_dtype)


def weighted_cross_entropy_with_grad(logits, target, weight, reduction="none"):
    """Loss and gradient of the class-weighted cross-entropy E_w = -Σ_i w_i y_i log q_i:
    ∂E_w/∂z_k = q_k Σ_i w_i y_i - w_k y_k. ``weight`` has one non-negative entry a class.

    reduction="mean" divides by the total weight of the rows' classes, Σ_n w_(c_n), for
    integer labels (as PyTorch does), and by the number of rows for probabilities. When that
    total is 0 (every label's class has weight 0), the loss and its gradient are both NaN,
    as in PyTorch."""
    logits, out_dtype, labels, target = _prepare(logits, target, reduction)
    weight = _weights(weight, logits)
    if labels is not None:
        target = _one_hot(labels, logits)  # the weighted sums need whole rows
    shift, top = _shift(logits)
    with numpy.errstate(invalid="ignore"):
        ...  # hole: weighted
    loss = loss[..., 0]
    if reduction == "none":
        return loss.astype(out_dtype, copy=False), grad.astype(out_dtype, copy=False)
    if reduction == "sum":
        return out_dtype.type(loss.sum()), grad.astype(out_dtype, copy=False)
    total = loss.size if labels is None else numpy.sum(weight[labels])
    with numpy.errstate(invalid="ignore", divide="ignore"):
        grad /= total  # a total weight of 0 makes the gradient NaN (0/0), and the loss:
        value = loss.sum() / total  # both NaN, as in PyTorch
    return out_dtype.type(value), grad.astype(out_dtype, copy=False)


def smoothed_cross_entropy_with_grad(logits, labels, epsilon, reduction="none"):
    """Loss and gradient of the cross-entropy against the label-smoothed target
    y'_k = (1 - ε) δ_kc + ε/K of integer ``labels``: ∂E'/∂z_k = q_k - y'_k, 0 <= ε <= 1."""
    logits, out_dtype, labels, target = _prepare(logits, labels, reduction)
    if labels is None:
        raise ValueError("labels: label smoothing takes integer class labels of shape "
                         "logits.shape[:-1]")
    epsilon = _number(epsilon, "epsilon", logits.dtype, 0, 1)
    ...  # hole: smoothed_target
    shift, top = _shift(logits)
    with numpy.errstate(invalid="ignore"):
        ...  # hole: smoothed
    return _reduce(loss[..., 0], reduction, out_dtype), _scale(grad, reduction, out_dtype)


def sigmoid_binary_cross_entropy_with_grad(logits, target, reduction="none"):
    """Loss and gradient of the binary cross-entropy of one sigmoid a class (multi-label):
    E_b = -Σ_i (y_i log σ_i + (1 - y_i) log(1 - σ_i)) for each row, ∂E_b/∂z_k = σ_k - y_k.

    ``target`` has the logits' shape, with entries in [0, 1]. The loss of a row sums over
    its classes, and reduction="mean" averages over rows (PyTorch's BCEWithLogitsLoss
    averages over every entry: that is this mean divided by K). Unlike the softmax losses,
    an infinite logit is not a mask here: it gives NaN."""
    logits, out_dtype, labels, target = _prepare(logits, target, reduction)
    if labels is not None or (target.size and target.max() > 1):
        raise ValueError("target: binary cross-entropy takes one target in [0, 1] a class, "
                         "of the logits' shape")
    with numpy.errstate(over="ignore", invalid="ignore"):
        ...  # hole: sigmoid_bce
    return _reduce(loss[..., 0], reduction, out_dtype), _scale(grad, reduction, out_dtype)


def linear_cross_entropy_with_grad(inputs, weight, bias, target, reduction="mean"):
    """Cross-entropy of the logits z = W x + b of a linear layer, and its gradients with
    respect to the weights (K, D) and the biases (K,): ∂E/∂W_kd = (q_k - y_k) x_d and
    ∂E/∂b_k = q_k - y_k for each row, summed ("sum") or averaged ("mean") over the rows.

    ``inputs``: (..., D); ``weight``: (K, D); ``bias``: (K,); ``target`` as for
    :func:`cross_entropy`. Returns ``(loss, grad_weight, grad_bias)``."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum' for a layer's gradients, not {reduction!r}")
    rows = numpy.shape(inputs)[:-1]
    # inputs as (N, D), one row an example; float16 is computed in float32
    inputs, weight, bias, out_dtype = _layer(inputs, weight, bias)
    target = numpy.asarray(target)
    if target.shape[:len(rows)] == rows:
        target = target.reshape((-1,) + target.shape[len(rows):])  # one row an example, too
    ...  # hole: linear_logits
    loss, grad = cross_entropy_with_grad(logits, target, reduction)
    ...  # hole: linear_grads
    return (out_dtype.type(loss), grad_weight.astype(out_dtype, copy=False),
            grad_bias.astype(out_dtype, copy=False))


def softmax_jacobian(logits):
    """Jacobian of the softmax of each row, shape (..., K, K): entry [..., i, k] is
    ∂q_i/∂z_k = q_i (δ_ik - q_k)."""
    logits, out_dtype = _floating(logits)
    shift, top = _shift(logits)
    with numpy.errstate(invalid="ignore"):
        ...  # hole: softmax_jacobian
    return jacobian.astype(out_dtype, copy=False)


#: The holes of each public function, in the order they appear.
HOLES = {
    "softmax": ("softmax",),
    "log_softmax": ("log_softmax",),
    "cross_entropy": ("cross_entropy_labels", "cross_entropy"),
    "cross_entropy_grad": ("cross_entropy_grad_labels", "cross_entropy_grad"),
    "cross_entropy_with_grad": ("cross_entropy_with_grad_labels", "cross_entropy_with_grad"),
    "cross_entropy_hessian": ("cross_entropy_hessian_labels", "cross_entropy_hessian"),
    "tempered_cross_entropy_with_grad": ("tempered_labels", "tempered"),
    "weighted_cross_entropy_with_grad": ("weighted",),
    "smoothed_cross_entropy_with_grad": ("smoothed_target", "smoothed"),
    "sigmoid_binary_cross_entropy_with_grad": ("sigmoid_bce",),
    "linear_cross_entropy_with_grad": ("linear_logits", "linear_grads"),
    "softmax_jacobian": ("softmax_jacobian",),
}
