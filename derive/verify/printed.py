"""The nodes of what derive's text renderer prints (``derive text``), read back as a person's
working: ``Σ[i=1..K] y_i·log(q_i)``, ``∂E/∂z_k``, ``∂/∂z_k (…)``, ``∂²E/∂z_l∂z_k``, ``δ_ik``,
``e^z_i``, ``x²``, ``y'_i``, ``Eₗᵢₙ``.

:class:`PrintedForm` is a part of :class:`~derive.verify.read.WorkingBuilder`, which gives it
``fail``, ``plain``, ``indexed``, ``primed``, ``index``, ``function``, ``power``, ``summed``,
``upper``, ``variable`` and ``build``.
"""
from __future__ import annotations

import unicodedata

from lark import Token, Tree
from sympy import Derivative, Expr, Integer, S

from .. import model

#: Letters the text renderer prints for the model's names.
_GREEK_NAMES = {"\u03b5": "eps", "\u03c3": "sigma", "\u03bb": "lambda", "\u2113": "ell",
                "\u2112": "calL"}


#: Unicode subscript letters, as the renderer prints a word below a name (Eₗᵢₙ).
_SUBSCRIPTS = {ch: unicodedata.name(ch).split()[-1].lower()
               for ch in map(chr, [*range(0x2090, 0x209d), *range(0x1d62, 0x1d6b)])
               if unicodedata.name(ch, "").startswith("LATIN SUBSCRIPT SMALL LETTER")}


def _greek(letter: str) -> str:
    """The name of a Greek letter: γ is gamma, Γ is Gamma (another character is itself)."""
    words = unicodedata.name(letter, "").split()
    if words[:1] != ["GREEK"] or "LETTER" not in words:
        return letter
    name = words[-1].lower()
    return name.capitalize() if "CAPITAL" in words else name


class PrintedForm:
    """The node handlers of derive's printed text."""

    def _printed_name(self, node, bound):
        return self.printed(node.children[0], bound)

    def printed(self, token: Token, bound) -> Expr:
        """A name as the text renderer prints it: ``q_i``, ``δ_ik``, ``E_T``, ``y'_k``, ``γ``."""
        head, _, sub = token.value.partition("_")
        while head and head[-1] in _SUBSCRIPTS:  # Eₗᵢₙ
            head, sub = head[:-1], _SUBSCRIPTS[head[-1]] + sub
        prime = head.endswith("'")
        head = head.rstrip("'")
        name = _GREEK_NAMES.get(head) or (_greek(head) if len(head) == 1 and not head.isascii()
                                          else head)
        if prime:
            return self.primed(name + "'", [(sub, token)] if sub else [], token, bound)
        if not sub:
            return S.Exp1 if name == "e" else self.plain(name, token, bound)
        if sub.isdigit():
            return self.plain(name + sub, token, bound)
        return self.indexed(name, token, [(sub, token)], bound)

    def _printed_func(self, node, bound):
        token, argument = node.children
        return self.function(token.value, self.build(argument, bound), node)

    def _printed_power(self, node, bound):
        base, _, exponent = node.children
        return self.power(self.printed(base, bound), self.printed(exponent, bound), node)

    def _square(self, node, bound):
        return self.power(self.build(node.children[0], bound), Integer(2), node)

    def _printed_sum(self, node, bound):
        head, body = node.children
        letter, rest = head.value[2], head.value[3:-1]
        if rest.startswith("\u2260"):
            inner = self.summed(body, [(letter, head)], bound, node)
            return model.SumExcept(inner.function, (inner.limits[0][0], 1, model.K),
                                   self.index(rest[1], head, bound))
        if not rest.startswith("=1.."):
            self.fail("a sum must run from 1, as in \u03a3[i=1..K]", head)
        self.upper(letter, rest[len("=1.."):], head)
        return self.summed(body, [(letter, head)], bound, node)

    def _printed_derivative(self, node, bound):
        """``∂E/∂z_k``, ``∂/∂z_k (…)`` and ``∂²E/∂z_l∂z_k`` (the last variable first)."""
        order = 2 if node.children[0].value.endswith("\u00b2") else 1
        trees = [child for child in node.children if isinstance(child, Tree)]
        wrts = [t for t in trees if t.data == "wrt"]
        expr = next(t for t in trees if t.data != "wrt")
        if len(wrts) != order:
            self.fail(f"a derivative of order {order} needs {order} variable"
                      f"{'s' if order > 1 else ''} after the /", node)
        variables = [self.variable(self.printed(w.children[1], bound), w) for w in wrts]
        return Derivative(self.build(expr, bound), *reversed(variables))
