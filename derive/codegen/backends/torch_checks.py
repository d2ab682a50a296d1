"""The argument checks, layouts, reductions and custom operators of generated PyTorch modules,
as real, importable Python (emitted into a module by :mod:`.emit`; torch is needed only where a
generated module runs).

A loss is a ``torch.library.custom_op`` (:func:`_custom_op`): its forward returns the reduced
loss, its gradient with respect to the input, computed in the same pass (for reduction="mean"
already divided by the number the mean divides by), and that number (1 for "none" and "sum");
``register_fake`` gives their shapes, so ``torch.compile(fullgraph=True)`` traces it as one
node; its backward scales the saved gradient by the incoming one (and skips that pass where
the incoming one is the 1 of ``loss.backward()``), through a second operator whose own backward
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
            op.register_autograd(_backward, setup_context=lambda ctx, inputs, output: _setup(
                ctx, inputs, output, forward))
            found = getattr(getattr(torch.ops, namespace), name)
        return found.default
    return register


def _fake(input, target, *rest):
    """The shapes of a loss operator's outputs: the loss (one a row for reduction="none", else
    one number), the gradient, shaped like the input, and the mean's divisor."""
    rows = input.shape[:1] + input.shape[2:] if input.dim() > 1 else ()
    return (input.new_empty(rows if rest[-1] == "none" else ()), input.new_empty(input.shape),
            input.new_empty((), dtype=torch.float64))


def _setup(ctx, inputs, output, forward):
    """What the backward needs.  Eagerly, the gradient is kept on ``ctx``, not saved for
    backward, so that the backward can hand it to autograd without a copy (see
    :func:`_backward`); where the graph is being compiled, it is saved as usual."""
    ctx.set_materialize_grads(False)  # no zeros as big as the input for the unused outputs
    ctx.reduction, ctx.ndim = inputs[-1], inputs[0].dim()
    ctx.eager = type(output[1]) is torch.Tensor and not torch.compiler.is_compiling()
    if ctx.eager:
        # detached: the output itself would tie ctx to its own node, and reach autograd with
        # a history that makes it copy the gradient instead of taking it over
        ctx.grad, ctx.forward, ctx.inputs = output[1].detach(), forward, inputs
    else:
        ctx.save_for_backward(output[1])
    # None for each input but the first, a list of them for a list of tensors (as autograd
    # sees the inputs: a list of numbers is one input)
    ctx.others = tuple([None] * len(x) if isinstance(x, (list, tuple)) and all(
        isinstance(t, torch.Tensor) for t in x) else None for x in inputs[1:])


def _backward(ctx, grad_loss, grad_grad, grad_count):
    """The kept gradient times the incoming one; the target and the values get none.

    Eagerly, the kept gradient is given up after the first backward pass: returned as it is
    where the incoming gradient is the 1 that ``loss.backward()`` starts from (on the CPU, with
    no graph made of the backward), so that no pass over it is spent; a later pass through a
    graph kept with ``retain_graph=True`` computes it again from the inputs."""
    if grad_loss is None:  # only the gradient or the divisor was used: neither has one
        return (None, *ctx.others)
    if not ctx.eager:
        grad, = ctx.saved_tensors
    elif ctx.grad is not None:
        grad, ctx.grad = ctx.grad, None
    else:
        with torch.no_grad():
            grad = ctx.forward(*ctx.inputs)[1]
    if ctx.eager and torch.is_grad_enabled():  # create_graph: the product's backward says
        grad = grad.detach().requires_grad_()  # that there is no second derivative
    if ctx.reduction == "none" and ctx.ndim > 1:
        grad_loss = grad_loss.unsqueeze(1)  # one a row: along the classes on dim 1
    elif (ctx.eager and grad_loss.dim() == 0 and grad_loss.device.type == "cpu"
          and not torch.is_grad_enabled() and bool(grad_loss == 1)):
        return (grad, *ctx.others)
    return (_scale_grad()(grad_loss, grad), *ctx.others)


def _with_grad(outputs, reduction):
    """A loss operator's ``(loss, gradient of the reduced loss)``."""
    loss, grad, count = outputs
    return loss, grad


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


def _count(input, total=None):
    """The divisor of the mean: the number of rows (every entry of the input but its classes'
    axis), or ``total``, as a 0-dimensional float64 tensor."""
    rows = math.prod(input.shape) // input.shape[1 if input.dim() > 1 else 0]
    return torch.as_tensor(rows if total is None else total, dtype=torch.float64)


def _scale(input, reduction, total=None):
    """The number that makes the gradient of the rows' summed losses that of the reduced loss,
    which the lines take into their factors of one value a row: 1 over the divisor of the mean
    (:func:`_count`) for reduction="mean", 1 for "sum" and "none"; in the dtype the logits are
    computed in, as the other numbers the lines use are (an operation given a number of
    another dtype first makes a converted copy of it)."""
    if reduction != "mean":
        return torch.ones((), dtype=_compute_dtype(input))
    return (1 / _count(input, total)).to(_compute_dtype(input))


def _finish(loss, grad, input, reduction, total=None, shared=()):
    """The loss of each row reduced, the gradient (already that of the reduced loss: the lines
    multiply it by :func:`_scale`) in the input's layout and dtype, and the divisor of the mean
    (1 for "sum" and "none").  ``shared`` are the other tensors the gradient may be (a target of
    probabilities, an array): an output that is an input, or a view of one, is copied."""
    rows, classes = math.prod(input.shape) // input.shape[1 if input.dim() > 1 else 0], \
        input.shape[1 if input.dim() > 1 else 0]
    borrowed = grad._base is not None  # a view of an input (the target, say), not a new array
    loss = loss.expand(rows, 1).reshape(input.shape[:1] + input.shape[2:]
                                        if input.dim() > 1 else ())
    grad = grad.expand(rows, classes)
    count = torch.ones((), dtype=torch.float64)
    if reduction == "sum":
        loss = loss.sum()
    elif reduction == "mean":
        count = _count(input, total)
        loss = loss.sum() / count
    if input.dim() == 1:
        grad = grad.reshape(input.shape)
    elif input.dim() > 2:
        grad = grad.reshape(input.shape[:1] + input.shape[2:] + (classes,)).movedim(-1, 1)
    grad = grad.to(input.dtype).contiguous()
    if borrowed or any(isinstance(t, torch.Tensor) and grad.data_ptr() == t.data_ptr()
                       for t in (input, *shared)):
        grad = grad.clone()  # an operator's output may not be an input, nor a view of one
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
    """The scalars as 0-dimensional tensors in the logits' dtype, and each per-class array (of
    shape (K,) or the input's) laid out as the logits, its entries checked against their
    domains."""
    out = [torch.as_tensor(value, dtype=logits.dtype) for value in scalars]
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

