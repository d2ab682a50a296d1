"""The records that flow through the pipeline: ``Step`` and ``Derivation``.

Derivation scripts build them with :class:`Script`, one rule application at a time; the checker,
the renderers and the code generator only read them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from sympy import Expr

from . import rules
from .errors import RuleDoesNotApplyError
from .model import Fact


#: How a derivation shows itself (``"text"``, ``"latex"``), given by the renderers
#: (:mod:`derive.render`) when they are loaded: the records import nothing of them.
DISPLAY: dict[str, Callable] = {}


@dataclass(frozen=True)
class Reason:
    """A rule a step cites, as the renderers print it: its name, title, justification and
    title in LaTeX."""

    rule: str
    title: str
    why: str
    tex: str


@dataclass(frozen=True)
class Step:
    """One line of a derivation: ``lhs = expr``, obtained by ``rules`` from the line before.

    ``facts`` are the facts about the target in force at this line.  An ``aside`` is a special
    case shown on the way (for instance a one-hot target); an aside right after an aside
    continues from it, and the next main step continues from the last step that is not an
    aside.
    """

    lhs: Expr
    expr: Expr
    rules: tuple[str, ...]
    facts: frozenset[Fact] = frozenset()
    aside: bool = False
    params: tuple[tuple[str, object], ...] = ()  # what the rules were applied with
    phase: str = ""      # "tidy" for a step that only shortens a closed result
    reasons: tuple[Reason, ...] = ()  # the rules' titles and justifications, when it is made

    def __post_init__(self):
        if not self.reasons:
            object.__setattr__(self, "reasons", tuple(
                Reason(r, rules.get(r).title, rules.get(r).why, rules.get(r).latex_title)
                for r in self.rules))

    @property
    def rule(self) -> str:
        return ", ".join(self.rules)

    @property
    def title(self) -> str:
        return "; ".join(dict.fromkeys(r.title for r in self.reasons))

    @property
    def why(self) -> str:
        return "; ".join(r.why for r in self.reasons)


@dataclass(frozen=True, repr=False)
class Derivation:
    """A named derivation: its steps, its result and the closed form it must equal."""

    name: str
    title: str
    description: str
    goal: Expr
    steps: tuple[Step, ...]
    lemmas: tuple[str, ...] = ()

    @property
    def result(self) -> Expr:
        return self.main_steps[-1].expr

    @property
    def main_steps(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if not s.aside)

    @property
    def facts(self) -> frozenset[Fact]:
        return self.main_steps[-1].facts

    def special(self, n: int) -> bool:
        """Whether step ``n`` (from 0) is a special case: an aside under more facts than the
        main line it leaves (a one-hot target), not the same result written another way."""
        step = self.steps[n]
        main = [s for s in self.steps[:n] if not s.aside]
        return step.aside and (not main or step.facts != main[-1].facts)

    def continues(self, n: int) -> bool:
        """Whether step ``n`` (from 0) continues the line before it, its left-hand side not
        written again: the same left-hand side, and both main steps or both asides (asides in a
        row are one special case worked on)."""
        if n == 0:
            return False
        step, before = self.steps[n], self.steps[n - 1]
        return step.lhs == before.lhs and step.aside == before.aside

    def __repr__(self) -> str:
        return f"<Derivation {self.name!r}: {len(self.steps)} steps, result {self.result}>"

    def _repr_latex_(self) -> str | None:
        show = DISPLAY.get("latex")
        return None if show is None else "$$" + show(self) + "$$"

    def __str__(self) -> str:
        show = DISPLAY.get("text")
        return repr(self) if show is None else show(self)


@dataclass
class Script:
    """Builds a derivation step by step, like a proof script."""

    name: str
    title: str
    description: str
    lhs: Expr
    goal: Expr
    lemmas: tuple[str, ...] = ()
    steps: list[Step] = field(default_factory=list)

    def _current(self) -> Step | None:
        main = [s for s in self.steps if not s.aside]
        return main[-1] if main else None

    def step(self, *names: str, lhs: Expr | None = None, start: bool = False,
             **params) -> "Script":
        """Apply the rules ``names`` in turn to the current expression and record the result.

        With ``start``, a new chain begins: the rules apply to the new ``lhs`` itself.
        """
        self.steps.append(self._make(names, lhs, aside=False, params=params, start=start))
        return self

    def aside(self, *names: str, lhs: Expr | None = None, **params) -> "Script":
        """Record a special case of the current expression without continuing from it; after
        an aside, the special case is worked on further."""
        self.steps.append(self._make(names, lhs, aside=True, params=params))
        return self

    def record(self, names: tuple[str, ...], expr: Expr, *, phase: str = "",
               **params) -> "Script":
        """Record a step that a strategy has already made by the rules ``names`` (with
        ``params``) from the current expression: it is not computed again."""
        current = self._current()
        facts = set(current.facts) if current else set()
        facts.update(rules.get(n).fact for n in names if rules.get(n).fact is not None)
        lhs = current.lhs if current else self.lhs
        self.steps.append(Step(lhs, expr, tuple(names), frozenset(facts),
                               params=tuple(sorted(params.items(), key=lambda item: item[0])),
                               phase=phase))
        return self

    def _make(self, names, lhs, aside, params, start=False) -> Step:
        current = self._current()
        if aside and self.steps and self.steps[-1].aside:
            current = self.steps[-1]
        expr = lhs if start else current.expr if current else self.lhs
        facts = set(current.facts) if current else set()
        try:
            expr = rules.apply_together(names, expr, **params)
        except RuleDoesNotApplyError as e:
            raise RuleDoesNotApplyError(
                f"derivation {self.name!r}, step {len(self.steps) + 1}: {e}") from None
        facts.update(rules.get(n).fact for n in names if rules.get(n).fact is not None)
        new_lhs = lhs if lhs is not None else (current.lhs if current else self.lhs)
        kept = {p: v for n in names for p, v in rules.accepted(n, params).items()}
        return Step(new_lhs, expr, tuple(names), frozenset(facts), aside,
                    tuple(sorted(kept.items(), key=lambda item: item[0])))

    def done(self) -> Derivation:
        return Derivation(self.name, self.title, self.description, self.goal,
                          tuple(self.steps), self.lemmas)
