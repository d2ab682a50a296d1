"""The linear layer's contractions as NumPy source lines.

A linear layer's logits z_k = Σ_g W_kg x_g + b_k and its gradients, summed over the rows, are
products of indexed arrays summed over indices: each becomes one ``numpy.einsum`` call whose
subscripts are the indices' first letters (``n`` for the rows).
"""
from __future__ import annotations

from sympy import Add, Eq, Expr, IndexedBase, Mul, Sum

from .model import W, b, k, q, x, y
from .render.printers import TextPrinter

# The linear layer: products of indexed arrays, summed over bound indices and over the rows.
_LOGIT_GRAD = IndexedBase("dz")  # ∂E/∂z_k for each row, as cross_entropy_with_grad returns it
_LAYER_NAMES = {W: "weight", x: "inputs", b: "bias", _LOGIT_GRAD: "grad"}
_BATCHED = {x, _LOGIT_GRAD}  # arrays with one entry a row, n: (N, K) or (N, D)


def _einsum(product: Expr, summed: set, over_rows: bool) -> str:
    """``numpy.einsum`` of a product of indexed arrays, summing the indices ``summed`` (and the
    rows, with ``over_rows``); each index is named by its first letter."""
    factors = Mul.make_args(product)
    batched = any(f.base in _BATCHED for f in factors)
    inputs = ",".join(("n" if f.base in _BATCHED else "") + "".join(str(s)[0] for s in f.indices)
                      for f in factors)
    kept = dict.fromkeys(str(s)[0] for f in factors for s in f.indices if s not in summed)
    output = ("n" if batched and not over_rows else "") + "".join(kept)
    args = ", ".join(_LAYER_NAMES[f.base] for f in factors)
    return f'numpy.einsum("{inputs}->{output}", {args})'


def layer_lines(layer: Eq, grads: list[tuple[str, Expr]]) -> tuple[list[str], list[str]]:
    """The lines computing a linear layer's logits (``layer``: z_i = Σ_g W_ig x_g + b_i), and
    its gradients summed over the rows."""
    text = TextPrinter()
    logits = layer.rhs
    (summed,), bias = [t for t in Add.make_args(logits) if isinstance(t, Sum)], \
        [t for t in Add.make_args(logits) if not isinstance(t, Sum)]
    (index, _, _), = summed.limits
    first = [f"logits = {_einsum(summed.function, {index}, False)} + {_LAYER_NAMES[bias[0].base]}"
             f"  # {text.doprint(layer.lhs)} = {text.doprint(logits)}"]
    second = []
    for name, result in grads:
        product = result.xreplace({q[k] - y[k]: _LOGIT_GRAD[k]})
        second.append(f"{name} = {_einsum(product, set(), True)}"
                      f"  # the rows' sum of {text.doprint(result)}")
    return first, second
