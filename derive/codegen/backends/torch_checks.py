"""The argument checks, layouts, reductions and custom operators of generated PyTorch modules,
as real, importable Python (emitted into a module by :mod:`.emit`; torch is needed only where a
generated module runs).

A loss is a ``torch.library.custom_op`` (:func:`_custom_op`): its forward returns the reduced
loss, the gradient of the rows' sum with respect to the input, computed in the same pass, and
the number the mean divides by (1 for "none" and "sum"), so that the backward scales the
gradient once, by the incoming gradient over that number; ``register_fake``
gives their shapes, so ``torch.compile(fullgraph=True)`` traces it as one node; its backward
scales the saved gradient by the incoming one, through a second operator whose own backward
says that there is no second derivative (:func:`_scale_grad`)."""
import math

try:
    import torch
except ImportError:  # emitted as source; only a generated module needs torch
    torch = None


def _custom_op(name):
    """A decorator: the function as the custom operator ``_NAMESPACE::name`` of the module that
    defines it (found, not defined again, where a module of the same code made it before)."""
    def register(forward):
        namespace = forward.__globals__.get("_NAMESPACE")
        if torch is None or namespace is None:  # the template, not a generated module
            return forward
        found = getattr(getattr(torch.ops, namespace), name, None)
        if found is None:
            op = torch.library.custom_op(f"{namespace}::{name}", forward, mutates_args=())
            op.register_fake(_fake)
            op.register_autograd(_backward, setup_context=_setup)
            found = getattr(getattr(torch.ops, namespace), name)
        return found.default
    return register


def _fake(input, target, *rest):
    """The shapes of a loss operator's outputs: the loss (one a row for reduction="none", else
    one number), the gradient, shaped like the input, and the mean's divisor."""
    rows = input.shape[:1] + input.shape[2:] if input.dim() > 1 else ()
    return (input.new_empty(rows if rest[-1] == "none" else ()), input.new_empty(input.shape),
            input.new_empty((), dtype=torch.float64))


def _setup(ctx, inputs, output):
    ctx.save_for_backward(output[1], output[2])
    ctx.set_materialize_grads(False)  # no zeros as big as the input for the unused outputs
    ctx.reduction, ctx.ndim = inputs[-1], inputs[0].dim()
    # None for each input but the first, a list of them for a list of tensors (as autograd
    # sees the inputs: a list of numbers is one input)
    ctx.others = tuple([None] * len(x) if isinstance(x, (list, tuple)) and all(
        isinstance(t, torch.Tensor) for t in x) else None for x in inputs[1:])


def _backward(ctx, grad_loss, grad_grad, grad_count):
    """The saved gradient times the incoming one (over the mean's divisor); the target and
    the values get none."""
    grad, count = ctx.saved_tensors
    if grad_loss is None:  # only the gradient or the divisor was used: neither has one
        return (None, *ctx.others)
    if ctx.reduction == "none" and ctx.ndim > 1:
        grad_loss = grad_loss.unsqueeze(1)  # one a row: along the classes on dim 1
    elif ctx.reduction == "mean":
        grad_loss = grad_loss / count
    return (_scale_grad()(grad_loss, grad), *ctx.others)


def _with_grad(outputs, reduction):
    """A loss operator's ``(loss, gradient of the reduced loss)``."""
    loss, grad, count = outputs
    return loss, (grad / count).to(grad.dtype) if reduction == "mean" else grad


def _scale_grad():
    """The operator ``derive_runtime::scale_grad``: the incoming gradient times the saved one.
    It has no second derivative: its backward raises, so that double backward says so instead
    of leaving out the second-order term."""
    found = getattr(torch.ops.derive_runtime, "scale_grad", None)
    if found is None:
        def scale_grad(grad_loss: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
            return torch.mul(grad, grad_loss.to(grad.dtype))
        op = torch.library.custom_op("derive_runtime::scale_grad", scale_grad, mutates_args=())
        op.register_fake(lambda grad_loss, grad: torch.empty_like(grad))
        op.register_autograd(_no_second_derivative)
        found = torch.ops.derive_runtime.scale_grad
    return found.default


def _no_second_derivative(ctx, grad):
    raise RuntimeError("derive's generated losses have no second derivative: double backward "
                       "(create_graph=True, then backward again) is not supported")


def _reduction(reduction):
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be one of 'none', 'mean', 'sum', not {reduction!r}")
    return reduction


def _rows_of(x, dtype):
    """``x`` (classes on dim 1, or on dim 0 for one example) as (rows, K) in ``dtype``."""
    if x.dim() == 1:
        x = x.unsqueeze(0)
    elif x.dim() > 2:
        x = x.movedim(1, -1).reshape(-1, x.shape[1])
    return x.to(dtype)


def _compute_dtype(input):
    if not isinstance(input, torch.Tensor) or not input.is_floating_point():
        raise ValueError("input must be a floating-point tensor")
    if input.dim() == 0:
        raise ValueError("input must have a class dimension, not be a scalar")
    if input.shape[1 if input.dim() > 1 else 0] == 0:
        raise ValueError("input has an empty class dimension")
    return torch.float32 if input.dtype in (torch.float16, torch.bfloat16) else input.dtype


def _prepare(input, target, labels_only=False):
    """The logits as (rows, K), classes last, in the dtype they are computed in (float32 for
    float16 and bfloat16), and the target: ``(labels, None)`` for class indices, one a row
    with a trailing dimension of 1, or ``(None, probabilities)`` laid out as the logits."""
    dtype = _compute_dtype(input)
    logits = _rows_of(input, dtype)
    rows = input.shape[:1] + input.shape[2:] if input.dim() > 1 else ()
    if not isinstance(target, torch.Tensor):
        raise ValueError("target must be a tensor of class indices or of probabilities")
    if target.is_floating_point():
        if labels_only:
            raise ValueError(f"target: this loss uses the label c, so give class indices of "
                             f"shape {tuple(rows)}, not probabilities")
        if target.shape != input.shape:
            raise ValueError(f"target: probabilities must have the input's shape "
                             f"{tuple(input.shape)}, not {tuple(target.shape)}")
        probs = _rows_of(target, dtype)
        if not bool(torch.all((probs >= 0) & torch.isfinite(probs))):
            raise ValueError("target: probabilities must be finite and not negative")
        return logits, None, probs
    if target.shape != rows or target.dtype == torch.bool or target.is_complex():
        raise ValueError(f"target of shape {tuple(target.shape)} and dtype {target.dtype} fits "
                         f"neither class indices of shape {tuple(rows)} nor probabilities of "
                         f"shape {tuple(input.shape)}")
    labels = target.reshape(-1, 1).long()
    if labels.numel() and not bool(torch.all((labels >= 0) & (labels < logits.shape[-1]))):
        raise ValueError(f"target: class indices must lie in 0..{logits.shape[-1] - 1}")
    return logits, labels, None


def _finish(loss, grad, input, reduction, total=None):
    """The loss of each row reduced, the gradient of their sum in the input's layout and dtype,
    and the divisor of the mean: the number of rows, or ``total``, for reduction="mean", else 1."""
    rows, classes = math.prod(input.shape) // input.shape[1 if input.dim() > 1 else 0], \
        input.shape[1 if input.dim() > 1 else 0]
    loss = loss.expand(rows, 1).reshape(input.shape[:1] + input.shape[2:]
                                        if input.dim() > 1 else ())
    grad = grad.expand(rows, classes)
    count = torch.ones((), dtype=torch.float64)
    if reduction == "sum":
        loss = loss.sum()
    elif reduction == "mean":
        count = torch.as_tensor(rows if total is None else total, dtype=torch.float64)
        loss = loss.sum() / count
    if input.dim() == 1:
        grad = grad.reshape(input.shape)
    elif input.dim() > 2:
        grad = grad.reshape(input.shape[:1] + input.shape[2:] + (classes,)).movedim(-1, 1)
    grad = grad.to(input.dtype).contiguous()
    if grad.data_ptr() == input.data_ptr():  # an operator's output may not be its input
        grad = grad.clone()
    return loss.to(input.dtype).clone(), grad, count.to(device=input.device).clone()


def _number(value, name, low, high, open_low=False):
    """A real parameter as a float, inside [low, high] (or (low, high])."""
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a real number, not {value!r}")
    value = float(value)
    if not (-math.inf < value < math.inf and (low < value if open_low else low <= value)
            and value <= high):
        raise ValueError(f"{name} must lie in {'(' if open_low else '['}{low:g}, {high:g}], "
                         f"not {value!r}")
    return value


def _inside(value, intervals):
    """Whether the number ``value`` is finite and lies in one of ``intervals``."""
    return -math.inf < value < math.inf and any(
        (low is None or (value >= low if closed_low else value > low))
        and (high is None or (value <= high if closed_high else value < high))
        for low, high, closed_low, closed_high in intervals)


def _arguments(values, scalars, arrays, domains):
    """The loss's keyword values as (the scalars, checked against their domains, as floats;
    the per-class arrays, as tensors), in the operator's order."""
    unknown = sorted(set(values) - set(scalars) - set(arrays))
    if unknown:
        raise ValueError(f"unknown value {unknown[0]!r}: this loss takes "
                         f"{', '.join(scalars + arrays) or 'no values'}")
    missing = [name for name in scalars + arrays if name not in values]
    if missing:
        raise ValueError(f"missing value for {', '.join(missing)}")
    numbers = []
    for name in scalars:
        value = values[name]
        if isinstance(value, torch.Tensor) and value.dim() == 0:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a real number, not {value!r}")
        if not _inside(float(value), domains[name][0]):
            raise ValueError(f"{name} must be {domains[name][1]}, not {value!r}")
        numbers.append(float(value))
    tensors = []
    for name in arrays:
        if not isinstance(values[name], torch.Tensor) or values[name].is_complex():
            raise ValueError(f"{name} must be a real tensor, one entry a class")
        tensors.append(values[name])
    return numbers, tensors


def _values(scalars, arrays, logits, input, names, domains):
    """The scalars as 0-dimensional tensors, and each per-class array (of shape (K,) or the
    input's) laid out as the logits, its entries checked against their domains."""
    out = [torch.as_tensor(value, dtype=torch.float64) for value in scalars]
    for name, array in zip(names, arrays):
        if array.shape == input.shape and input.dim() > 1:
            array = _rows_of(array, logits.dtype)
        elif array.shape == logits.shape[-1:]:
            array = array.to(device=logits.device, dtype=logits.dtype)
        else:
            raise ValueError(f"{name} must have shape (K,) = ({logits.shape[-1]},) or the "
                             f"input's shape {tuple(input.shape)}, not {tuple(array.shape)}")
        intervals, words = domains[name]
        inside = torch.zeros(array.shape, dtype=torch.bool, device=array.device)
        for low, high, closed_low, closed_high in intervals:
            part = torch.isfinite(array)
            if low is not None:
                part &= (array >= low) if closed_low else (array > low)
            if high is not None:
                part &= (array <= high) if closed_high else (array < high)
            inside |= part
        if not bool(torch.all(inside)):
            raise ValueError(f"each entry of {name} must be {words}")
        out.append(array)
    return out


def _weights(weight, logits):
    """Class weights: a tensor of one non-negative finite entry a class, as the logits."""
    if not isinstance(weight, torch.Tensor) or weight.shape != logits.shape[-1:]:
        raise ValueError(f"weight must be a tensor of shape ({logits.shape[-1]},)")
    weight = weight.to(device=logits.device, dtype=logits.dtype)
    if not bool(torch.all((weight >= 0) & torch.isfinite(weight))):
        raise ValueError("weight: class weights must be finite and not negative")
    return weight

