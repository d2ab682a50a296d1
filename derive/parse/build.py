"""SymPy objects from a parse tree of either grammar, with every check on the way.

The builder walks the tree from the root down, so that it knows at each index which sums
enclose it: ``q[i]`` is accepted only inside ``sum(..., i)`` (or ``\\sum_{i=1}^{K}``), and the
class ``c`` of a one-hot target anywhere.  Nothing of the text is evaluated: numbers are made
with ``int`` from their digits, names are looked up in the model or made into new symbols, and
SymPy builds the expression from those objects.  Each node's result is checked for what SymPy
may make of it (``1/0`` is ``zoo``, ``sqrt(-1)`` is ``I``, ``(2**64)**64`` a long number).
"""
from __future__ import annotations

from lark import Token, Tree
from sympy import (Abs, Add, Expr, Float, Heaviside, I, Indexed, IndexedBase, Integer, Max, Min, Mul,
                   Piecewise, Pow, Rational, Sum, Symbol, ceiling, exp, floor, log, nan, oo,
                   sign, sqrt, zoo)

from .. import model
from . import names
from .forms import _MODEL_BASES, Forms

#: Limits on what a loss may ask SymPy to build.
MAX_SUMS = 8
MAX_EXPONENT = 64
MAX_NUMBER_BITS = 333        # about 100 decimal digits, for a number SymPy computes

_NOT_SMOOTH = (Abs, sign, Heaviside, Piecewise, Max, Min, floor, ceiling)


class Located(Exception):
    """A problem at a place in the text (``pos`` is an offset, or None)."""

    def __init__(self, message: str, pos: int | None):
        super().__init__(message)
        self.message, self.pos = message, pos


def index_symbol(letter: str) -> Symbol:
    """An index, made as the model makes its own: ``index_symbol("i") == derive.model.i``."""
    return Symbol(letter, integer=True, positive=True)


def _offset(node) -> int | None:
    """Where ``node`` starts in the text."""
    if isinstance(node, Token):
        return node.start_pos
    meta = getattr(node, "meta", None)
    return None if meta is None or meta.empty else meta.start_pos


class Builder(Forms):
    """Builds the SymPy expression of one parse tree (``form`` is "text" or "latex")."""

    def __init__(self, form: str):
        self.form = form
        self.kinds: dict[str, str] = {}
        self.sums = 0

    # -- helpers ---------------------------------------------------------------------------
    def fail(self, message: str, node=None, pos: int | None = None):
        raise Located(message, pos if pos is not None else _offset(node) if node is not None
                      else None)

    def _index_example(self, letter: str = "i") -> str:
        return f"q[{letter}]" if self.form == "text" else f"q_{{{letter}}}"

    def _sum_example(self, letter: str) -> str:
        return f"sum(..., {letter})" if self.form == "text" else \
            f"\\sum_{{{letter}=1}}^{{K}} before it"

    def _kind(self, name: str, kind: str, node) -> None:
        """Remember that ``name`` is used as ``kind``; a name is one thing only."""
        seen = self.kinds.setdefault(name, kind)
        if seen != kind:
            article = {"index": "an index", "array": "an array", "scalar": "a parameter"}
            self.fail(f"'{name}' is used both as {article[seen]} and as {article[kind]}", node)

    def checked(self, expr: Expr, node) -> Expr:
        """``expr``, if it is finite, real and its numbers are of a sensible size."""
        if expr.has(zoo, nan, oo, -oo):
            self.fail("this part has no finite value (a division by zero or the log of 0)",
                      node)
        if expr.has(I) or (expr.is_number and expr.is_extended_real is False):
            self.fail("this part is not a real number (the square root or log of a negative "
                      "number)", node)
        if expr.has(Float):  # never made here; refuse rather than guess
            self.fail("inexact numbers are not allowed", node)
        if expr.has(*_NOT_SMOOTH):  # SymPy makes sqrt(z_c**2) into |z_c|
            self.fail("this part is not differentiable everywhere (SymPy makes it an absolute "
                      "value, a sign or a case distinction)", node)
        for power in expr.atoms(Pow):  # q**64*q**64 is q**128
            if power.exp.is_Number and abs(power.exp) > MAX_EXPONENT:
                self.fail(f"the exponent {power.exp} is too large: a numeric exponent must lie "
                          f"in -{MAX_EXPONENT}..{MAX_EXPONENT}", node)
        for number in (expr, expr.as_coeff_Mul()[0], expr.as_coeff_Add()[0]):
            if isinstance(number, Rational) and max(abs(number.p), number.q).bit_length() \
                    > MAX_NUMBER_BITS:
                self.fail("a number in this part would have more than 100 digits", node)
        return expr

    # -- dispatch --------------------------------------------------------------------------
    def build(self, node, bound: tuple) -> Expr:
        if isinstance(node, Token):
            return self._token(node, bound)
        handler = getattr(self, "_" + node.data, None)
        if handler is None:  # pragma: no cover - every node of both grammars has a handler
            self.fail(f"cannot read this part ({node.data})", node)
        return self.checked(handler(node, bound), node)

    def _token(self, token: Token, bound: tuple) -> Expr:
        """A bare token: an exponent or a subscript written without braces (LaTeX)."""
        if token.type == "DIGIT":
            return Integer(int(token.value))
        if token.type == "LETTER":
            return self.plain(token.value, token, bound)
        if token.type == "COMMAND":
            return self.plain(self.command(token), token, bound)
        self.fail(f"cannot read {token.value!r} here", token)  # pragma: no cover

    # -- shared nodes ----------------------------------------------------------------------
    def _chain(self, node, bound):
        children = node.children
        terms = [self.build(children[0], bound)]
        for op, operand in zip(children[1::2], children[2::2]):
            value = self.build(operand, bound)
            terms.append(value if op.value == "+" else -value)
        return _as_written(terms)

    def _product(self, node, bound):
        return Mul(*self.factors(node, bound))

    def _ratio(self, node, bound):
        return Mul(*self.factors(node, bound))

    def factors(self, node, bound) -> list:
        """The factors of a product, a fraction or a quotient, nested ones included, for one
        ``Mul``: built apart, ``3 (a + b)`` in ``\\frac{3 (a + b)}{c}`` would become
        3a + 3b (SymPy distributes a number over a sum that is its only other factor)."""
        if not isinstance(node, Tree) or node.data not in ("product", "ratio", "frac"):
            return [self.build(node, bound)]
        if node.data == "frac":
            _, numerator, denominator = node.children
            return self.factors(numerator, bound) + self.inverses(denominator, bound)
        if node.data == "ratio":
            numerator, _, denominator = node.children
            return self.factors(numerator, bound) + self.inverses(denominator, bound)
        factors, divide = [], False
        for child in node.children:
            if isinstance(child, Token) and child.type in ("STAR", "SLASH", "CDOT"):
                divide = child.type == "SLASH"
                continue
            factors += self.inverses(child, bound) if divide else self.factors(child, bound)
            divide = False
        return factors

    def inverses(self, node, bound) -> list:
        return [self.inverse(factor, node) for factor in self.factors(node, bound)]

    def _neg(self, node, bound):
        return -self.build(node.children[1], bound)

    def _pos(self, node, bound):
        return self.build(node.children[1], bound)

    def _pow(self, node, bound):
        base_node, exponent_node = node.children[0], node.children[-1]
        base = self.build(base_node, bound)
        exponent = self.build(exponent_node, bound)
        return self.power(base, exponent, node)

    def inverse(self, value: Expr, node) -> Expr:
        if value == 0:
            self.fail("division by zero", node)
        return Pow(value, -1)

    def power(self, base: Expr, exponent: Expr, node) -> Expr:
        if exponent.is_Number:
            if abs(exponent) > MAX_EXPONENT:
                self.fail(f"the exponent {exponent} is too large: a numeric exponent must lie "
                          f"in -{MAX_EXPONENT}..{MAX_EXPONENT}", node)
            if isinstance(base, Rational) and base not in (0, 1, -1):
                bits = max(abs(base.p), base.q).bit_length() * abs(float(exponent))
                if bits > MAX_NUMBER_BITS:
                    self.fail("a number in this part would have more than 100 digits", node)
            if base == 0 and exponent.is_negative:
                self.fail("division by zero", node)
        if base.is_number and base.is_negative and not exponent.is_integer:
            self.fail("this part is not a real number (a negative number to a power that may "
                      "not be whole)", node)
        return Pow(base, exponent)

    def function(self, name: str, argument: Expr, node) -> Expr:
        if name in ("log", "ln"):
            if argument == 0:
                self.fail("the log of 0 has no finite value", node)
            return log(argument)
        if name == "exp":
            return exp(argument)
        return sqrt(argument)

    # -- names -----------------------------------------------------------------------------
    def plain(self, name: str, node, bound: tuple) -> Expr:
        """A name written without an index: K, a parameter, or a mistake."""
        letters = {index.name for index in bound}
        if name == "K":
            return model.K
        if name in letters:
            where = "in brackets" if self.form == "text" else "as a subscript"
            self.fail(f"the index {name} can only be used {where}, as in "
                      f"{self._index_example(name)}", node)
        if name == "c":
            self.fail("c (the class of a one-hot target) can only be used as an index, as in "
                      f"{self._index_example('c')}", node)
        if name == "k":
            self.fail("k is the index of the gradient (dL/dz_k) and cannot appear in the loss",
                      node)
        if name in names.MODEL_ARRAYS:
            self.fail(f"{name} is an array ({names.MODEL_ARRAYS[name]}): give it an index, as "
                      f"in {self._index_example().replace('q', name, 1)}", node)
        if name in names.FUNCTIONS:
            call = "sum(EXPR, i)" if name == "sum" else f"{name}(x)"
            self.fail(f"{name} is a function: call it, as in {call}", node)
        if name == "pi":
            array = "pi[i]" if self.form == "text" else "\\pi_{i}"
            self.fail(f"pi without an index would read as the number 3.14...: write {array} "
                      "for an array of your own, or use another name for a parameter", node)
        if name in names.INDEX_LETTERS:
            self.fail(f"'{name}' is one of the model's index letters "
                      f"({', '.join(names.INDEX_LETTERS)}): a parameter needs another name",
                      node)
        name = names.ALIASES.get(name, name)
        problem = names.problem(name)
        if problem:
            self.fail(problem, node)
        self._kind(name, "scalar", node)
        return Symbol(name, positive=True)

    def indexed(self, name: str, name_node, indices: list, bound: tuple) -> Expr:
        """``name[index]``: an entry of one of the model's arrays or of an array of the user's.

        ``indices`` are (letter, node) pairs; a letter is None where the index is not one."""
        if name == "K":
            self.fail("K is the number of classes and takes no index", name_node)
        if name in ("c", "k") or name in {index.name for index in bound}:
            self.fail(f"'{name}' is an index and cannot have an index of its own", name_node)
        base = _MODEL_BASES.get(name)
        if base is None:
            problem = names.problem(name, array=True)
            if problem:
                self.fail(problem, name_node)
        if len(indices) != 1:
            self.fail(f"{name} takes one index (one entry per class), as in "
                      f"{self._index_example().replace('q', name, 1)}", indices[1][1]
                      if len(indices) > 1 else name_node)
        letter, node = indices[0]
        if letter is None or len(letter) != 1 or not letter.islower() or not letter.isascii():
            self.fail("an index must be a single lower-case letter bound by a sum (or c), as in "
                      f"{self._index_example()}", node)
        index = self.index(letter, node, bound)
        if base is None:
            self._kind(name, "array", name_node)
            base = IndexedBase(name, positive=True)
        return base[index]

    def index(self, letter: str, node, bound: tuple) -> Symbol:
        for index in bound:
            if index.name == letter:
                return index
        if letter == "c":
            self._kind("c", "index", node)
            return model.c
        if letter == "k":
            self.fail("k is the index of the gradient (dL/dz_k) and cannot appear in the loss; "
                      "sum over another letter, or use c for the class of a one-hot target",
                      node)
        self.fail(f"the index {letter} is not bound by a sum: write {self._sum_example(letter)} "
                  "(only c, the class of a one-hot target, may stand alone)", node)

    def summed(self, body_node, letters: list, bound: tuple, node) -> Expr:
        """``Σ_{letter=1}^{K} body`` for each of ``letters`` ((letter, node) pairs; the first
        is the innermost, as SymPy orders the limits of one Sum)."""
        inner = bound
        for letter, where in letters:
            example = "sum(..., i)" if self.form == "text" else "\\sum_{i=1}^{K}"
            if letter is None or len(letter) != 1 or not letter.isascii() \
                    or not letter.islower():
                self.fail("the index of a sum must be a single lower-case letter (not k or c), "
                          f"as in {example}", where)
            if letter == "k":
                self.fail("k cannot be the index of a sum: it is the index of the gradient "
                          "(dL/dz_k)", where)
            if letter == "c":
                self.fail("c cannot be the index of a sum: it is the class of a one-hot target",
                          where)
            if letter in names.MODEL_RESERVED:
                meaning = names.MODEL_RESERVED[letter][0]
                self.fail(f"'{letter}' cannot be the index of a sum: it is {meaning} in derive's "
                          "model", where)
            if letter in {index.name for index in inner}:
                self.fail(f"the index {letter} is already bound by an enclosing sum: nested sums "
                          "need distinct indices", where)
            self._kind(letter, "index", where)
            self.sums += 1
            if self.sums > MAX_SUMS:
                self.fail(f"too many sums: a loss may have at most {MAX_SUMS}", where)
            inner = inner + (index_symbol(letter),)
        body = self.build(body_node, inner)
        limits = [(index, 1, model.K) for index in inner[len(bound):]]
        return Sum(body, *limits)

    def command(self, token: Token) -> str:
        """The name a LaTeX command stands for: ``\\gamma`` is gamma."""
        name = names.command_name(token.value)
        if name is None:
            if token.value in ("\\infty", "\\inf"):
                self.fail("infinity is not allowed", token)
            self.fail(f"unknown LaTeX command {token.value}", token)
        return name


def _as_written(terms: list) -> Expr:
    """The sum of ``terms`` in the order they were written, where each is more than a number
    or a single letter (y_i log σ_i + (1 - y_i) log(1 - σ_i)); SymPy's own order otherwise
    (1 - q_c), and wherever terms would collect."""
    total = Add(*terms)
    if (not isinstance(total, Add) or len(total.args) != len(terms)
            or any(t.is_Atom or isinstance(t, Indexed) or (-t).is_Atom or isinstance(-t, Indexed)
                   for t in terms) or total.args == tuple(terms)):
        return total
    return Add(*terms, evaluate=False)


def depth(tree) -> int:
    """How deeply the operations of ``tree`` nest (computed without recursion)."""
    nesting = {"chain", "product", "neg", "pos", "pow", "ratio", "call", "func", "frac",
               "sqrt", "root", "sum"}
    deepest, stack = 0, [(tree, 0)]
    while stack:
        node, level = stack.pop()
        if not isinstance(node, Tree):
            continue
        level += node.data in nesting
        deepest = max(deepest, level)
        stack.extend((child, level) for child in node.children)
    return deepest

