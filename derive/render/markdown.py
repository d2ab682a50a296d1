"""Markdown renderer: a heading, a ``$$`` block with the steps, and the rules that justify them.

The ``$$ \\begin{aligned} ... $$`` blocks render in Jupyter and on GitHub.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .latex import render_body

if TYPE_CHECKING:  # the records, for types only
    from ..records import Derivation


def render(derivation: Derivation) -> str:
    return render_many([derivation])


def _section(d: Derivation) -> str:
    out = [f"## {d.title} (`{d.name}`)", "", d.description, "",
           "$$", render_body(d, "aligned"), "$$", "", "Steps:", ""]
    for n, step in enumerate(d.steps, 1):
        reasons = "; ".join(f"{r.why} (`{r.rule}`)" for r in step.reasons)
        last = step.aside and (n == len(d.steps) or not d.steps[n].aside)
        kind = "special case" if d.special(n - 1) else "aside"
        aside = f" ({kind}, not continued)" if last else f" ({kind})" if step.aside else ""
        out.append(f"{n}. {reasons}{aside}")
    facts = sorted({f for s in d.steps for f in s.facts}, key=lambda f: f.name)
    if facts:
        out += ["", "Facts used: " + "; ".join(f.text for f in facts) + "."]
    return "\n".join(out)


def render_many(derivations: list[Derivation]) -> str:
    return "\n\n".join(_section(d) for d in derivations) + "\n"
