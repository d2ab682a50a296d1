"""Stage 2 of the pipeline: the rules.

A rule is a small named rewrite with a one-line justification.  Most rules rewrite one kind of
node (a derivative, a sum, a logarithm) and :func:`apply` uses them wherever they match, until
nothing more changes; a few (``expand``, ``factor``, ``differentiate``) act on the whole
expression once.  A rule never prints and never checks: the checker proves every step it makes.
Asking for a rule that does not exist raises :class:`UnknownRuleError`; applying one where it
matches nothing raises :class:`RuleDoesNotApplyError`.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from sympy import Add, Derivative, Expr, Indexed, Mul, Sum, exp

from ..errors import RuleDoesNotApplyError, UnknownRuleError
from ..model import Fact, z

Rewrite = Callable[..., "Expr | None"]


@dataclass(frozen=True)
class Rule:
    name: str
    title: str          # short label printed beside the step
    why: str            # one-line justification
    rewrite: Rewrite    # node -> new node, or None where the rule does not match
    fact: Fact | None = None
    whole: bool = False  # rewrites the whole expression once instead of matching nodes
    tex: str = ""        # the label as LaTeX text, where the title has mathematics in it
    kind: str = ""       # what sort of idea it is: one of KINDS

    @property
    def latex_title(self) -> str:
        return self.tex or self.title


RULES: dict[str, Rule] = {}

#: The kinds of idea a rule is.  A step cites at most two rules, unless all are of one kind
#: (the sum rule with a constant factor, say).
KINDS = {
    "definition": "unfold or fold a definition of the model",
    "differentiate": "apply a derivative to both sides",
    "linearity": "the derivative of a sum or of a constant multiple, or of a constant",
    "derivative": "the derivative of an elementary function, or the chain or quotient rule",
    "variables": "the derivative of one independent variable by another",
    "lemma": "a result proved by another derivation",
    "sum": "sums: linearity, Kronecker deltas, splitting off a term",
    "fact": "a fact about the target",
    "algebra": "algebra: logarithms, multiplying out, factoring, cancelling",
}


def rule(name: str, title: str, why: str, *, kind: str, fact: Fact | None = None,
         whole: bool = False, tex: str = ""):
    """Register the decorated rewrite under ``name``."""
    if kind not in KINDS:
        raise ValueError(f"rule {name!r}: unknown kind {kind!r}")

    def register(fn: Rewrite) -> Rewrite:
        RULES[name] = Rule(name, title, why, fn, fact, whole, tex, kind)
        return fn
    return register


def get(name: str) -> Rule:
    try:
        return RULES[name]
    except KeyError:
        raise UnknownRuleError(f"unknown rule {name!r}; known rules: {', '.join(sorted(RULES))}") from None


def apply(name: str, expr: Expr, **params) -> Expr:
    """Rewrite ``expr`` by rule ``name`` (everywhere it matches, until nothing changes).

    ``params`` go to the rules that take them (``at`` for split-term, ``wrt`` for
    differentiate) and are ignored by the others, so one step can combine rules.
    """
    the_rule = get(name)
    accepted = inspect.signature(the_rule.rewrite).parameters
    params = {p: v for p, v in params.items() if p in accepted}
    if the_rule.whole:
        new = the_rule.rewrite(expr, **params)
    else:
        new = expr
        for _ in range(50):
            newer = _rewrite_nodes(new, the_rule.rewrite, params)
            if newer == new:
                break
            new = newer
    if new is None or new == expr:
        raise RuleDoesNotApplyError(_DoesNotApply(name, expr))
    return new


class _DoesNotApply:
    """The message of a rule that matches nothing, printed only when someone reads it: the
    strategy tries many rules that do not apply, and printing a large expression each time
    would cost more than the rules."""

    def __init__(self, name: str, expr: Expr):
        self.name, self.expr = name, expr

    def __str__(self) -> str:
        return f"rule {self.name!r} does not apply to {self.expr}"


def apply_together(names: tuple[str, ...], expr: Expr, **params) -> Expr:
    """Apply the rules ``names`` in turn, again and again, until none changes anything.

    Every rule named must apply at least once, or :class:`RuleDoesNotApplyError` is raised.
    """
    used: set[str] = set()
    for sweep in range(50):
        before = expr
        for name in names:
            if sweep and get(name).whole:
                continue  # a whole-expression rule acts once
            try:
                expr = apply(name, expr, **params)
                used.add(name)
            except RuleDoesNotApplyError:
                pass
        if expr == before:
            break
    unused = [n for n in names if n not in used]
    if unused:
        raise RuleDoesNotApplyError(f"rule {unused[0]!r} does not apply to {expr}")
    return expr


def _rewrite_nodes(expr: Expr, rewrite: Rewrite, params: dict) -> Expr:
    """One top-down pass: rewrite the outermost matching nodes, rebuild the rest."""
    new = rewrite(expr, **params)
    if new is not None:
        return new
    if not expr.args or isinstance(expr, Indexed):
        return expr
    args = tuple(_rewrite_nodes(a, rewrite, params) for a in expr.args)
    if args == expr.args:
        return expr
    new = expr.func(*args)
    if isinstance(expr, Add) and expr.args != Add(*expr.args).args and \
            isinstance(new, Add) and sorted(map(str, new.args)) == sorted(map(str, args)):
        return Add(*args, evaluate=False)  # terms in the order they were written, kept
    return new


def _single_variable(d) -> Expr | None:
    """The variable of a first derivative, or None for anything else."""
    if isinstance(d, Derivative) and len(d.variable_count) == 1 and d.variable_count[0][1] == 1:
        return d.variables[0]
    return None


def _is_exp_sum(expr) -> bool:
    return (isinstance(expr, Sum) and len(expr.limits) == 1 and isinstance(expr.function, exp)
            and expr.function.args[0] == z[expr.limits[0][0]])


def _split_constant(factors, depends: Callable[[Expr], bool]):
    const = [f for f in factors if not depends(f)]
    rest = [f for f in factors if depends(f)]
    return Mul(*const), Mul(*rest)


# The rules themselves, by topic; importing them registers them.
from . import algebra, calculus, definitions, sums  # noqa: E402,F401
