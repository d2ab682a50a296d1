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

from sympy import (Add, Derivative, Expr, Indexed, KroneckerDelta, Mul, Pow, S, Sum,
                   cancel, expand_mul, exp, factor_terms, log)

from .errors import RuleDoesNotApplyError, UnknownRuleError
from .model import (ABBREVIATIONS, LINEAR, ONE_HOT, PROBABILITY, TARGET_OF, E, E_b, E_lin, E_ls, E_T,
                    E_w, Fact, K, L, Q, SumExcept, W, Y, Z, b, c, depends_on_logits, ell, i,
                    is_abbreviation, is_logit, j, linear, p, q, sig, y, y_ls, z)

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

    @property
    def latex_title(self) -> str:
        return self.tex or self.title


RULES: dict[str, Rule] = {}


def rule(name: str, title: str, why: str, *, fact: Fact | None = None, whole: bool = False,
         tex: str = ""):
    """Register the decorated rewrite under ``name``."""
    def register(fn: Rewrite) -> Rewrite:
        RULES[name] = Rule(name, title, why, fn, fact, whole, tex)
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
        raise RuleDoesNotApplyError(f"rule {name!r} does not apply to {expr}")
    return new


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
    return expr if args == expr.args else expr.func(*args)


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


# ---- definitions -----------------------------------------------------------------------------

def _definition(name: str, abbreviation, title: str, why: str, tex: str = "") -> None:
    """Register the rule that replaces ``abbreviation`` by its definition in the model."""
    def unfold(expr):
        if isinstance(expr, Indexed) and expr.base == abbreviation:
            return ABBREVIATIONS[abbreviation](*expr.indices)
        return ABBREVIATIONS[abbreviation]() if expr == abbreviation else None
    rule(name, title, why, tex=tex)(unfold)


_definition("definition-cross-entropy", E, "definition of E",
            "E = -Σ_i y_i log q_i, the cross-entropy of q against y", tex="definition of $E$")
_definition("definition-softmax", q, "definition of softmax", "q_i = e^{z_i} / Σ_j e^{z_j}")
_definition("definition-weighted-cross-entropy", E_w, "definition of E_w",
            "E_w = -Σ_i w_i y_i log q_i: the loss on class i weighs w_i", tex="definition of $E_w$")
_definition("definition-tempered-cross-entropy", E_T, "definition of E_T",
            "E_T = -Σ_i y_i log p_i, the cross-entropy of the tempered softmax",
            tex="definition of $E_T$")
_definition("definition-tempered-softmax", p, "definition of p",
            "p_i = e^{z_i/T} / Σ_j e^{z_j/T}, the softmax at temperature T", tex="definition of $p$")
_definition("definition-smoothed-target", y_ls, "definition of y'",
            "y'_i = (1 - ε) δ_ic + ε/K: the one-hot target at c, smoothed by ε",
            tex="definition of $y'$")
_definition("definition-smoothed-cross-entropy", E_ls, "definition of E'",
            "E' = -Σ_i y'_i log q_i, the cross-entropy against the smoothed target",
            tex="definition of $E'$")
_definition("definition-binary-cross-entropy", E_b, "definition of E_b",
            "E_b = -Σ_i (y_i log σ_i + (1 - y_i) log(1 - σ_i)): one binary cross-entropy a class",
            tex="definition of $E_b$")
_definition("definition-batch-mean", L, "definition of L",
            "L = (1/N) Σ_n ℓ_n, the mean of the losses of the N examples of a batch",
            tex="definition of $L$")
_definition("definition-sigmoid", sig, "definition of σ", "σ_i = 1 / (1 + e^{-z_i})",
            tex=r"definition of $\sigma$")


@rule("fold-softmax", "definition of softmax",
      "e^{z_i} / Σ_j e^{z_j} is q_i, and e^{z_i/T} / Σ_j e^{z_j/T} is p_i")
def _fold_q(expr):
    if not isinstance(expr, Mul):
        return None
    dens = [f for f in expr.args if isinstance(f, Pow) and isinstance(f.base, Sum)
            and f.exp.is_Integer and f.exp < 0]
    if len(dens) != 1:
        return None
    den = dens[0]
    folded, used = [], []
    for factor in expr.args:
        logits = [x for x in factor.atoms(Indexed) if x.base == z]
        if not isinstance(factor, exp) or len(logits) != 1 or len(folded) == -den.exp:
            continue
        index = logits[0].indices[0]
        base = next((b for b in (q, p) if ABBREVIATIONS[b](index) == factor / den.base), None)
        if base is not None:
            folded.append(base[index])
            used.append(factor)
    if not folded:
        return None
    others = [f for f in expr.args if f not in used and f is not den]
    return Mul(*others, *folded, Pow(den.base, den.exp + len(folded)))


@rule("shift-softmax", "shift invariance",
      "multiply above and below by e^{-a}: e^{-a} e^{z_i} = e^{z_i - a} and "
      "e^{-a} Σ_j e^{z_j} = Σ_j e^{z_j - a}", tex="multiply above and below by $e^{-a}$")
def _shift_softmax(expr, by):
    if not isinstance(expr, Mul):
        return None
    exps = [f for f in expr.args if isinstance(f, exp) and is_logit(f.args[0])]
    dens = [f for f in expr.args if isinstance(f, Pow) and _is_exp_sum(f.base) and f.exp == -1]
    if len(exps) != 1 or len(dens) != 1 or len(expr.args) != 2:
        return None
    bound = dens[0].base.limits[0][0]
    return exp(exps[0].args[0] - by) / Sum(exp(z[bound] - by), (bound, 1, dens[0].base.limits[0][2]))


@rule("common-denominator", "common denominator",
      "bring a sum of fractions over one denominator and cancel: 1 - 1/(1 + e^{-z}) = 1/(1 + e^z)")
def _common_denominator(expr):
    def over_a_sum(term):  # a term with a sum in its denominator: 1/(1 + e^{-z}), ...
        return any(isinstance(f, Pow) and f.exp.is_negative and isinstance(f.base, Add)
                   for f in Mul.make_args(term))
    if not isinstance(expr, Add) or not any(map(over_a_sum, expr.args)):
        return None
    new = cancel(expr)
    return None if new == expr else new


# ---- logarithms and sums ---------------------------------------------------------------------

@rule("log-quotient", "log of a quotient", "log(u/v) = log u - log v, and log e^u = u for real u")
def _log_quotient(expr):
    if not isinstance(expr, log) or not isinstance(expr.args[0], (Mul, Pow)):
        return None
    factors = Mul.make_args(expr.args[0])
    den = [f.base ** -f.exp for f in factors if isinstance(f, Pow) and f.exp.is_negative]
    num = [f for f in factors if not (isinstance(f, Pow) and f.exp.is_negative)]
    if not den or (len(factors) == 1 and factors[0].exp != -1):
        return None
    return log(Mul(*num)) - log(Mul(*den))


def _linear_terms(function, index):
    """``function`` as a list of (constant factor, rest) with the constant free of ``index``."""
    terms = Add.make_args(expand_mul(function))
    return [_split_constant(Mul.make_args(t), lambda f: f.has(index)) for t in terms]


@rule("sum-linearity", "linearity of the sum",
      "Σ_i (a_i + c b_i) = Σ_i a_i + c Σ_i b_i when c does not depend on i")
def _sum_linearity(expr):
    if isinstance(expr, Sum) and len(expr.limits) == 1:
        make = lambda f: Sum(f, expr.limits[0])  # noqa: E731
        index = expr.limits[0][0]
    elif isinstance(expr, SumExcept):
        make = lambda f: SumExcept(f, expr.limits, expr.skip)  # noqa: E731
        index = expr.index
    else:
        return None
    terms = _linear_terms(expr.function, index)
    if len(terms) == 1 and terms[0][0] == 1:
        return None
    return Add(*(const * make(rest) for const, rest in terms))


@rule("sum-of-constant", "sum of a constant", "Σ_{i=1}^{K} f = K f when f does not depend on i")
def _sum_of_constant(expr):
    if not isinstance(expr, Sum) or len(expr.limits) != 1:
        return None
    index, lo, hi = expr.limits[0]
    return None if expr.function.has(index) else (hi - lo + 1) * expr.function


@rule("split-term", "split off the i = k term", "Σ_i f_i = f_k + Σ_{i≠k} f_i, because 1 <= k <= K",
      tex="split off the $i = k$ term")
def _split_term(expr, at):
    if not isinstance(expr, Sum) or len(expr.limits) != 1:
        return None
    index = expr.limits[0][0]
    return expr.function.subs(index, at) + SumExcept(expr.function, expr.limits[0], at)


def _delta_partner(delta, index):
    """For ``δ(index, other)`` return ``other``; None when ``delta`` is not such a delta."""
    if isinstance(delta, KroneckerDelta) and index in delta.args:
        a, b = delta.args
        other = b if a == index else a
        return None if other.has(index) else other
    return None


@rule("kronecker-collapse", "Kronecker delta collapses the sum",
      "Σ_j g_j δ_jk = g_k, because 1 <= k <= K")
def _kronecker_collapse(expr):
    if not isinstance(expr, Sum) or len(expr.limits) != 1:
        return None
    index = expr.limits[0][0]
    for factor in Mul.make_args(expr.function):
        other = _delta_partner(factor, index)
        if other is not None:
            rest = Mul(*(f for f in Mul.make_args(expr.function) if f is not factor))
            return rest.subs(index, other)
    return None


@rule("kronecker-off-diagonal", "δ_ik = 0 for i ≠ k", "in a sum that leaves out i = k, every δ_ik is 0",
      tex=r"$\delta_{ik} = 0$ for $i \neq k$")
def _off_diagonal(expr):
    if not isinstance(expr, SumExcept):
        return None
    zero = {d: S.Zero for d in expr.function.atoms(KroneckerDelta)
            if set(d.args) == {expr.index, expr.skip}}
    if not zero:
        return None
    return SumExcept(expr.function.xreplace(zero), expr.limits, expr.skip)


# ---- derivatives -----------------------------------------------------------------------------

@rule("differentiate", "differentiate both sides", "apply ∂/∂x to both sides of the equation",
      whole=True)
def _differentiate(expr, wrt):
    return Derivative(expr, wrt)


@rule("log-both-sides", "take logarithms", "both sides are positive, so their logarithms are equal",
      whole=True)
def _log_both_sides(expr):
    return log(expr)


@rule("sum-rule", "sum rule", "the derivative of a sum is the sum of the derivatives")
def _sum_rule(expr):
    x = _single_variable(expr)
    if x is None:
        return None
    f = expr.expr
    if isinstance(f, Add):
        return Add(*(Derivative(t, x) for t in f.args))
    if isinstance(f, Sum):
        return Sum(Derivative(f.function, x), *f.limits)
    return None


@rule("constant-factor", "constant factor",
      "a factor that does not depend on the logits moves out of the derivative")
def _constant_factor(expr):
    x = _single_variable(expr)
    if x is None or not isinstance(expr.expr, Mul):
        return None
    const, rest = _split_constant(expr.expr.args, depends_on_logits)
    if const == 1 or rest == 1:
        return None
    return const * Derivative(rest, x)


@rule("chain-through-logits", "chain rule through the logits",
      "E depends on the weights and biases through z_i = Σ_g W_ig x_g + b_i: "
      "∂E/∂v = Σ_i ∂E/∂z_i · ∂z_i/∂v", fact=LINEAR)
def _chain_through_logits(expr):
    v = _single_variable(expr)
    if v is None or getattr(expr, "expr", None) != E_lin or v.base not in (W, b):
        return None
    return Sum(Derivative(E, z[i]) * Derivative(linear(i), v), (i, 1, K))


@rule("parameter-derivative", "∂W_ig/∂W_kd = δ_ik δ_gd",
      "the weights and biases are independent variables: each entry's derivative is 1 by itself "
      "and 0 by any other", tex=r"$\partial W_{ig} / \partial W_{kd} = \delta_{ik} \delta_{gd}$")
def _parameter_derivative(expr):
    v = _single_variable(expr)
    f = getattr(expr, "expr", None)
    if v is None or not (isinstance(f, Indexed) and f.base in (W, b) and v.base in (W, b)):
        return None
    if f.base != v.base:
        return S.Zero
    return Mul(*(KroneckerDelta(p_, q_) for p_, q_ in zip(f.indices, v.indices)))


@rule("independent-examples", "examples are independent",
      "the loss of example n depends on row n of the logits only: ∂ℓ_n/∂Z_{m,k} = δ_nm ∂ℓ_n/∂Z_{n,k}")
def _independent_examples(expr):
    x = _single_variable(expr)
    f = getattr(expr, "expr", None)
    if x is None or not (isinstance(f, Indexed) and f.base == ell and x.base == Z):
        return None
    row, other = f.indices[0], x.indices[0]
    if row == other:
        return None
    return KroneckerDelta(row, other) * Derivative(f, Z[row, x.indices[1]])


@rule("constant-derivative", "constant", "what does not depend on the logits has derivative 0")
def _constant_derivative(expr):
    x = _single_variable(expr)
    if x is None or depends_on_logits(expr.expr):
        return None
    return S.Zero


@rule("gradient-lemma", "gradient (lemma)",
      "∂E/∂z_k = (Σ_i y_i) q_k - y_k for any target y, proved by the derivation logsumexp",
      tex="gradient (lemma)")
def _gradient_lemma(expr):
    x = _single_variable(expr)
    f = getattr(expr, "expr", None)
    if isinstance(f, Indexed) and f.base == ell and x is not None and x.base == Z \
            and x.indices[0] == f.indices[0]:  # one example of a batch: ∂ℓ_n/∂Z_{n,k}
        row, index = x.indices
        return Sum(Y[row, i], (i, 1, K)) * Q[row, index] - Y[row, index]
    if not isinstance(expr, Derivative) or expr.expr not in TARGET_OF:
        return None
    (first, count), *rest = expr.variable_count
    if count != 1 or not is_logit(first):
        return None
    index, target = first.indices[0], TARGET_OF[expr.expr]
    bound = j if index == i else i
    gradient = Sum(target[bound], (bound, 1, K)) * q[index] - target[index]
    return Derivative(gradient, *rest) if rest else gradient


@rule("chain-rule", "chain rule", "∂f(u)/∂x = ∂f/∂u · ∂u/∂x")
def _chain_rule(expr):
    x = _single_variable(expr)
    if x is None or not isinstance(expr.expr, (log, exp)):
        return None
    u = expr.expr.args[0]
    if u == x or not is_abbreviation(u):
        return None
    return Derivative(expr.expr, u) * Derivative(u, x)


@rule("log-derivative", "derivative of log", "∂ log u/∂x = (1/u) ∂u/∂x")
def _log_derivative(expr):
    x = _single_variable(expr)
    if x is None or not isinstance(expr.expr, log):
        return None
    u = expr.expr.args[0]
    return 1 / u if u == x else Derivative(u, x) / u


@rule("exp-derivative", "derivative of exp", "∂e^u/∂x = e^u ∂u/∂x")
def _exp_derivative(expr):
    x = _single_variable(expr)
    if x is None or not isinstance(expr.expr, exp):
        return None
    return expr.expr * Derivative(expr.expr.args[0], x)


@rule("logit-derivative", "∂z_i/∂z_k = δ_ik", "the logits are independent variables",
      tex=r"$\partial z_i / \partial z_k = \delta_{ik}$")
def _logit_derivative(expr):
    x = _single_variable(expr)
    if x is None or not (is_logit(expr.expr) and is_logit(x)) or expr.expr.base != x.base:
        return None
    return Mul(*(KroneckerDelta(a, b) for a, b in zip(expr.expr.indices, x.indices)))


@rule("quotient-rule", "quotient rule", "∂(a/b)/∂x = (b ∂a/∂x - a ∂b/∂x) / b²")
def _quotient_rule(expr):
    x = _single_variable(expr)
    if x is None or not isinstance(expr.expr, Mul):
        return None
    a, b = expr.expr.as_numer_denom()
    if b == 1 or not depends_on_logits(b):
        return None
    return (b * Derivative(a, x) - a * Derivative(b, x)) / b**2


@rule("sigmoid-derivative", "derivative of the sigmoid",
      "∂σ_i/∂z_k = σ_i (1 - σ_i) δ_ik: σ_i depends on z_i only, and "
      "∂σ/∂z = e^{-z} / (1 + e^{-z})² = σ (1 - σ)", tex=r"derivative of $\sigma$")
def _sigmoid_derivative(expr):
    x = _single_variable(expr)
    f = getattr(expr, "expr", None)
    if x is None or not (is_logit(x) and isinstance(f, Indexed) and f.base == sig):
        return None
    return f * (1 - f) * KroneckerDelta(f.indices[0], x.indices[0])


@rule("softmax-jacobian", "softmax Jacobian (lemma)",
      "∂q_i/∂z_k = q_i (δ_ik - q_k), proved by the derivation softmax-jacobian")
def _softmax_jacobian(expr):
    x = _single_variable(expr)
    f = getattr(expr, "expr", None)
    if x is None or not (is_logit(x) and isinstance(f, Indexed) and f.base == q):
        return None
    a, b = f.indices[0], x.indices[0]
    return q[a] * (KroneckerDelta(a, b) - q[b])


# ---- facts about the target ------------------------------------------------------------------

@rule("probability-sum", "Σ_i y_i = 1", PROBABILITY.text, fact=PROBABILITY,
      tex=r"$\textstyle\sum_i y_i = 1$")
def _probability_sum(expr):
    if not isinstance(expr, Sum) or len(expr.limits) != 1:
        return None
    f, index = expr.function, expr.limits[0][0]
    if f == y[index] or (isinstance(f, Indexed) and f.base == Y and f.indices[-1] == index):
        return S.One  # the target, or each row of a batch's targets, sums to 1
    return None


@rule("probability-complement", "Σ_{i≠k} y_i = 1 - y_k",
      "the entries of y other than y_k sum to 1 - y_k, since all of them sum to 1",
      fact=PROBABILITY, tex=r"$\textstyle\sum_{i \neq k} y_i = 1 - y_k$")
def _probability_complement(expr):
    if isinstance(expr, SumExcept) and expr.function == y[expr.index]:
        return 1 - y[expr.skip]
    return None


@rule("smoothed-sum", "Σ_i y'_i = 1",
      "the smoothed target sums to 1, as the first part of label-smoothing shows",
      tex=r"$\textstyle\sum_i y'_i = 1$")
def _smoothed_sum(expr):
    if isinstance(expr, Sum) and len(expr.limits) == 1 and expr.function == y_ls[expr.limits[0][0]]:
        return S.One
    return None


@rule("one-hot-select", "one-hot target", "y_i = δ_ic, so Σ_i y_i f_i = f_c and Σ_i y_i = 1",
      fact=ONE_HOT, tex="special case: $y$ one-hot at class $c$")
def _one_hot_select(expr):
    if not isinstance(expr, Sum) or len(expr.limits) != 1:
        return None
    index = expr.limits[0][0]
    factors = Mul.make_args(expr.function)
    if y[index] not in factors:
        return None
    rest = Mul(*(f for f in factors if f != y[index]))
    return rest.subs(index, c)


# ---- algebra ---------------------------------------------------------------------------------

@rule("expand", "algebra", "multiply out and collect like terms", whole=True)
def _expand(expr):
    return expand_mul(expr)


@rule("factor", "algebra", "take out the common factor", whole=True)
def _factor(expr):
    return factor_terms(expr)
