"""Stage 3, automatic: the derivation of ∂ℒ/∂z_k for a loss ℒ that a user writes.

A strategy in the manner of SymPy's ``manualintegrate``: the rules are data, each declaring the
kinds of node it rewrites, grouped by what they do; each step applies the first group, in order
of priority, that has a rule matching some node of the expression (every node it matches, one
level at a time).  A rule that does not apply gives None, and a step is made once and recorded.
Terms that a step makes equal or opposite are held apart, and collected in a step of their own.
The same loss always gives the same steps.  The phases:

1. differentiate, until no derivative is left: linearity (sum rule, constant factor, constants),
   the quotient and product rules, the derivatives of log, exp and powers, then the lemmas (the
   softmax Jacobian, the derivative of the sigmoid) and ∂z_i/∂z_k = δ_ik;
2. simplify: cancel what the lemmas made cancel, multiply out under a sum, split sums by
   linearity and collapse Kronecker deltas, fold e^{z_i} / Σ_j e^{z_j} back into q_i;
3. the facts about the target: the form for any target is kept as a step; then Σ_i y_i = 1 for a
   probability target, or the one-hot form for a one-hot target at c;
4. tidy, to the form a paper prints: a best-first search over the rules of :data:`TIDY` (collect,
   multiply out, take out a common factor, gather sums, merge powers, ...), where a step is kept
   only if it shortens the expression by :func:`derive.rules.tidy.cost`, or leads to a step that
   does; the shortest form found is the result.

Every step goes through the rule registry and the same records as the catalogue's scripts, so the
checker checks it and the renderers print it.
"""
from __future__ import annotations

import heapq

from sympy import Derivative, Expr

from . import budget, rules
from .errors import DeriveError
from .model import c, define_loss, k, needs_positive_target, z
from .rules.tidy import cost
from .records import Derivation, Script

ASSUMPTIONS = ("any", "probability", "one-hot")

#: The differentiation phase: groups of rules in order of priority.  A group's rules are of one
#: kind, or at most two rules, so that every step is one idea.
DIFFERENTIATE = (
    ("collect-terms",),
    ("exp-sum-derivative",),
    ("sum-rule", "constant-factor", "constant-derivative"),
    ("quotient-rule",),
    ("product-rule",),
    ("log-derivative", "exp-derivative", "power-rule"),
    ("softmax-jacobian", "sigmoid-derivative"),
    ("logit-derivative",),
)
#: The simplification phase, in order of priority.
SIMPLIFY = (
    ("collect-terms",),
    ("cancel",),
    ("kronecker-collapse",),
    ("sum-distribute",),
    ("sum-linearity",),
    ("sum-of-constant",),
    ("softmax-sum",),
    ("fold-softmax",),
)
#: The tidying phase: rules that a reader recognises, each kept only where it shortens the
#: expression (:func:`derive.rules.tidy.cost`), or makes a step that the next one shortens.
TIDY = ("collect-terms", "cancel", "sum-of-constant", "kronecker-select", "merge-powers",
        "fold-softmax", "fold-tempered-softmax", "sum-factor-out", "combine-sums", "factor-common",
        "factor-grouping", "distribute")
MAX_STEPS = 60
#: Most forms that the tidying search takes up.
SEARCH = 40


def default_assumption(loss: Expr) -> str:
    """What the target is taken to be when nobody says: one-hot for a loss of the label c,
    else a probability vector."""
    return "one-hot" if loss.has(c) else "probability"


def gradient(loss: Expr, *, assume: str | None = None, name: str | None = None) -> Derivation:
    """The derivation of ∂ℒ/∂z_k for ``loss`` (unchecked; :func:`derive.gradient` checks it),
    within the caller's deadline (:mod:`derive.budget`)."""
    assume = default_assumption(loss) if assume is None else assume
    if assume not in ASSUMPTIONS:
        raise DeriveError(f"assume must be one of {', '.join(ASSUMPTIONS)}, not {assume!r}")
    if loss.has(c) and assume != "one-hot":
        raise DeriveError("the loss uses the class c of a one-hot target: give "
                          "assume=\"one-hot\", or leave assume out")
    positive = needs_positive_target(loss)
    if positive and assume == "one-hot":
        raise DeriveError("the loss takes the log or a root of the target y, which is not "
                          "defined at the zeros of a one-hot target: take the target to be a "
                          "probability vector, or any positive target")
    symbol = define_loss(loss)
    title = name or "Gradient of your loss"
    label = "-".join(name.lower().split()) if name and name.strip() else "your-loss"
    s = Script(label, title, "Derived automatically, one rule a step.", lhs=symbol, goal=None)
    s.step("definition-loss-positive" if positive else "definition-loss")
    s.step("differentiate", wrt=z[k], lhs=Derivative(symbol, z[k]))
    _run(s, DIFFERENTIATE, until=lambda e: not e.has(Derivative), what="differentiate")
    _run(s, SIMPLIFY, until=lambda e: False, what="simplify")
    if assume == "probability":
        _try(s, ("probability-sum",))
    elif assume == "one-hot":
        _try(s, ("one-hot-select", "one-hot-entry"))
        _run(s, SIMPLIFY, until=lambda e: False, what="simplify")
    _tidy(s)
    return s.done()


def next_step(expr: Expr) -> tuple[tuple[str, ...], Expr] | None:
    """derive's own next step from ``expr``: the rules of the first group (differentiating
    first, where ``expr`` has a derivative, then simplifying) that change it, applied until
    none changes anything, and what they give; None where no rule applies."""
    for group in (DIFFERENTIATE if expr.has(Derivative) else ()) + SIMPLIFY:
        new, used = _apply(group, expr, "finding the next step (")
        if used and new != expr:
            return used, new
    return None


def _apply(group: tuple[str, ...], expr: Expr, doing: str) -> tuple[Expr, tuple[str, ...]]:
    """``expr`` with the rules of ``group`` applied in turn until none changes anything, and
    the names of those that applied, in the group's order; ``doing`` opens the message of
    running out of time, which the rule's name closes."""
    used = set()
    for _ in range(50):
        before = expr
        for name in group:
            budget.check(f"{doing}{name})")
            new = rules.attempt(name, expr, hold=True)
            if new is not None:
                expr, used = new, used | {name}
        if expr == before:
            break
    return expr, tuple(name for name in group if name in used)


def _current(s: Script) -> Expr:
    main = [step for step in s.steps if not step.aside]
    return main[-1].expr


def _run(s: Script, groups, until, what: str) -> None:
    """Apply the first group that changes something, step after step, until ``until`` holds of
    the expression or no group applies."""
    for _ in range(MAX_STEPS):
        budget.check(f"deriving the gradient ({what}, step {len(s.steps) + 1})")
        if until(_current(s)):
            return
        if not any(_try(s, group) for group in groups):
            break
    else:
        if what == "differentiate" and _current(s).has(Derivative):
            raise DeriveError(f"the derivative is not closed after {MAX_STEPS} steps, the most "
                              "derive makes in one phase: the loss is too long to derive")
        return
    expr = _current(s)
    if what == "differentiate" and expr.has(Derivative):
        stuck = min(expr.atoms(Derivative), key=lambda d: len(str(d)))
        raise DeriveError(f"cannot differentiate {stuck.expr} with respect to {stuck.variables[0]}:"
                          " no rule applies to it")


def _try(s: Script, group: tuple[str, ...]) -> bool:
    """Make one step of the rules of ``group``, applied in turn until none changes anything,
    naming those that applied; False (and no step) when none does."""
    expr, used = _apply(group, _current(s), f"deriving the gradient (step {len(s.steps) + 1}, ")
    if not used:
        return False
    s.record(used, expr)
    return True


def _tidy(s: Script) -> None:
    """Shorten the result a step at a time, to the shortest form that a search of the
    :data:`TIDY` rules finds (:func:`_shortest`), and record the steps that lead to it."""
    for name, new in _shortest(s, _current(s)):
        s.record((name,), new, phase="tidy")


def _shortest(s: Script, start: Expr) -> list[tuple[str, Expr]]:
    """The steps to the shortest form found from ``start``.

    A best-first search, shortest first: from each form, every rule of :data:`TIDY` that lowers
    the cost; where none does, every pair of steps whose second lowers the cost below the
    first's start (multiply out, then collect).  At most :data:`SEARCH` forms are taken up.
    """
    costs: dict = {}

    def weigh(expr):
        if expr not in costs:
            costs[expr] = cost(expr)
        return costs[expr]

    best = (weigh(start), 0, start, [])
    frontier, seen, order, memo = [best], {start}, 1, {}
    for _ in range(SEARCH):
        if not frontier:
            break
        here, _, expr, path = heapq.heappop(frontier)
        if (here, len(path)) < (best[0], len(best[3])):
            best = (here, 0, expr, path)
        made = [(name, new) for name in TIDY for new in _alternatives(s, name, expr, memo)]
        moves = [[(name, new)] for name, new in made if weigh(new) < here]
        if not moves:
            moves = [[(name, new), (second, after)] for name, new in made for second in TIDY
                     for after in _alternatives(s, second, new, memo) if weigh(after) < here]
        for move in moves:
            new = move[-1][1]
            if new in seen:
                continue
            seen.add(new)
            heapq.heappush(frontier, (weigh(new), order, new, path + move))
            order += 1
    return best[3]


def _alternatives(s: Script, name: str, expr: Expr, memo: dict) -> list[Expr]:
    """:func:`rules.alternatives`, remembered for one search (``memo``)."""
    if (name, expr) not in memo:
        budget.check(f"deriving the gradient (tidying, step {len(s.steps) + 1}, {name})")
        memo[name, expr] = rules.alternatives(name, expr)
    return memo[name, expr]
