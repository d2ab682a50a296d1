"""The linear layer's contractions as lines of the IR.

A linear layer's logits z_k = Σ_g W_kg x_g + b_k and its gradients, summed over the rows, are
products of indexed arrays summed over indices: each becomes one ``einsum`` line, whose
subscripts are the indices' first letters (``n`` for the rows), printed by the backend.
"""
from __future__ import annotations

from sympy import Add, Eq, Expr, IndexedBase, Mul, Sum

from ..model import W, b, k, q, x, y
from ..render.printers import TextPrinter
from .ir import FULL, Line, LoweringError, Ref

_LOGIT_GRAD = IndexedBase("dz")  # ∂E/∂z_k for each row, as cross_entropy_with_grad returns it
_LAYER_NAMES = {W: "weight", x: "inputs", b: "bias", _LOGIT_GRAD: "grad"}
_BATCHED = {x, _LOGIT_GRAD}  # arrays with one entry a row, n: (N, K) or (N, D)


def _einsum(name: str, product: Expr, summed: set, over_rows: bool, meaning: Expr) -> Line:
    """The line ``name = einsum(...)`` of a product of indexed arrays, summing the indices
    ``summed`` (and the rows, with ``over_rows``); each index is named by its first letter."""
    factors = Mul.make_args(product)
    batched = any(f.base in _BATCHED for f in factors)
    inputs = ",".join(("n" if f.base in _BATCHED else "") + "".join(str(s)[0] for s in f.indices)
                      for f in factors)
    kept = dict.fromkeys(str(s)[0] for f in factors for s in f.indices if s not in summed)
    output = ("n" if batched and not over_rows else "") + "".join(kept)
    return Line(name, "einsum", tuple(Ref(_LAYER_NAMES[f.base]) for f in factors), FULL,
                meaning, params=(f"{inputs}->{output}",))


def layer_lines(layer: Eq, grads: list[tuple[str, Expr]]) -> tuple[list[Line], list[Line]]:
    """The lines computing a linear layer's logits (``layer``: z_i = Σ_g W_ig x_g + b_i), and
    its gradients summed over the rows, with the text of their comments."""
    logits = layer.rhs
    (summed,), bias = [t for t in Add.make_args(logits) if isinstance(t, Sum)], \
        [t for t in Add.make_args(logits) if not isinstance(t, Sum)]
    (index, _, _), = summed.limits
    product = _einsum("weighted", summed.function, {index}, False, summed)
    first = [product, Line("logits", "add", (Ref("weighted"), Ref(_LAYER_NAMES[bias[0].base])),
                           FULL, Eq(layer.lhs, logits))]
    second = []
    for name, result in grads:
        product = result.xreplace({q[k] - y[k]: _LOGIT_GRAD[k]})
        if not product.has(_LOGIT_GRAD):
            raise LoweringError(f"the layer's gradient {result} is not a product of the logits' "
                                "gradient q_k - y_k")
        second.append(_einsum(name, product, set(), True, result))
    return first, second


def comment(line: Line) -> str:
    """What a line of the layer computes."""
    text = TextPrinter().doprint
    if line.name == "logits":
        return f"{text(line.meaning.lhs)} = {text(line.meaning.rhs)}"
    if line.name == "weighted":
        return text(line.meaning)
    return f"the rows' sum of {text(line.meaning)}"
