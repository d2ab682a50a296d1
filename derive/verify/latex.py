"""The report as a LaTeX document for a teacher marking work: the author's lines, unchanged,
each tagged with a tick or a cross and the verdict, then the counterexample and derive's own
next step for the first line that does not hold.  It compiles with pdflatex and the amsmath
and amssymb packages (``\\mathbbm`` is given as ``\\mathbb`` where bbm is not loaded)."""
from __future__ import annotations

#: Characters of plain text that LaTeX reads as commands, and how to set them.
_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&",
            "#": r"\#", "^": r"\^{}", "_": r"\_", "%": r"\%", "~": r"\~{}", "<": r"\textless{}",
            ">": r"\textgreater{}", "✓": r"\checkmark{}", "✗": r"$\times$"}

PREAMBLE = r"""\documentclass{article}
\usepackage[utf8]{inputenc}
\usepackage{amsmath,amssymb}
\providecommand{\mathbbm}[1]{\mathbb{#1}}
\providecommand{\mathds}[1]{\mathbb{#1}}
\allowdisplaybreaks
\begin{document}
"""


def escaped(text: str) -> str:
    """Plain ``text`` as LaTeX sets it in text mode (with pdflatex: a character that is not
    ASCII is set from its math symbol where it has one, and as ? otherwise)."""
    return "".join(_SPECIAL.get(ch) or (ch if ch.isascii() else _unicode(ch)) for ch in text)


def _unicode(ch: str) -> str:
    import unicodedata
    words = unicodedata.name(ch, "").split()
    if ch in _SYMBOLS:
        return "$%s$" % _SYMBOLS[ch]
    if words[:1] == ["GREEK"] and "LETTER" in words:
        name = words[-1].lower()
        return "$\\%s$" % (name.capitalize() if "CAPITAL" in words else name)
    return "?"


_SYMBOLS = {"\u2202": r"\partial", "\u00b7": r"\cdot", "\u2260": r"\neq", "\u00b2": "^2",
            "\u21b3": r"\hookrightarrow", "\u2113": r"\ell", "\u1d40": "^T", "\u2212": "-"}


def document(report, assumed: str) -> str:
    """The document of ``report``; ``assumed`` says in words what the target was taken to be."""
    from ..render.printers import latex
    rows = []
    for line in report.lines:
        mark = {"holds": r"\checkmark", "defines": r"\checkmark", "fails": r"\times",
                "needs": r"\times"}.get(line.status, "?")
        if line.status == "unread":
            body = r"\text{\texttt{%s}}" % escaped(line.source)
        elif report.form == "latex":
            body = line.source  # the author's own line, unchanged
        else:  # read from text: set by derive's printer
            body = " &= ".join("" if e is None else latex(e) for e in line.shown)
        rows.append(r"%s \tag*{$%s$ \small %s}" % (body, mark, escaped(
            f"{line.step}: {line.verdict()}")))
    out = [PREAMBLE, "\\begin{align*}\n", " \\\\\n".join(rows), "\n\\end{align*}\n"]
    wrong = report.first_wrong
    if wrong is not None and (wrong.counterexample or wrong.hint):
        out.append("\\begin{itemize}\n")
        if wrong.counterexample is not None:
            example = wrong.counterexample
            out.append("\\item " + escaped(f"Line {wrong.step} does not hold at "
                                           f"{example.text(report.label)}: there the side "
                                           f"before the '=' is {example.values[0]:.12g}, the "
                                           f"side after it {example.values[1]:.12g}.") + "\n")
        if wrong.hint is not None:
            out.append("\\item " + escaped(f"derive's next step from the line before "
                                           f"({wrong.hint[0]}):")
                       + " $= %s$\n" % latex(wrong.hint[1]))
        out.append("\\end{itemize}\n")
    out.append(escaped(f"The target is assumed {assumed}.") + "\n")
    out.append("\\end{document}\n")
    return "".join(out)

