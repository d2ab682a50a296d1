"""Plain-text renderer for a terminal: one line a step in Unicode, and the rule under it."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .latex import plain
from .printers import text

if TYPE_CHECKING:  # the records, for types only
    from ..records import Derivation


def render(derivation: Derivation) -> str:
    return render_many([derivation])


def _section(d: Derivation) -> str:
    out = [f"{plain(d.title)} [{d.name}]", plain(d.description), ""]
    for n, step in enumerate(d.steps, 1):
        lhs = text(step.lhs)
        if d.continues(n - 1):
            lhs = " " * len(lhs)
        out.append(f"{n:>2}. {lhs} = {text(step.expr)}")
        reasons = "; ".join(f"{r.title} ({r.why})" for r in step.reasons)
        aside = "special case: " if d.special(n - 1) else "aside: " if step.aside else ""
        out.append(f"      ↳ {aside}{reasons}")
    return "\n".join(out)


def render_many(derivations: list[Derivation]) -> str:
    return "\n\n".join(_section(d) for d in derivations) + "\n"
