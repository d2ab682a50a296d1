"""Pass 2 of the lowering: named rewrites of array formulas.

A :class:`Rewrite` is an object: its name, why it holds, what it does to a node (``apply``:
the new node, or None where it does not match) and, for an identity of the model, the
derivation and rule of the checked step that proves it.  :func:`optimize` applies a collection
of them to every node, children first, until none matches.  The collections are in
:mod:`.stability` (softmax and log-sum-exp forms that neither overflow nor cancel) and
:mod:`.labels` (the one-hot target of integer labels).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sympy import Expr, Number, Symbol

from ...errors import DeriveError
from ...records import Derivation


@dataclass(frozen=True)
class Rewrite:
    """A named rewrite of array formulas: ``apply`` gives the new node, or None where it does
    not match.  ``source`` names a derivation and the rule of its step that proves the rewrite
    an identity of the model (None for an identity of the reals, tested in
    ``tests/test_rewrites.py``)."""

    name: str
    why: str
    apply: Callable[..., Expr | None]
    source: tuple[str, str] | None = None
    context: tuple[str, ...] = ()  # what ``apply`` takes besides the node, by keyword
    whole: bool = False            # applies to the whole formula only, not to each node

    def step(self, derivation: Callable[[str], Derivation]) -> tuple[str, int] | None:
        """The derivation and the number of its step that proves this rewrite, found with
        ``derivation`` (a name to its checked derivation)."""
        if self.source is None:
            return None
        name, rule = self.source
        d = derivation(name)
        found = [n for n, s in enumerate(d.steps, 1) if rule in s.rules]
        if not found:
            raise DeriveError(f"rewrite {self.name}: no step of {name} uses the rule {rule}")
        return name, found[0]


def optimize(expr: Expr, rewrites, used: set[str], **context) -> Expr:
    """Apply ``rewrites`` to every node, children first, until none matches (a ``whole``
    rewrite to the whole formula, once); the names of those that did are added to ``used``.
    ``context`` gives the rewrites what they take besides the node."""
    def apply(rw, e):
        return rw.apply(e, **{name: context[name] for name in rw.context})
    for rw in (rw for rw in rewrites if rw.whole):
        new = apply(rw, expr)
        if new is not None and new != expr:
            used.add(rw.name)
            expr = new
    rewrites = [rw for rw in rewrites if not rw.whole]
    if not rewrites:
        return expr

    def visit(e):
        if e.args and not isinstance(e, (Symbol, Number)):
            e = e.func(*map(visit, e.args))
        for _ in range(20):
            for rw in rewrites:
                new = apply(rw, e)
                if new is not None and new != e:
                    used.add(rw.name)
                    e = visit(new)
                    break
            else:
                return e
        return e
    return visit(expr)
