"""The nodes particular to each input form, as the builder reads them: numbers, names, calls
and sums of the text form, and the symbols, commands, fractions, roots and sums of LaTeX.

:class:`Forms` is a part of :class:`~derive.parse.build.Builder`, which gives it ``fail``,
``plain``, ``indexed``, ``function``, ``power``, ``summed``, ``factors`` and ``build``.
"""
from __future__ import annotations

import re

from lark import Token, Tree
from sympy import Mul, Rational, S

from .. import model
from . import names

MAX_LITERAL_DIGITS = 30      # digits of a number written in the text form
MAX_LITERAL_EXPONENT = 30    # |n| in 1e-n
MAX_LATEX_DIGITS = 100       # digits of a number in LaTeX (derive prints 1e-30 as 31 digits)

_TEXT_NUMBER = re.compile(r"(\d*)(?:\.(\d*))?(?:[eE]([+-]?)(\d+))?\Z")
_MODEL_BASES = {"z": model.z, "y": model.y, "q": model.q, "sigma": model.sig, "w": model.w}


class Forms:
    """The node handlers of the two forms (``_number``, ``_call``, ``_symbol``, ``_sum``, ...)."""

    # -- text form -------------------------------------------------------------------------
    def _number(self, node, bound):
        token = node.children[0]
        if self.form == "latex":
            digits = token.value.replace(".", "")
            if len(digits) > MAX_LATEX_DIGITS:
                self.fail(f"the number has more than {MAX_LATEX_DIGITS} digits", token)
            whole, _, fraction = token.value.partition(".")
            return Rational(int(whole + fraction), 10 ** len(fraction))
        match = _TEXT_NUMBER.match(token.value)
        whole, fraction, sign, power = match.group(1), match.group(2) or "", match.group(3), \
            match.group(4)
        if len(whole + fraction) > MAX_LITERAL_DIGITS:
            self.fail(f"the number has more than {MAX_LITERAL_DIGITS} digits", token)
        shift = 0
        if power is not None:
            if len(power.lstrip("0")) > 2 or int(power) > MAX_LITERAL_EXPONENT:
                self.fail(f"the exponent of the number is too large: write at most "
                          f"1e{MAX_LITERAL_EXPONENT} or 1e-{MAX_LITERAL_EXPONENT}", token)
            shift = -int(power) if sign == "-" else int(power)
        numerator, denominator = int(whole + fraction or "0"), 10 ** len(fraction)
        if shift >= 0:
            numerator *= 10 ** shift
        else:
            denominator *= 10 ** -shift
        return Rational(numerator, denominator)

    def _name(self, node, bound):
        token = node.children[0]
        return self.plain(token.value, token, bound)

    def _indexed(self, node, bound):
        name, arglist = node.children
        indices = [(arg.children[0].value if isinstance(arg, Tree) and arg.data == "name"
                    else None, arg) for arg in arglist.children]
        return self.indexed(name.value, name, indices, bound)

    def _call(self, node, bound):
        name, arglist = node.children
        args = arglist.children if arglist is not None else []
        fn = name.value
        if fn == "sum":
            if len(args) != 2:
                self.fail("sum takes two arguments: sum(EXPR, i)", name)
            letter_node = args[1]
            letter = letter_node.children[0].value if isinstance(letter_node, Tree) and \
                letter_node.data == "name" else None
            return self.summed(args[0], [(letter, letter_node)], bound, node)
        if fn in ("log", "exp", "sqrt"):
            if len(args) != 1:
                self.fail(f"{fn} takes one argument: {fn}(x)", name)
            return self.function(fn, self.build(args[0], bound), node)
        if fn in names.NOT_SMOOTH:
            self.fail(f"{fn} is not allowed: it is not differentiable everywhere, and derive "
                      "needs a loss that is smooth in the logits", name)
        if fn in _MODEL_BASES:
            self.fail(f"{fn} is an array, not a function: index it with brackets, as in "
                      f"{fn}[i]", name)
        hint = names.FUNCTION_HINTS.get(fn)
        self.fail(f"unknown function '{fn}': the functions are log, exp, sqrt and sum"
                  + (f" ({hint})" if hint else ""), name)

    # -- LaTeX form ------------------------------------------------------------------------
    def _symbol(self, node, bound):
        head = node.children[0]
        sub = node.children[-1] if isinstance(node.children[-1], Tree) else None
        if head.type == "MATHRM":
            head = node.children[1]
        name = self.command(head) if head.type == "COMMAND" else head.value
        if sub is None:
            if name == "e" and head.type == "NAME":
                return S.Exp1
            if name == "sigma":
                self.fail("sigma is an array (the sigmoid of z): give it an index, as in "
                          "\\sigma_{i}", head)
            return self.plain(name, head, bound)
        items = [token for token in sub.children if isinstance(token, Token)]
        if name == "e" and head.type == "NAME":
            self.fail("e is Euler's number and takes no index", head)
        if len(items) == 1 and items[0].value.isdigit():
            if name in _MODEL_BASES or name == "K":
                self.fail("an index must be a single lower-case letter bound by a sum (or c), "
                          "as in q_{i}", items[0])
            return self.plain(name + items[0].value, head, bound)
        return self.indexed(name, head, [(token.value if token.value.isalpha() else None,
                                          token) for token in items], bound)

    def _func(self, node, bound):
        token, argument = node.children
        return self.function(token.value[1:], self.build(argument, bound), node)

    def _frac(self, node, bound):
        return Mul(*self.factors(node, bound))

    def _sqrt(self, node, bound):
        return self.function("sqrt", self.build(node.children[1], bound), node)

    def _root(self, node, bound):
        _, degree_node, radicand = node.children
        degree = self.build(degree_node, bound)
        if not (degree.is_Integer and degree >= 2):
            self.fail("the degree of a root must be a whole number from 2 up", degree_node)
        return self.power(self.build(radicand, bound), Rational(1, int(degree)), node)

    def _sum(self, node, bound):
        _, limits, body = node.children
        if limits.data == "sum_range":
            letter, lower, upper = limits.children
            if lower.value != "1" or upper.value != "K":
                self.fail("a sum must run from 1 to K, as in \\sum_{i=1}^{K}", limits)
            letters = [(letter.value, letter)]
        elif limits.data == "sum_bare":
            letters = [(limits.children[0].value, limits.children[0])]
        else:
            letters = []
            for srange in (c for c in limits.children if isinstance(c, Tree)):
                lower, _, letter, _, upper = srange.children
                if lower.value != "1" or upper.value != "K":
                    self.fail("a sum must run from 1 to K, as in "
                              "\\substack{1 \\leq i \\leq K}", srange)
                letters.append((letter.value, letter))
        return self.summed(body, letters, bound, node)
