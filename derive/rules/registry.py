"""The registry of rules, and how a rule is applied.

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
    nodes: tuple[type, ...] = ()  # the kinds of node it rewrites (none for a whole rule)
    once: bool = False   # rewrites one node a step (the outermost it matches), not all
    choices: Callable[[Expr], list] | None = None  # every way it can rewrite a node, best first

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


def rule(name: str, title: str, why: str, *, kind: str, nodes: tuple[type, ...] = (),
         fact: Fact | None = None, whole: bool = False, tex: str = "", once: bool = False,
         choices: Callable[[Expr], list] | None = None):
    """Register the decorated rewrite under ``name``; it rewrites nodes of the types ``nodes``
    (or, with ``whole``, the whole expression once).  A rule that can rewrite a node in several
    ways (which common factor to take out) gives them all by ``choices``; its rewrite is the
    first of them."""
    if kind not in KINDS:
        raise ValueError(f"rule {name!r}: unknown kind {kind!r}")
    if whole == bool(nodes):
        raise ValueError(f"rule {name!r}: give the kinds of node it rewrites, or whole=True")

    def register(fn: Rewrite) -> Rewrite:
        RULES[name] = Rule(name, title, why, fn, fact, whole, tex, kind, tuple(nodes), once,
                           choices)
        return fn
    return register


def get(name: str) -> Rule:
    try:
        return RULES[name]
    except KeyError:
        raise UnknownRuleError(f"unknown rule {name!r}; known rules: {', '.join(sorted(RULES))}") from None


def accepted(name: str, params: dict) -> dict:
    """The ``params`` that rule ``name`` takes."""
    taken = inspect.signature(get(name).rewrite).parameters
    return {p: v for p, v in params.items() if p in taken}


def attempt(name: str, expr: Expr, *, hold: bool = False, **params) -> Expr | None:
    """``expr`` rewritten by rule ``name`` (everywhere it matches, until nothing changes; only
    the outermost node it matches for a rule that acts ``once``), or None where it matches
    nothing.

    ``params`` go to the rules that take them (``at`` for split-term, ``wrt`` for
    differentiate) and are ignored by the others, so one step can combine rules.  With
    ``hold``, terms that a rewrite makes equal or opposite stay apart (an unevaluated sum), so
    that collecting them is a step of its own.
    """
    the_rule = get(name)
    params = accepted(name, params)
    if the_rule.whole:
        new = the_rule.rewrite(expr, **params)
    else:
        new = expr
        for _ in range(1 if the_rule.once else 50):
            newer = _rewrite_nodes(new, the_rule, params, hold)
            if newer == new:
                break
            new = newer
    return None if new is None or new == expr else new


def alternatives(name: str, expr: Expr) -> list[Expr]:
    """Every form that rule ``name``, acting once, can make of ``expr``: one for each of its
    ``choices`` at the outermost node where it has any; what :func:`attempt` makes for a rule
    without choices."""
    the_rule = get(name)
    if the_rule.choices is None:
        new = attempt(name, expr, hold=True)
        return [] if new is None else [new]
    for node in preorder_nodes(expr):
        found = the_rule.choices(node) if isinstance(node, the_rule.nodes) else []
        if found:
            return [expr.xreplace({node: choice}) for choice in found]
    return []


def preorder_nodes(expr: Expr):
    """The nodes of ``expr``, outermost first, not looking inside an indexed entry."""
    yield expr
    if not isinstance(expr, Indexed):
        for a in expr.args:
            yield from preorder_nodes(a)


def apply(name: str, expr: Expr, **params) -> Expr:
    """Rewrite ``expr`` by rule ``name``, as :func:`attempt`; :class:`RuleDoesNotApplyError`
    where it matches nothing."""
    new = attempt(name, expr, **params)
    if new is None:
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


def _rewrite_nodes(expr: Expr, the_rule: Rule, params: dict, hold: bool = False) -> Expr:
    """One top-down pass: rewrite the outermost matching nodes (the first one only, for a rule
    that acts once), rebuild the rest."""
    if isinstance(expr, the_rule.nodes):
        new = the_rule.rewrite(expr, **params)
        if new is not None:
            return new
    if not expr.args or isinstance(expr, Indexed):
        return expr
    args, changed = [], False
    for a in expr.args:
        new_arg = a if changed and the_rule.once else _rewrite_nodes(a, the_rule, params, hold)
        changed = changed or new_arg != a
        args.append(new_arg)
    if not changed:
        return expr
    if hold and isinstance(expr, Add):
        terms = [a for a in args if a != 0]
        if len(terms) > 1 and len(Add.make_args(Add(*terms))) < len(terms):
            return Add(*terms, evaluate=False)  # terms that collect, left for a step that does
    new = expr.func(*args)
    if isinstance(expr, Add) and expr.args != Add(*expr.args).args and isinstance(new, Add) \
            and sorted(map(str, new.args)) == sorted(map(str, args)):
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
