"""LaTeX renderer: an ``align*`` block per derivation, one step a line, its rule at the right.

Each step's rule is a ``\\tag*`` in a small font, set against the right margin as amsmath sets
an equation number: beside the step where the two fit on the line, on the line below where the
step is too long.  So the rules make one column, flush right, on every derivation, and no rule
ever widens a step.  A step too wide for the line is broken before a + or a − (or inside its
widest bracket), as a typesetter does, so that a block fits the text width of a standard
``article``.  A block may break across pages between two steps (each block carries
``\\allowdisplaybreaks[1]`` in a group of its own), but not after the first step nor before the
last (``\\\\*``), nor inside a step.  ``aligned`` blocks (Markdown, Jupyter), where MathJax
allows no tag, keep the rule in a column of its own.

``document=True`` wraps the blocks in a standalone ``article`` at the class's own text width
that needs only amsmath and amssymb and compiles with pdflatex without an overfull box.  Each
derivation (heading, description and steps) stays on one page where it fits: before each one,
a page break is cheap if the page is cut short (``\\vfil``), so a derivation that does not fit
on the rest of a page starts the next; one taller than a page breaks between two steps.

Titles and descriptions are prose that may hold mathematics between dollar signs (``"a linear
layer $z = W x + b$"``): :func:`prose` passes the mathematics through and escapes the rest as
text (``\\$`` is a dollar sign, a lone ``$`` is text); :func:`plain` gives it for a terminal.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .printers import latex
from .rows import latex_rows

if TYPE_CHECKING:  # the records, for types only
    from ..records import Derivation, Step

# \allowdisplaybreaks[1]: a page break between two steps costs 9999, against -200 for one before
# a \derivation; the \vfil fills the page it ends, so that page costs nothing for being short.
_PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage{amsmath}
\usepackage{amssymb}
\allowdisplaybreaks[1]
% A new page before a derivation that does not fit on the rest of this one.
\newcommand{\derivation}[1]{\par\vfil\penalty-200\vfilneg\section*{#1}}
\begin{document}
"""


_TEXT_ESCAPES = str.maketrans({c: "\\" + c for c in "&%$#_{}"} |
                              {"^": r"\^{}", "~": r"\~{}", "\\": r"\textbackslash{}"})

# Unicode that pdflatex cannot set in text, should some prose have it outside dollar signs.
_UNICODE_MATH = str.maketrans({
    "α": r"$\alpha$", "β": r"$\beta$", "γ": r"$\gamma$", "δ": r"$\delta$", "ε": r"$\epsilon$",
    "λ": r"$\lambda$", "μ": r"$\mu$", "σ": r"$\sigma$", "τ": r"$\tau$", "Σ": r"$\Sigma$",
    "∂": r"$\partial$", "−": "$-$", "×": r"$\times$", "≠": r"$\neq$", "≤": r"$\leq$",
    "≥": r"$\geq$", "′": "'", "ᵀ": r"$^{\mathsf{T}}$", "–": "--", "—": "---"})


def escape(text: str) -> str:
    """Plain text made safe for LaTeX's text mode."""
    return text.translate(_TEXT_ESCAPES).translate(_UNICODE_MATH)


_MATH = re.compile(r"(?<!\\)\$(.+?)(?<!\\)\$", re.DOTALL)


def prose(text: str) -> str:
    """Prose for LaTeX's text mode: ``$...$`` spans pass through as mathematics, the rest is
    escaped as text (``\\$`` being a dollar sign)."""
    out, at = [], 0
    for span in _MATH.finditer(text):
        out += [escape(text[at:span.start()].replace(r"\$", "$")), "$%s$" % span.group(1)]
        at = span.end()
    return "".join(out + [escape(text[at:].replace(r"\$", "$"))])


_UNICODE = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε",
    "lambda": "λ", "mu": "μ", "sigma": "σ", "tau": "τ", "Sigma": "Σ", "sum": "Σ", "partial": "∂",
    "neq": "≠", "ne": "≠", "leq": "≤", "geq": "≥", "times": "×", "cdot": "·", "ell": "ℓ",
    "infty": "∞", "top": "ᵀ", "quad": " "} | dict.fromkeys(
    ["mathrm", "mathit", "mathbf", "mathsf", "text", "operatorname", "textstyle", "displaystyle",
     "left", "right"], "")


def _unicode_macro(macro: re.Match) -> str:
    """A macro as Unicode; the space after it kept after a word or an operator (``\\log x`` is
    log x, ``a \\cdot b`` is a · b), dropped after a symbol (``\\partial E`` is ∂E)."""
    name, space = macro.groups()
    out = _UNICODE.get(name, name)
    return out + space if len(out) > 1 or out and out in "·×≠≤≥" else out


def plain(text: str) -> str:
    """Prose for a terminal: the dollar signs of its mathematics dropped, and the LaTeX in it
    made Unicode (``$\\log(1 + e^{u})$`` is log(1 + e^u), ``$\\epsilon$`` is ε)."""
    def unicode(span: re.Match) -> str:
        math = re.sub(r"\\([A-Za-z]+)( ?)", _unicode_macro, span.group(1))
        math = re.sub(r"\\[,;: ]", " ", math).replace(r"\!", "")  # spacing
        return re.sub(r"\\(.)", r"\1", math).replace("{", "").replace("}", "")
    return _MATH.sub(unicode, text).replace(r"\$", "$")


def _annotation(step: Step) -> str:
    labels = dict.fromkeys(r.tex for r in step.reasons)
    return "; ".join(labels)


#: Room for the right-hand side of a step, in ems (printers.width), in the text width of a
#: standard ``article`` at 10pt (345pt) less the left-hand side and the sign.
ROOM = 30.0


def _lines(derivation: Derivation, environment: str) -> list[str]:
    """One entry a step; a step too wide for the line is broken before a + or a −, its rows
    after the first indented under the right-hand side, and not broken across pages."""
    lines = []
    for n, step in enumerate(derivation.steps):
        lhs = "" if derivation.continues(n) else latex(step.lhs)
        rows = latex_rows(step.expr, ROOM)
        line = " \\\\*\n".join([r"%s &= %s" % (lhs, rows[0])] +
                                [r"&\quad %s" % row for row in rows[1:]])
        if environment == "aligned":  # Markdown and Jupyter: the rule in a column of its own
            lines.append(r"%s && \text{%s}" % (line, _annotation(step)))
        else:
            lines.append(r"%s \tag*{\small\quad %s}" % (line, _annotation(step)))
    return lines


def _line_end(after: int, steps: int) -> str:
    """``\\\\*`` (no page break) after the first step and before the last, as a page keeps
    the first two lines of a paragraph together and the last two; ``\\\\`` elsewhere."""
    return " \\\\*\n" if after in (0, steps - 2) else " \\\\\n"


def render_body(derivation: Derivation, environment: str = "align*") -> str:
    """The steps as one ``environment`` block: ``align*``, each step's rule a ``\\tag*`` at
    the right margin, beside the step or on the line below it; or ``aligned`` (inside ``$$``,
    for Markdown and Jupyter, where a tag is not allowed), the rule in a column beside it."""
    lines = _lines(derivation, environment)
    if environment == "aligned":
        body = " \\\\\n".join(lines)
    else:
        body = "".join(line + _line_end(n, len(lines)) for n, line in enumerate(lines[:-1]))
        body += lines[-1]
    return "\\begin{%s}\n%s\n\\end{%s}" % (environment, body, environment)


def render(derivation: Derivation, document: bool = False) -> str:
    return render_many([derivation], document=document)


def render_many(derivations: list[Derivation], document: bool = False) -> str:
    blocks = []
    for d in derivations:
        if document:  # "% name" opens a derivation's block (docs/make_png.sh finds it there)
            blocks.append("%% %s\n\\derivation{%s}\n%s\n\n%s" % (
                d.name, prose(d.title), prose(d.description), render_body(d)))
        else:  # pasted into any article, a long block may break between two steps
            blocks.append("%% %s (%s)\n\\begingroup\\allowdisplaybreaks[1]\n%s\n\\endgroup" % (
                plain(d.title), d.name, render_body(d)))
    body = "\n\n".join(blocks) + "\n"
    return _PREAMBLE + "\n" + body + "\n\\end{document}\n" if document else body
