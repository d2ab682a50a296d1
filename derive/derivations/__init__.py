"""Stage 3 of the pipeline: derivations, each a short script of rule applications.

``build(name)`` runs the script and returns the unchecked record; ``derive.derivation(name)``
also checks it.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Callable

from ..errors import UnknownDerivationError

if TYPE_CHECKING:
    from ..records import Derivation

#: name -> (module, one-line description).  Modules are imported only when used.
CATALOGUE: dict[str, tuple[str, str]] = {
    "logsumexp": ("logsumexp", "∂E/∂z_k by rewriting the loss with log-sum-exp"),
    "any-target": ("logsumexp", "∂E/∂z_k = (Σ_i y_i) q_k − y_k for a target that need not sum to 1"),
    "chain": ("chain", "∂E/∂z_k by the chain rule through the softmax Jacobian"),
    "softmax-jacobian": ("jacobian", "∂q_i/∂z_k = q_i(δ_ik − q_k) by the quotient rule"),
    "shift-invariance": ("shift", "softmax(z − a) = softmax(z), and log q_k through log-sum-exp"),
    "hessian": ("hessian", "∂²E/∂z_k∂z_l = (Σy)(q_k δ_kl − q_k q_l), diag(q) − q qᵀ when Σy = 1"),
    "temperature": ("temperature", "softmax at temperature T: ∂E_T/∂z_k = (p_k − y_k) / T"),
    "class-weights": ("weights", "class weights w: ∂E_w/∂z_k = (Σ_i w_i y_i) q_k − w_k y_k"),
    "label-smoothing": ("smoothing", "smoothed target y' = (1 − ε) one-hot + ε/K: q_k − y'_k"),
    "log-sigmoid": ("sigmoid", "log σ_k = −log(1 + e^(−z_k)), log(1 − σ_k) = −log(1 + e^(z_k))"),
    "sigmoid-derivative": ("sigmoid", "∂σ_k/∂z_k = σ_k (1 − σ_k), by the power rule"),
    "sigmoid-bce": ("sigmoid", "one sigmoid a class, binary cross-entropy: ∂E_b/∂z_k = σ_k − y_k"),
    "batch-mean": ("batch", "mean loss of N examples: ∂L/∂Z_mk = (Q_mk − Y_mk) / N"),
    "linear-layer": ("linear", "z = W x + b: ∂E/∂b_k = q_k − y_k, ∂E/∂W_kd = (q_k − y_k) x_d"),
}


def names() -> list[str]:
    return list(CATALOGUE)


def build(name: str) -> Derivation:
    if name not in CATALOGUE:
        raise UnknownDerivationError(
            f"unknown derivation {name!r}; choose one of: {', '.join(CATALOGUE)}")
    module = import_module(f".{CATALOGUE[name][0]}", __name__)
    script: Callable[[], Derivation] = getattr(module, "build_" + name.replace("-", "_"),
                                               getattr(module, "build", None))
    return script()
