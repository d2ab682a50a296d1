"""Users' own losses, read from text or from LaTeX into SymPy expressions of the model.

The **text form** is Python-like::

    -sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)      # focal loss
    sum((q[i] - y[i])**2, i)                       # Brier score
    -log(q[c])                                     # cross-entropy of a label c

``z[i]`` is a logit, ``y[i]`` a target, ``q[i]`` the softmax of z, ``sigma[i]`` the sigmoid of
z_i, ``w[i]`` a class weight and ``K`` the number of classes; any other ``name[i]`` is a
constant array of one entry per class and any other name a positive scalar parameter.
``sum(EXPR, i)`` is Σ_{i=1}^{K} EXPR; an index is a single lower-case letter that a sum binds,
or ``c``, the class of a one-hot target (see :func:`uses_class`).  ``log``, ``exp``, ``sqrt``,
``+ - * /``, ``**`` (or ``^``), numbers (``2``, ``0.25``, ``1e-3``, kept exact) and parentheses
complete the language.

The **LaTeX form** is what :func:`derive.render.printers.latex` prints for such a loss
(``-\\sum_{i=1}^{K} y_{i} \\left(1 - q_{i}\\right)^{\\gamma} \\log q_{i}``), and reads back to
the same expression.  :func:`parse` takes either: text with a backslash, ``_{``, ``^{`` or
``$`` is LaTeX.

Both are read by LALR(1) grammars (:mod:`derive.parse.grammar`) and built into SymPy objects
directly (:mod:`derive.parse.build`); nothing of the text is ever evaluated.  Every problem is a
:class:`~derive.errors.ParseError` whose first line names it.
"""
from __future__ import annotations

import re
import unicodedata

from ..errors import ParseError
from .names import ALIASES

#: The longest text a loss may be, the deepest its operations may nest, and the most
#: brackets that may be open at once.
MAX_LENGTH = 2000
MAX_DEPTH = 40

_TEXT_SCAN = re.compile(r"""
    (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<quote>["'])
  | (?P<space>\s+)
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)
_OPENERS, _CLOSERS = "([{", ")]}"
_KEYWORD_PROBLEMS = {
    "for": "comprehensions are not allowed",
    "async": "comprehensions are not allowed",
    "import": "imports are not allowed",
    "from": "imports are not allowed",
}
#: How the parser's terminals read in a message.
_EXPECTED = {"RPAR": "')'", "RSQB": "']'", "RBRACE": "'}'", "COMMA": "','", "EQUAL": "'='",
             "LEQ": "\\leq", "_RIGHT": "\\right", "DOUBLE_BACKSLASH": "\\\\",
             "$END": "the end of the loss"}
#: Terminals that start an operand, and terminals of operators.
_OPERANDS = {"NAME", "NUMBER", "LPAR", "LSQB", "LBRACE", "COMMAND", "FUNC", "FRAC", "SQRT",
             "SUM", "MATHRM", "_LEFT", "LETTER", "DIGIT", "SUBITEM", "SUBSTACK"}
_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "POW", "CDOT", "CIRCUMFLEX", "UNDERSCORE"}


def form(text: str) -> str:
    """"latex" for text with a backslash, ``_{``, ``^{`` or ``$`` in it (none of which the
    text form has), "text" otherwise."""
    return "latex" if any(mark in text for mark in ("\\", "_{", "^{", "$")) else "text"


def parse(text: str):
    """The loss ``text`` (the text form, or the LaTeX derive prints) as a SymPy expression of
    the model: ``parse("-log(q[c])") == -log(derive.model.q[derive.model.c])``.

    Raises :class:`~derive.errors.ParseError` for anything it cannot read."""
    if not isinstance(text, str):
        raise ParseError(f"a loss is text, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ParseError(f"the loss is too long: {len(text)} characters, at most {MAX_LENGTH}")
    kind = form(text)
    source = _unwrap(text) if kind == "latex" else text
    if not source.strip():
        raise ParseError("the loss is empty")
    _scan(source, kind)

    from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

    from .build import Builder, Located, depth
    from .grammar import parser
    try:
        tree = parser(kind).parse(source)
    except UnexpectedCharacters as e:
        raise _unexpected_character(source, e.pos_in_stream, kind) from None
    except UnexpectedToken as e:
        raise _unexpected_token(source, e) from None
    except UnexpectedInput as e:  # pragma: no cover - LALR raises the two above
        raise _located(source, "syntax error", getattr(e, "pos_in_stream", None)) from None
    except LarkError as e:  # pragma: no cover
        raise ParseError(f"syntax error: {str(e).splitlines()[0]}") from None
    if depth(tree) > MAX_DEPTH:
        raise ParseError(f"the loss is nested too deeply: more than {MAX_DEPTH} levels")
    try:
        return Builder(kind).build(tree, ())
    except Located as e:
        raise _located(source, e.message, e.pos) from None
    except RecursionError:
        raise ParseError("the loss is nested too deeply") from None
    except Exception as e:  # SymPy refusing something: still one line, never a traceback
        raise ParseError(f"cannot build this loss: {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from None


def parameters(expr) -> list:
    """The scalar parameters of a parsed loss (γ, α, ...), sorted by name."""
    from sympy import Dummy, IndexedBase, Symbol
    labels = {base.label for base in expr.atoms(IndexedBase)}
    return sorted((s for s in expr.free_symbols if isinstance(s, Symbol)
                   and not isinstance(s, Dummy) and s not in labels and not s.is_integer),
                  key=str)


def arrays(expr) -> list:
    """The constant arrays of a parsed loss, one entry per class: the class weights ``w`` and
    arrays of the user's own such as ``pi`` (not z, y, q or sigma), sorted by name."""
    from sympy import Indexed

    from .. import model
    own = {e.base for e in expr.atoms(Indexed)} - {model.z, model.y, model.q, model.sig}
    return sorted(own, key=str)


def uses_class(expr) -> bool:
    """Whether a parsed loss uses ``c``, the class of a one-hot target (then it needs the
    assumption that the target is one-hot at c)."""
    from .. import model
    return expr.has(model.c)


# -- checks before parsing ---------------------------------------------------------------------

def _unwrap(text: str) -> str:
    """LaTeX without the math delimiters around it ($...$, $$...$$, \\[...\\], \\(...\\)),
    blanked out so that the columns stay where they are."""
    stripped = text.strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
        if len(stripped) >= len(left) + len(right) and stripped.startswith(left) \
                and stripped.endswith(right):
            start = text.index(left)
            end = text.rindex(right)
            return (text[:start] + " " * len(left) + text[start + len(left):end]
                    + " " * len(right) + text[end + len(right):])
    return text


def _scan(text: str, kind: str) -> None:
    """Refuse what no loss has, before the parser sees it: strings, attribute access, Python
    keywords, names starting with '_', characters other than ASCII and brackets nested more
    than MAX_DEPTH deep."""
    open_brackets = 0
    for pos, char in enumerate(text):
        if char in _OPENERS:
            open_brackets += 1
            if open_brackets > MAX_DEPTH:
                raise _located(text, f"brackets are nested too deeply: more than {MAX_DEPTH}",
                               pos)
        elif char in _CLOSERS:
            open_brackets = max(0, open_brackets - 1)
        elif not char.isascii():
            raise _located(text, _non_ascii(char, kind), pos)
    if kind != "text":
        return
    previous = None
    for match in _TEXT_SCAN.finditer(text):
        group, value, pos = match.lastgroup, match.group(), match.start()
        if group == "space":
            continue
        if group == "quote":
            raise _located(text, "strings are not allowed", pos)
        if group == "other" and value == "." and previous is not None and (
                previous[0] in ("name", "number") or previous[1] in (")", "]")):
            raise _located(text, "attribute access is not allowed", pos)
        if group == "name":
            if value in _KEYWORD_PROBLEMS:
                raise _located(text, _KEYWORD_PROBLEMS[value], pos)
            if value.startswith("_"):
                raise _located(text, f"names starting with '_' are not allowed ('{value}')", pos)
            import keyword
            if keyword.iskeyword(value) and value != "lambda":  # the Greek letter
                raise _located(text, f"'{value}' is a Python keyword and cannot be used in a "
                               "loss", pos)
        if group == "other" and value in "{}":
            raise _located(text, "braces are not allowed in the text form: write ( ) to group",
                           pos)
        previous = (group, value)


def _non_ascii(char: str, kind: str) -> str:
    name = unicodedata.name(char, "")
    hint = ""
    if name.startswith("GREEK") and "LETTER" in name:
        letter = name.split()[-1].lower()
        letter = letter.capitalize() if "CAPITAL" in name else letter
        letter = ALIASES.get(letter, letter)
        hint = f": write {letter}" if kind == "text" else f": write \\{letter}"
    elif char in "\u2212\u2013":
        hint = ": write - for minus"
    elif char in "\u00d7\u00b7\u22c5":
        hint = ": write * for times" if kind == "text" else ": write \\cdot for times"
    return f"only ASCII characters are allowed, not {char!r}{hint}"


# -- messages ----------------------------------------------------------------------------------

def _located(text: str, problem: str, pos: int | None) -> ParseError:
    """A ParseError whose first line is ``problem`` and where it is, then the text (or the
    part of a long line around the place) and a caret under the place."""
    if pos is None:
        return ParseError(problem)
    pos = max(0, min(pos, len(text)))
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    line = text[start:end if end >= 0 else len(text)].replace("\t", " ").replace("\r", " ")
    column = pos - start + 1
    where = f"column {column}" if "\n" not in text.strip("\n") else \
        f"line {text.count(chr(10), 0, pos) + 1}, column {column}"
    width = 72
    first = 0
    if len(line) > width:
        first = max(0, min(column - 1 - width // 2, len(line) - width))
    shown = line[first:first + width]
    if first > 0:
        shown = "..." + shown
    if first + width < len(line):
        shown += "..."
    caret = column - first + (3 if first > 0 else 0)
    return ParseError(f"{problem} (at {where})\n  {shown}\n  {' ' * (caret - 1)}^", column)


def _unexpected_character(text: str, pos: int, kind: str) -> ParseError:
    char = text[pos] if pos < len(text) else ""
    if kind == "latex" and char == "\\":
        match = re.match(r"\\[A-Za-z]+", text[pos:])
        what = match.group() if match else text[pos:pos + 2]
        return _located(text, f"syntax error: unexpected {what}", pos)
    return _located(text, f"syntax error: unexpected character {char!r}", pos)


def _unexpected_token(text: str, error) -> ParseError:
    token = error.token
    accepts = getattr(error, "accepts", None) or getattr(error, "expected", None) or ()
    expected = _expected(accepts)
    if token.type == "$END":
        problem = "syntax error: the loss ends too early"
        pos = len(text.rstrip())
    else:
        problem = f"syntax error: unexpected {token.value!r}"
        pos = token.start_pos
    return _located(text, problem + (f" (expected {expected})" if expected else ""), pos)


def _expected(terminals) -> str:
    """What the parser expected, in words: an operand, or a few closers and operators."""
    terminals = set(terminals)
    if terminals & _OPERANDS:
        return "a number, a name or an opening bracket"
    words = sorted(_EXPECTED[name] for name in terminals if name in _EXPECTED)
    if terminals - set(_EXPECTED) - _OPERATORS:
        return ""
    if terminals & _OPERATORS:
        words.append("an operator")
    if not words or len(words) > 4:
        return ""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]

__all__ = ["parse", "parameters", "arrays", "uses_class", "form", "ParseError", "MAX_LENGTH",
           "MAX_DEPTH"]
