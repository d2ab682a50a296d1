"""Nilpotent numbers for forward-mode derivatives: a value with the coefficients of ε₁, ε₂, ...
(ε² = 0), and the arithmetic of the expressions the checker evaluates on them."""
from __future__ import annotations

import math
from itertools import count

import numpy as np


class Jet:
    """``Σ_S c_S ε^S`` over sets S of directions (bit masks), with ``ε_d² = 0``.

    ``c_∅`` is the value; the coefficient of a single ε is a first derivative, of ``ε₁ε₂`` a
    mixed second derivative.  Coefficients are arrays that broadcast against each other.
    """

    __slots__ = ("terms",)

    def __init__(self, terms: dict):
        self.terms = terms

    @property
    def value(self):
        return self.terms.get(0, 0.0)


def _terms(x) -> dict:
    return x.terms if isinstance(x, Jet) else {0: x}


def _make(terms: dict):
    if set(terms) <= {0}:
        return terms.get(0, 0.0)
    return Jet(terms)


def add(x, y):
    if not isinstance(x, Jet) and not isinstance(y, Jet):
        return x + y
    out = dict(_terms(x))
    for mask, c in _terms(y).items():
        out[mask] = out[mask] + c if mask in out else c
    return _make(out)


def mul(x, y):
    if not isinstance(x, Jet) and not isinstance(y, Jet):
        return x * y
    out: dict = {}
    for ma, a in _terms(x).items():
        for mb, b in _terms(y).items():
            if ma & mb:
                continue  # ε_d² = 0
            term = a * b
            out[ma | mb] = out[ma | mb] + term if ma | mb in out else term
    return _make(out)


def _compose(x, derivatives):
    """``f(x)`` for a nilpotent ``x``: Σ_m f⁽ᵐ⁾(value) n^m / m!, with ``derivatives(value, m)``
    giving f⁽ᵐ⁾; the series stops when n^m vanishes."""
    if not isinstance(x, Jet):
        return derivatives(x, 0)
    value = x.value
    nil = Jet({m: c for m, c in x.terms.items() if m})
    result, power = derivatives(value, 0), 1.0
    for order in count(1):
        power = mul(power, nil)
        if not isinstance(power, Jet) or not power.terms:
            break
        result = add(result, mul(power, derivatives(value, order) / math.factorial(order)))
    return result


def _exp(v, m):
    return np.exp(v)


def _log(v, m):
    return np.log(v) if m == 0 else (-1) ** (m - 1) * math.factorial(m - 1) / v ** m


def power(base, exponent):
    if isinstance(exponent, Jet):  # b^u = e^{u log b}
        return _compose(mul(exponent, _compose(base, _log)), _exp)
    p = exponent

    def derivatives(v, m):
        coefficient = 1.0
        for r in range(m):
            coefficient = coefficient * (p - r)
        return coefficient * np.power(v, p - m)
    return _compose(base, derivatives)


def _select(condition, x, y):
    """``x`` where ``condition`` holds, else ``y``, coefficient by coefficient."""
    masks = set(_terms(x)) | set(_terms(y))
    tx, ty = _terms(x), _terms(y)
    return _make({m: np.where(condition, tx.get(m, 0.0), ty.get(m, 0.0)) for m in masks})
