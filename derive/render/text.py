"""Plain-text renderer for a terminal: one line a step in Unicode, and the rule under it."""
from __future__ import annotations

from .. import rules
from ..records import Derivation
from .latex import plain
from .printers import text


def render(derivation: Derivation) -> str:
    return render_many([derivation])


def _section(d: Derivation) -> str:
    out = [f"{plain(d.title)} [{d.name}]", plain(d.description), ""]
    for n, step in enumerate(d.steps, 1):
        lhs = text(step.lhs)
        if d.continues(n - 1):
            lhs = " " * len(lhs)
        out.append(f"{n:>2}. {lhs} = {text(step.expr)}")
        reasons = "; ".join(f"{rules.get(r).title} ({rules.get(r).why})" for r in step.rules)
        aside = "special case: " if d.special(n - 1) else "aside: " if step.aside else ""
        out.append(f"      ↳ {aside}{reasons}")
    return "\n".join(out)


def render_many(derivations: list[Derivation]) -> str:
    return "\n\n".join(_section(d) for d in derivations) + "\n"
