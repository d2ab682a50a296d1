"""LaTeX renderer: an ``align*`` block per derivation, one step a line, the rule on the right.

``document=True`` wraps the blocks in a standalone article that needs only amsmath and
amssymb and compiles with pdflatex.
"""
from __future__ import annotations

from .. import rules
from ..records import Derivation, Step
from .printers import latex

_PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage{amsmath}
\usepackage{amssymb}
\allowdisplaybreaks
\addtolength{\textwidth}{2.4in}
\addtolength{\oddsidemargin}{-1.2in}
\addtolength{\evensidemargin}{-1.2in}
\begin{document}
"""


_TEXT_ESCAPES = str.maketrans({c: "\\" + c for c in "&%$#_{}"} |
                              {"^": r"\^{}", "~": r"\~{}", "\\": r"\textbackslash{}"})


def escape(text: str) -> str:
    """Plain text made safe for LaTeX's text mode."""
    return text.translate(_TEXT_ESCAPES)


def _annotation(step: Step) -> str:
    labels = dict.fromkeys(rules.get(r).latex_title for r in step.rules)
    return r"\text{%s}" % "; ".join(labels)


def _lines(derivation: Derivation) -> list[str]:
    lines, shown_lhs = [], None
    for step in derivation.steps:
        lhs = "" if step.lhs == shown_lhs and not step.aside else latex(step.lhs)
        lines.append(r"%s &= %s && %s" % (lhs, latex(step.expr), _annotation(step)))
        shown_lhs = None if step.aside else step.lhs
    return lines


def render_body(derivation: Derivation, environment: str = "align*") -> str:
    """The steps as one ``environment`` block (``align*``, or ``aligned`` inside ``$$``)."""
    return "\\begin{%s}\n%s\n\\end{%s}" % (environment, " \\\\\n".join(_lines(derivation)),
                                            environment)


def render(derivation: Derivation, document: bool = False) -> str:
    return render_many([derivation], document=document)


def render_many(derivations: list[Derivation], document: bool = False) -> str:
    blocks = []
    for d in derivations:
        if document:
            blocks.append("\\section*{%s}\n%s\n\n%s" % (escape(d.title), escape(d.description),
                                                          render_body(d)))
        else:
            blocks.append("%% %s (%s)\n%s" % (d.title, d.name, render_body(d)))
    body = "\n\n".join(blocks) + "\n"
    return _PREAMBLE + "\n" + body + "\n\\end{document}\n" if document else body
