"""One side of a line of a person's own working, read into an expression of the model.

The grammars are the loss's (:mod:`derive.parse.grammar`) with what working adds: derivatives
(``\\nabla_{z_i} X``, ``\\frac{\\partial E}{\\partial z_k}``, ``\\frac{\\partial}{\\partial
z_k} X``, ``\\partial_{z_k} X``, ``\\frac{d}{dz_k} X``; ``d(E)/d(z[k])`` and ``diff(E, z[k])``
in the text form), the Kronecker delta (``\\delta_{ik}``, ``delta(i, k)``), the indicator
(``\\mathbb{1}(y = i)``, ``\\mathbbm{1}\\{i = k\\}``, ``[i = k]``) and sums that leave a term out
(``\\sum_{i \\neq k}``).  The builder is the loss's, with free indices allowed (i, j, k, l, and
the label), the author's names mapped onto the model (``--let``), and names the working has
defined replaced by their definitions.  Nothing is evaluated.
"""
from __future__ import annotations

from lark import Token, Tree
import re

from sympy import Derivative, Expr, Indexed, KroneckerDelta, Sum, Symbol

from .. import model
from ..errors import ParseError
from ..parse import MAX_DEPTH, MAX_LENGTH, _located, _scan, _unexpected_character, \
    _unexpected_token
from ..parse import names
from ..parse.build import Builder, Located, depth, index_symbol
from .printed import PrintedForm

#: The letters a free index may be (the class of a one-hot target is c, or the label's name).
FREE = ("i", "j", "k", "l", "n", "m", "d", "g")
#: What a name given to ``--let`` may mean: the model's names.
MEANINGS = {"q": "the softmax", "y": "the target", "z": "the logits", "sigma": "the sigmoid",
            "w": "the class weights", "K": "the number of classes", "E": "the cross-entropy"}


#: The model's names that the loss's builder does not take, but working does.
_SCALARS = {"E": model.E, "T": model.T, "eps": model.epsilon, "E'": model.E_ls,
            "N": model.N, "D": model.D, "L": model.L}
_LOSSES = {"T": model.E_T, "w": model.E_w, "b": model.E_b, "lin": model.E_lin}
#: The model's arrays, and how many indices each takes: a batch's Z, Y and Q, and a linear
#: layer's W, x and b, besides p and y'.
_ARRAYS = {"p": (model.p, 1), "y'": (model.y_ls, 1), "ell": (model.ell, 1), "x": (model.x, 1),
           "b": (model.b, 1), "Z": (model.Z, 2), "Y": (model.Y, 2), "Q": (model.Q, 2),
           "W": (model.W, 2)}
#: Names that mean something in working that the loss's builder does not know.
RESERVED = frozenset({"T", "eps", "ell"})
_CALLIGRAPHIC = re.compile(r"\\mathcal\s*\{\s*([A-Za-z])\s*\}\Z")


def defined_name(head: str) -> str:
    """The name a line's left side stands for: ``\\mathcal{L}`` and ℒ are calL, the name
    derive gives a loss of your own."""
    head = head.strip()
    match = _CALLIGRAPHIC.match(head)
    if match:
        return "cal" + match.group(1)
    return "calL" if head == "\u2112" else head


_VARIABLES = (model.z, model.q, model.p, model.sig, model.Z, model.W, model.b, model.x)
#: The named matrices of the Hessian and of a linear layer, by what their printed entry holds.
_MATRICES = (("diag", model.diag_q), ("y", model.outer_grad), ("q", model.outer_q))
class Notation:
    """The author's names: ``let`` maps a name onto one of the model's (``S`` → ``q``),
    ``label`` is the name of the class of a one-hot target (read as c), and ``defined`` holds
    what the working itself has defined (``Loss := -\\log q_y``)."""

    def __init__(self, let: dict[str, str] | None = None, label: str | None = None):
        self.let = dict(let or {})
        self.label = label
        self.defined: dict[str, Expr] = {}

    def meaning(self, name: str) -> str:
        return self.let.get(name, name)


class WorkingBuilder(PrintedForm, Builder):
    """The loss's builder, for a side of a line of working."""

    def __init__(self, form: str, notation: Notation):
        super().__init__(form)
        self.notation = notation

    # -- names -------------------------------------------------------------------------------
    def plain(self, name: str, node, bound: tuple) -> Expr:
        if name in self.notation.defined:
            return self.notation.defined[name]
        name = self.notation.meaning(name)
        if name in _SCALARS:
            return _SCALARS[name]
        if name == self.notation.label:
            self.fail(f"{name} is the label (the class of the one-hot target): use it as an "
                      f"index, as in {self._index_example(name)}", node)
        if len(name) > 1 and names.command_name("\\" + name) is None:
            self.fail(f"unknown name {name}: define it on a line of its own ({name} := ...), "
                      f"or say what it is with --let {name}=E", node)
        return super().plain(name, node, bound)

    def indexed(self, name: str, name_node, indices: list, bound: tuple) -> Expr:
        name = self.notation.meaning(name)
        if name == "delta":
            letters = [letter for letter, _ in indices]
            if len(letters) == 1 and letters[0] and len(letters[0]) == 2:
                letters = list(letters[0])
            if len(letters) != 2 or not all(letters):
                self.fail("the Kronecker delta takes two indices, as in \\delta_{ik}", name_node)
            return KroneckerDelta(*(self.index(letter, name_node, bound) for letter in letters))
        indices = [(letter, where) for letter, where in indices  # E_{\mathrm{lin}}
                   if not (isinstance(where, Token) and where.type == "MATHRM")]
        if name == "E" and len(indices) == 1 and indices[0][0] in _LOSSES:
            return _LOSSES[indices[0][0]]
        label = self.notation.label
        indices = [("c" if letter == label else letter, where) for letter, where in indices]
        if name in _ARRAYS:
            base, rank = _ARRAYS[name]
            if len(indices) == 1 and indices[0][0] and len(indices[0][0]) == rank:
                indices = [(letter, indices[0][1]) for letter in indices[0][0]]  # Z_mk
            if len(indices) != rank or not all(letter and len(letter) == 1
                                               for letter, _ in indices):
                self.fail(f"{name} takes {rank} ind{'ex' if rank == 1 else 'ices'}, a single "
                          "letter each", name_node)
            return base[tuple(self.index(letter, where, bound) for letter, where in indices)]
        if name not in ("z", "y", "q", "sigma", "w") and names.command_name("\\" + name) is None:
            self.fail(f"unknown array {name}: say what it is with --let {name}=q (or y, z, "
                      "sigma, w)", name_node)
        return super().indexed(name, name_node, indices, bound)

    def command(self, token: Token) -> str:
        return "ell" if token.value == "\\ell" else super().command(token)

    def summed(self, body_node, letters: list, bound: tuple, node) -> Expr:
        """The loss's sum, each index running to its own extent: n and m over the N examples
        of a batch, d and g over the D inputs of a linear layer, the others over the K
        classes."""
        total = super().summed(body_node, letters, bound, node)
        return Sum(total.function, *((index, low, model.EXTENT.get(index, high))
                                     for index, low, high in total.limits))

    def upper(self, letter: str, upper: str, node) -> None:
        """Refuse a sum over ``letter`` that does not run to its extent (K, N or D)."""
        extent = str(model.EXTENT.get(index_symbol(letter), model.K))
        if self.notation.meaning(upper) != extent:
            hint = (f" (if {upper} is the number of classes, say so with --let {upper}=K)"
                    if extent == "K" and upper.isalpha() and upper != upper.lower() else "")
            self.fail(f"a sum over {letter} runs from 1 to {extent}{hint}", node)

    def _func(self, node, bound):
        """``\\log x``, and ``log(x)`` written without the backslash."""
        token, argument = node.children
        return self.function(token.value.lstrip("\\"), self.build(argument, bound), node)

    def _calligraphic(self, node, bound):
        token = node.children[0]
        name = defined_name(token.value)
        if name not in self.notation.defined:
            self.fail(f"{token.value} is not defined: write its definition first "
                      f"({token.value} = ...)", token)
        return self.notation.defined[name]

    def _matrix_entry(self, node, bound):
        """An entry of a named matrix: [diag(q)]_kl, [q qᵀ]_kl, [(q - y) xᵀ]_kd."""
        token = node.children[0]
        value = token.value.replace("\\operatorname{diag}", "diag")
        base = next(matrix for mark, matrix in _MATRICES if mark in value.split("]")[0])
        letters = [ch for ch in value.split("]")[-1] if ch.isalpha()]
        return base[tuple(self.index(letter, token, bound) for letter in letters)]

    def _symbol(self, node, bound):
        if not any(isinstance(t, Token) and t.type == "PRIME" for t in node.children):
            return super()._symbol(node, bound)
        head = node.children[0]
        name = self.command(head) if head.type == "COMMAND" else head.value
        sub = node.children[-1] if isinstance(node.children[-1], Tree) else None
        items = [t for t in sub.children if isinstance(t, Token)] if sub is not None else []
        return self.primed(name + "'", [(t.value if t.value.isalpha() else None, t)
                                        for t in items], head, bound)

    def primed(self, name: str, indices: list, node, bound) -> Expr:
        """y'_i (the smoothed target) and E' (its cross-entropy)."""
        if not indices and name in _SCALARS:
            return _SCALARS[name]
        if indices and name in _ARRAYS:
            return self.indexed(name, node, indices, bound)
        self.fail(f"unknown name {name}: derive knows y' (the smoothed target) and E' (its "
                  "cross-entropy)", node)

    def index(self, letter: str, node, bound: tuple) -> Symbol:
        if letter == self.notation.label:
            letter = "c"
        for index in bound:
            if index.name == letter:
                return index
        if letter == "c":
            return model.c
        if letter in FREE:
            return index_symbol(letter)
        self.fail(f"the index {letter} is not bound by a sum: a free index is one of "
                  f"{', '.join(FREE)}, or the label (--label)", node)

    def logit(self, node, bound) -> Indexed:
        """The variable of a derivative: a logit z_i, or an entry of the softmax or of the
        sigmoid (for the chain rule)."""
        return self.variable(self.build(node, bound), node)

    def variable(self, variable: Expr, node) -> Indexed:
        if not (isinstance(variable, Indexed) and variable.base in _VARIABLES):
            self.fail("a derivative is taken with respect to a logit, as in \\partial z_k (or "
                      "to q_i, p_i or \\sigma_i, for the chain rule)", node)
        return variable

    # -- what working adds -------------------------------------------------------------------
    def _derivative(self, node, bound):
        operator, variable, operand = node.children
        if isinstance(variable, Tree) and variable.data == "wrt":
            variable = variable.children[0]
        return Derivative(self.build(operand, bound), self.logit(variable, bound))

    def _derivative_of(self, node, bound):
        """∂E/∂z_k, and ∂²E/∂z_l∂z_k (by z_k first)."""
        parts = [child for child in node.children if isinstance(child, Tree)]
        expr, variables = parts[0], parts[1:]
        if self.form == "text" and variables[0].data != "indexed":
            self.fail("a derivative is taken with respect to a logit, as in d(E)/d(z[k])",
                      variables[0])
        return Derivative(self.build(expr, bound),
                          *(self.logit(v, bound) for v in reversed(variables)))

    def _indicator(self, node, bound):
        first, second = (t for t in node.children if isinstance(t, Token) and t.type == "NAME")
        return KroneckerDelta(self.index(first.value, first, bound),
                              self.index(second.value, second, bound))

    def _call(self, node, bound):
        name, arglist = node.children
        args = arglist.children if arglist is not None else []
        if name.value == "diff":
            if len(args) != 2:
                self.fail("diff takes two arguments: diff(E, z[k])", name)
            return Derivative(self.build(args[0], bound), self.logit(args[1], bound))
        if name.value == "delta":
            letters = [a.children[0].value if isinstance(a, Tree) and a.data == "name" else None
                       for a in args]
            if len(letters) != 2 or None in letters:
                self.fail("delta takes two indices: delta(i, k)", name)
            return KroneckerDelta(*(self.index(letter, arg, bound)
                                    for letter, arg in zip(letters, args)))
        return super()._call(node, bound)

    def _sum(self, node, bound):
        _, limits, body = node.children
        if limits.data == "sum_except":
            letter, skip = _except(limits, self)
            inner = self.summed(body, [(letter.value, letter)], bound, node)
            index = inner.limits[0][0]
            return model.SumExcept(inner.function, (index, 1, model.K),
                                   self.index(skip.value, skip, bound))
        if limits.data == "sum_in":
            tokens = [t for t in limits.children if isinstance(t, Token)]
            letter = tokens[0]
            lower = next(t for t in tokens if t.type == "NUMBER")
            upper = next(t for t in tokens[1:] if t.type in ("NAME", "LETTER"))
            if lower.value != "1" or self.notation.meaning(str(upper)) != "K":
                self.fail("a sum must run over 1..K, as in \\sum_{j \\in \\{1, \\dots, K\\}}",
                          limits)
            return self.summed(body, [(letter.value, letter)], bound, node)
        if limits.data == "sum_range":
            letter, lower, upper = limits.children
            if lower.value != "1":
                self.fail("a sum must run from 1, as in \\sum_{i=1}^{K}", limits)
            self.upper(letter.value, upper.value, limits)
            return self.summed(body, [(letter.value, letter)], bound, node)
        return super()._sum(node, bound)


def _except(limits, builder):
    """The index and the index left out of ``\\sum_{i \\neq k}`` or of
    ``\\sum_{\\substack{i=1\\\\ i \\neq k}}^{K}``."""
    tokens = [t for t in limits.children if isinstance(t, Token)]
    found = [t for t in tokens if t.type == "NAME"] + [t for t in tokens if t.type == "LETTER"]
    numbers = [t for t in tokens if t.type == "NUMBER"]
    if any(t.type == "SUBSTACK" for t in tokens):
        if found[1].value != found[0].value:
            builder.fail(f"the sum runs over {found[0]} but leaves out a value of {found[1]}",
                         found[1])
        found = found[:1] + found[2:]
    letter, skip, upper = found[0], found[1], found[2:]
    if any(n.value != "1" for n in numbers):
        builder.fail("a sum must run from 1 to K, as in \\sum_{i \\neq k}", limits)
    for u in upper:
        builder.upper(letter.value, u.value, u)
    return letter, skip


def _nesting(source: str) -> None:
    """Refuse brackets nested more than MAX_DEPTH deep (the renderer's text is Unicode, so the
    loss's scan of characters does not apply)."""
    level = 0
    for pos, char in enumerate(source):
        level += char in "([{"
        level = max(0, level - (char in ")]}"))
        if level > MAX_DEPTH:
            raise _located(source, f"brackets are nested too deeply: more than {MAX_DEPTH}", pos)


def side(source: str, kind: str, notation: Notation) -> Expr:
    """The expression of one side, ``source`` (a line of the input with everything but this
    side blanked out, so that a column is the input's); :class:`ParseError` if unreadable."""
    if len(source) > MAX_LENGTH:
        raise ParseError(f"the line is too long: {len(source)} characters, at most "
                         f"{MAX_LENGTH}")
    if not source.strip():
        raise ParseError("an empty side of an equation")
    if kind == "printed":
        _nesting(source)
    else:
        _scan(source, kind)
    from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedToken

    from ..parse.grammar import parser
    try:
        tree = parser(kind, working=True).parse(source)
    except UnexpectedCharacters as e:
        raise _unexpected_character(source, e.pos_in_stream, kind) from None
    except UnexpectedToken as e:
        raise _unexpected_token(source, e) from None
    except LarkError as e:  # pragma: no cover - LALR raises the two above
        raise ParseError(f"syntax error: {str(e).splitlines()[0]}") from None
    if depth(tree) > MAX_DEPTH:
        raise ParseError(f"the line is nested too deeply: more than {MAX_DEPTH} levels")
    try:
        return WorkingBuilder(kind, notation).build(tree, ())
    except Located as e:
        raise _located(source, e.message, e.pos) from None
    except RecursionError:
        raise ParseError("the line is nested too deeply") from None
    except ParseError:
        raise
    except Exception as e:  # SymPy refusing something: still one line, never a traceback
        raise ParseError(f"cannot build this: {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from None
