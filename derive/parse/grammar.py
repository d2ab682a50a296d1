"""The two grammars of a loss, for lark's LALR(1) parser.

Both grammars are free of conflicts: :func:`conflicts` asks lark for them (it would resolve a
shift/reduce conflict silently, as a shift), and the tests require none.  The parse trees name
their nodes alike where the meaning is alike (``chain``, ``product``, ``neg``, ``pow``,
``number``), and :mod:`derive.parse.build` makes SymPy objects of them.

**Text** is Python-like: ``-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)``.  ``-x**2`` is
-(x**2) and ``**`` (or ``^``) groups to the right, as in Python.  Chains of ``+``/``-`` and of
``*``/``/`` are flat nodes, so the depth of a tree is the depth of nesting of the loss.

**LaTeX** is the family ``derive.render.printers.latex`` prints: implicit multiplication,
``\\cdot``, ``\\frac{a}{b}``, ``a / b c`` (SymPy's folded fraction in an exponent: everything
after the slash is the denominator, and a numerator holds no sum), ``\\left( \\right)``,
``x^{...}``, ``e^{...}``, ``\\log x``, ``\\sqrt{...}``, subscripts ``_{i}``, Greek letters and
``\\sum_{i=1}^{K}``, whose body is the rest of the product it starts
(``\\sum_{i=1}^{K} y_{i} \\log q_{i}``), a leading minus included (``\\sum_{i=1}^{K} - q_{i}``);
a sum (or ``\\log \\sum ...``) can only end a product, as the printer brackets any other.
"""
from __future__ import annotations

from functools import lru_cache

TEXT = r"""
?start: expr

?expr: term
     | term ((PLUS | MINUS) term)+            -> chain
?term: factor
     | factor ((STAR | SLASH) factor)+        -> product
?factor: power
       | MINUS factor                         -> neg
       | PLUS factor                          -> pos
?power: atom
      | atom POW factor                       -> pow
?atom: NUMBER                                 -> number
     | NAME                                   -> name
     | NAME "[" arglist "]"                   -> indexed
     | NAME "(" [arglist] ")"                 -> call
     | "(" expr ")"
arglist: expr ("," expr)*

PLUS: "+"
MINUS: "-"
STAR: "*"
SLASH: "/"
POW: "**" | "^"
NUMBER: /(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
%ignore /[ \t\r\n\f\v]+/
"""

LATEX = r"""
?start: expr

?expr: lead
     | lead ((PLUS | MINUS) lead)+            -> chain
?lead: product
     | MINUS lead                             -> neg
     | PLUS lead                              -> pos
?product: factors
        | items SLASH factors                 -> ratio
?items: item
      | item (CDOT? item)+                    -> product
?factors: items
        | tail
        | item (CDOT? item)* CDOT? tail       -> product

?tail: sum
     | FUNC tail                              -> func
sum: SUM limits lead
?limits: "_" "{" NAME "=" NUMBER "}" "^" upper   -> sum_range
       | "_" "{" NAME "}"                        -> sum_bare
       | "_" LETTER                              -> sum_bare
       | "_" "{" SUBSTACK "{" srange (DOUBLE_BACKSLASH srange)* "}" "}" -> sum_substack
?upper: "{" NAME "}" | LETTER
srange: NUMBER LEQ NAME LEQ NAME

?item: primary
     | primary "^" sup                        -> pow
     | FUNC item                              -> func
?primary: NUMBER                              -> number
        | symbol
        | "(" expr ")"
        | "[" expr "]"
        | "{" expr "}"
        | _LEFT "(" expr _RIGHT ")"
        | _LEFT "[" expr _RIGHT "]"
        | FRAC "{" expr "}" "{" expr "}"      -> frac
        | SQRT "{" expr "}"                   -> sqrt
        | SQRT "[" expr "]" "{" expr "}"      -> root
?sup: "{" expr "}" | LETTER | DIGIT | COMMAND
symbol: (NAME | COMMAND | MATHRM "{" NAME "}") sub?
sub: "_" "{" SUBITEM ("," SUBITEM)* "}"
   | "_" LETTER
   | "_" DIGIT

PLUS: "+"
MINUS: "-"
SLASH: "/"
NUMBER: /\d+(\.\d+)?/
NAME: /[A-Za-z]+/
SUBITEM: /[A-Za-z]+|\d+/
LETTER: /[A-Za-z]/
DIGIT: /\d/
DOUBLE_BACKSLASH: /\\\\/
CDOT.2: /\\(cdot|times)(?![A-Za-z])/
FUNC.2: /\\(log|ln|exp)(?![A-Za-z])/
SUM.2: /\\sum(?![A-Za-z])/
FRAC.2: /\\[dt]?frac(?![A-Za-z])/
SQRT.2: /\\sqrt(?![A-Za-z])/
_LEFT.2: /\\left(?![A-Za-z])/
_RIGHT.2: /\\right(?![A-Za-z])/
MATHRM.2: /\\(mathrm|mathit|operatorname)(?![A-Za-z])/
SUBSTACK.2: /\\substack(?![A-Za-z])/
LEQ.2: /\\leq?(?![A-Za-z])/
COMMAND.1: /\\[A-Za-z]+/
SPACING.3: /\\([,;:! ]|(quad|qquad|limits|displaystyle)(?![A-Za-z]))/
%ignore SPACING
%ignore /[ \t\r\n\f\v~]+/
"""

#: What a person's own working adds to a loss (:mod:`derive.verify`): derivatives, the
#: Kronecker delta and the indicator, and sums that leave a term out.
TEXT_WORKING = TEXT + r"""
%extend ?atom: "d" "(" expr ")" "/" "d" "(" expr ")"      -> derivative_of
"""

LATEX_WORKING = LATEX + r"""
%extend ?tail: diffop wrt lead                   -> derivative
             | DFRAC symbol "}" lead             -> derivative
             | LFRAC expr "}" DDEN symbol "}"    -> derivative_of
%extend ?primary: PFRAC expr "}" "{" PARTIAL symbol "}"            -> derivative_of
                | PFRAC2 expr "}" "{" PARTIAL symbol PARTIAL symbol "}" -> derivative_of
                | INDICATOR "(" NAME "=" NAME ")"                  -> indicator
                | INDICATOR LBRACE_ESC NAME "=" NAME RBRACE_ESC    -> indicator
                | "[" NAME "=" NAME "]"                            -> indicator
%extend ?limits: "_" "{" NAME NEQ NAME "}" ("^" upper)?            -> sum_except
               | "_" "{" NAME IN LBRACE_ESC NUMBER "," DOTS "," upper RBRACE_ESC "}" -> sum_in
               | "_" "{" SUBSTACK "{" NAME "=" NUMBER DOUBLE_BACKSLASH NAME NEQ NAME "}" "}" ("^" upper)? -> sum_except
%extend symbol: (NAME | COMMAND) PRIME sub?
%extend ?item: BARE_FUNC item                     -> func
%extend ?tail: BARE_FUNC tail                     -> func
%extend sub: "_" "{" SUBITEM SUBITEM "}"
%extend ?primary: MATRIX_ENTRY                                     -> matrix_entry
                | INDICATOR "_" "{" NAME "=" NAME "}"              -> indicator
                | CALLIGRAPHIC                                     -> calligraphic
%extend sub: "_" "{" MATHRM "{" NAME "}" "}"
diffop: NABLA | PARTIAL
wrt: "_" "{" symbol "}"
   | "_" LETTER

PRIME: "'"
BARE_FUNC.2: /(log|ln|exp)(?=\s*[\(\[])/
CALLIGRAPHIC.3: /\\mathcal\s*\{\s*[A-Za-z]\s*\}/
MATRIX_ENTRY.4: /\\left\[\s*(\\operatorname\{diag\}\s*\(\s*q\s*\)|q\s*q\^\{\\top\}|\\left\(\s*q\s*-\s*y\s*\\right\)\s*x\^\{\\top\})\s*\\right\]_\{\s*[a-z]\s*,?\s*[a-z]\s*\}/

NABLA.2: /\\nabla(?![A-Za-z])/
PARTIAL.2: /\\partial(?![A-Za-z])/
DFRAC.4: /\\[dt]?frac\s*\{\s*(\\partial|d|\\mathrm\{d\})\s*\}\s*\{\s*(\\partial(?![A-Za-z])|(d|\\mathrm\{d\})(?=\s*[A-Za-z\\]))/
LFRAC.4: /\\[dt]?frac\s*\{\s*(d|\\mathrm\{d\})(?=\s*[A-Za-z\\])/
DDEN.4: /\{\s*(d|\\mathrm\{d\})(?=\s*[A-Za-z\\])/
PFRAC.3: /\\[dt]?frac\s*\{\s*\\partial(?![A-Za-z])(?!\s*\^)/
PFRAC2.3: /\\[dt]?frac\s*\{\s*\\partial\s*\^\s*(\{\s*2\s*\}|2)/
INDICATOR.3: /\\(mathbbm|mathbb|mathbf|mathds)\s*\{\s*1\s*\}|\\mathbbm\s*1/
NEQ.2: /\\(neq|ne)(?![A-Za-z])/
IN.2: /\\in(?![A-Za-z])/
DOTS.2: /\\(dots|ldots|cdots)(?![A-Za-z])/
LBRACE_ESC.2: /\\\{/
RBRACE_ESC.2: /\\\}/
SIZING.3: /\\(bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg)(?![A-Za-z])/
%ignore SIZING
"""

#: What derive's own text renderer prints (``derive text``): ``Σ[i=1..K] y_i·log(q_i)``,
#: ``∂E/∂z_k``, ``∂/∂z_k (…)``, ``δ_ik``, ``e^z_i``, ``(1 - q_i)^γ``, ``x²``; read back only as
#: a person's working.  A sum's body is the product after it: the renderer brackets a sum
#: that is a factor, or a term after a minus sign.
PRINTED = r"""
?start: expr

?expr: term
     | term ((PLUS | MINUS) term)+            -> chain
?term: factor
     | factor ((CDOT | SLASH) factor)+        -> product
     | SUM_HEAD term                          -> printed_sum
?factor: power
       | MINUS factor                         -> neg
?power: atom
      | atom POW atom                         -> pow
      | atom SQUARE                           -> square
?atom: NUMBER                                 -> number
     | NAME                                   -> printed_name
     | "(" expr ")"
     | FUNC "(" expr ")"                      -> printed_func
     | PARTIAL simple "/" wrt+                -> printed_derivative
     | PARTIAL "/" wrt+ "(" expr ")"          -> printed_derivative
     | MATRIX_ENTRY                           -> matrix_entry
?simple: NAME                                 -> printed_name
       | FUNC "(" expr ")"                    -> printed_func
       | NAME POW NAME                        -> printed_power
wrt: PARTIAL NAME

PLUS: "+"
MINUS: "-"
CDOT: "·"
SLASH: "/"
POW: "^" | "**"
SQUARE: "²"
PARTIAL: /∂[²³]?/
SUM_HEAD: /Σ\[[a-z](=1\.\.[A-Z]|≠[a-z])\]/
FUNC.2: /(log|exp|sqrt)(?=\()/
NUMBER: /\d+(\.\d+)?/
NAME: /[A-Za-zα-ωΑ-ΡΤ-Ωℓℒ]+'?(_[A-Za-z0-9]+|[ₐ-ₜᵢ-ᵪ]+)?/
MATRIX_ENTRY: /\[(diag\(q\)|q qᵀ|\(q - y\) xᵀ)\]_[a-z]{2}/
%ignore /[ \t]+/
"""


@lru_cache(maxsize=None)
def parser(form: str, working: bool = False):
    """The LALR(1) parser of ``form`` ("text" or "latex"), built once; with ``working``, of a
    line of a person's own derivation (:data:`TEXT_WORKING`, :data:`LATEX_WORKING`)."""
    from lark import Lark
    return Lark(_grammar(form, working), parser="lalr", lexer="contextual",
                propagate_positions=True, maybe_placeholders=True)


def _grammar(form: str, working: bool) -> str:
    if form == "printed":
        return PRINTED
    if form == "text":
        return TEXT_WORKING if working else TEXT
    return LATEX_WORKING if working else LATEX


def conflicts(form: str, working: bool = False) -> list[str]:
    """The shift/reduce conflicts lark finds in the grammar of ``form`` (lark resolves them as
    shifts without a word unless asked; a reduce/reduce conflict is always an error)."""
    import logging

    from lark import Lark, logger
    found = []

    class _Collect(logging.Handler):
        def emit(self, record):
            if "conflict" in record.getMessage().lower():
                found.append(record.getMessage())

    handler, level = _Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        Lark(_grammar(form, working), parser="lalr", lexer="contextual", debug=True)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return found
