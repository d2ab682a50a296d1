"""Rows that fit the page: a step too wide for a line, broken as a typesetter breaks it, and
an estimate of how wide an expression is when typeset."""
from __future__ import annotations

from sympy import Add, Derivative, Indexed, KroneckerDelta, Mul, Pow, Sum, Symbol, \
    UnevaluatedExpr, exp, fraction, log

from ..model import SumExcept
from .printers import _simple, latex, ordered_terms, reciprocal_first


def latex_rows(expr, room: float) -> list[str]:
    """``expr`` as LaTeX on as few rows as keep each within ``room`` ems (:func:`width`), as a
    typesetter breaks a long formula: before a + or a − of a sum, and, where one term is too
    wide by itself, inside its widest bracket (``\\Bigl( … \\Bigr)``, which may open on one
    row and close on another); each row after the first begins with its sign."""
    return _rows(expr, room)


def _rows(expr, room: float, lead: float = 0.0) -> list[str]:
    """``expr`` broken into rows of ``room`` ems, its first row beginning ``lead`` ems in."""
    if lead + width(expr) <= room:
        return [latex(expr)]
    if isinstance(expr, Add):
        rows, row, used = [], "", lead
        for term in ordered_terms(expr):
            negative = term.could_extract_minus_sign()
            body = -term if negative else term
            sign = "- " if negative else "+ " if row or rows else ""
            wide = width(body) + 1.5
            if used + wide > room and wide > room / 2:  # broken inside it
                if row:
                    rows.append(row)
                    used = 0.0
                inner = _rows(body, room, used + 1.5)
                inner[0] = sign + inner[0]
                rows += inner[:-1]  # a term on one row leaves the rest of that row free
                row, used = inner[-1], used + wide if len(inner) == 1 else room
                continue
            if row and used + wide > room:
                rows.append(row)
                row, used = "", 0.0
            row += (" " if row else "") + sign + latex(body)
            used += wide
        return rows + [row]
    coefficient, rest = expr.as_coeff_Mul()
    if coefficient == -1:
        inner = _rows(rest, room, lead + 1.0)
        return ["- " + inner[0], *inner[1:]]
    if isinstance(expr, Sum) and len(expr.limits) == 1:
        index, lo, hi = (latex(a) for a in expr.limits[0])
        return _bracketed(r"\sum_{%s=%s}^{%s}" % (index, lo, hi), 2.2, expr.function, room, lead)
    split = reciprocal_first(expr) if isinstance(expr, Mul) else None
    if split is not None and (lead + max(map(width, split)) + 0.6 <= room
                              or width(split[1]) > room):  # num over den: narrower
        return [latex(expr, one_fraction=True)]
    if isinstance(expr, Mul):  # broken inside its widest bracket or sum
        widest = max((f for f in expr.args if isinstance(f, (Add, Sum))), key=width, default=None)
        if widest is not None:
            others = Mul(*(f for f in expr.args if f is not widest))
            if isinstance(others, Add):  # a sum as a factor keeps its parentheses
                return _bracketed(r"\left(%s\right)" % latex(others),
                                  width(others) + _WIDTH["brackets"], widest, room, lead)
            return _bracketed(others, width(others), widest, room, lead)
    return [latex(expr)]


def _bracketed(head, wide: float, inner, room: float, lead: float) -> list[str]:
    """``head (inner)`` over several rows, ``inner`` broken by :func:`_rows`; a head that
    leaves less than half the row for ``inner`` stands on a row of its own, itself broken
    where it is too wide (``head``: LaTeX, or the expression it prints)."""
    text = head if isinstance(head, str) else latex(head)
    alone = isinstance(inner, Add) and lead + wide > room / 2
    rows = _rows(inner, room, 0.0 if alone else lead + wide + 1.0)
    if not isinstance(inner, Add):
        return [text + " " + rows[0], *rows[1:]]
    if alone:
        heads = [text] if isinstance(head, str) or lead + wide <= room else _rows(head, room, lead)
        rows = [*heads[:-1], heads[-1] + r" \Bigl(", *rows]
    else:
        rows = [r"%s \Bigl(%s" % (text, rows[0]), *rows[1:]]
    rows[-1] += r"\Bigr)"
    return rows


#: Widths in ems, measured on typeset steps (10 pt Computer Modern, display style): a letter
#: with its index, the space and sign around + or −, a Σ with its limits, \left( \right), log.
_WIDTH = {"letter": 1.2, "plus": 1.5, "factor": 0.2, "brackets": 1.0, "sum": 2.2, "log": 2.0,
          "exponent": 0.6, "bar": 0.6, "small": 0.8, "side limits": 1.2}


def width(expr, small: bool = False) -> float:
    """About how wide ``expr`` is when typeset, in ems (:data:`_WIDTH`): a fraction as wide as
    the wider of its two parts, set smaller (``small``: where a Σ takes its limits at its
    side); an exponent at 60%."""
    w = _WIDTH

    def wide(e):
        return width(e, small)
    if isinstance(expr, (Symbol, Indexed, KroneckerDelta)):
        return w["letter"]
    if expr.is_Number:
        return 0.6 * len(str(abs(expr))) + (0.8 if expr.is_negative else 0)
    if isinstance(expr, Add):
        return sum(map(wide, expr.args)) + w["plus"] * (len(expr.args) - 1)
    if isinstance(expr, Mul):
        split = reciprocal_first(expr)
        if split is not None:  # \frac{1}{den} num
            return w["small"] * width(split[1], True) + w["bar"] + wide(split[0])
        num, den = fraction(expr)
        if den != 1:
            return w["small"] * max(width(num, True), width(den, True)) + w["bar"]
        return sum(wide(f) + (w["brackets"] if isinstance(f, (Add, Sum)) else w["factor"])
                   for f in expr.args)
    if isinstance(expr, Pow):
        return (wide(expr.base) + w["exponent"] * width(expr.exp, True)
                + (w["brackets"] if isinstance(expr.base, (Add, Sum)) else 0))
    if isinstance(expr, exp):  # the exponent inline: e^{z_j / T}
        num, den = fraction(expr.args[0])
        inline = width(num, True) + (width(den, True) + 0.8 if den != 1 else 0)
        return 0.8 + 0.7 * inline
    if isinstance(expr, (Sum, SumExcept)):
        return (w["sum"] + (w["side limits"] if small else 0) + wide(expr.function)
                + (w["brackets"] if isinstance(expr.function, Add) else 0))
    if isinstance(expr, log):
        return w["log"] + wide(expr.args[0]) + (w["brackets"] if not _simple(expr.args[0]) else 0)
    if isinstance(expr, UnevaluatedExpr):  # printed in parentheses
        return w["brackets"] + wide(expr.args[0])
    if isinstance(expr, Derivative):
        if _simple(expr.expr):  # \frac{\partial q_i}{\partial z_k}
            return w["small"] * (width(expr.expr, True) + 1.0) + w["bar"]
        return 2.0 + w["brackets"] + wide(expr.expr)
    return 1.0 + sum(map(wide, expr.args))
