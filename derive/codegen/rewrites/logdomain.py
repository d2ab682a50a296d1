"""The log-domain rewrites: products, powers, ratios and logs of softmax quantities computed
from their logs, which stay finite where the quantities themselves underflow or overflow.

:func:`log_form` gives, for a positive array formula, a formula of its log that neither
overflows nor underflows: log q is the log-softmax, log e^u is u, log(a b) is log a + log b,
log of a sum of positive terms is a log-add-exp of their logs, log Σ_j f_j is a max-shifted
log-sum-exp.  The rewrites below use it wherever a value would be computed from quantities
that underflow (q_i of a logit far below the largest) or overflow (e^{z} of a large logit).
Each is an identity of the reals for positive arguments (log(1 - q) from the other classes' q
is one of the model: Σ_j q_j = 1), tested on its own in ``tests/test_rewrites.py``.
"""
from __future__ import annotations

from sympy import Add, Expr, Mul, Number, Pow, Symbol, collect, exp, factor_terms, log, oo

from ..ir import (CLASSES, LOG_PROBS, LOGITS, PROBS, SHIFT, SHIFTED, TARGET, AtLabel, ClassAt,
                  ClassSum, LogAddExp, LogOf, LogOneMinusExp, LogOneMinusSoftmax, LogSoftmax,
                  LogSumExp, OneMinusExp, SetAtLabel, Sigmoid, Softmax, SoftPlus, SumOffLabel)
from . import Rewrite


def log_form(e: Expr, arrays: bool = True) -> Expr | None:
    """A formula of log ``e`` that is finite wherever log ``e`` is, or None where ``e`` is not
    known to be positive.  ``arrays``: a parameter or per-class array whose domain is > 0 (its
    symbol is positive) has its log taken; otherwise it is not a factor of a log form."""
    if e == PROBS:
        return LOG_PROBS
    if isinstance(e, exp):
        return e.args[0]
    if isinstance(e, Softmax):
        return LogSoftmax(e.args[0])
    if isinstance(e, Sigmoid):
        return -SoftPlus(-e.args[0])
    if isinstance(e, OneMinusExp):
        return LogOneMinusExp(e.args[0])
    if e == TARGET:  # -inf where a class has probability 0, and e^{-inf + u} = 0
        return LogOf(TARGET)
    if isinstance(e, AtLabel):
        inner = log_form(e.args[0], arrays)
        return AtLabel(inner) if inner is not None else None
    if isinstance(e, Number):
        return log(e) if e.is_positive else None
    if e == CLASSES:
        return log(e)
    if isinstance(e, (Symbol, ClassAt)):  # a parameter or array whose domain is > 0
        value = e.args[0] if isinstance(e, ClassAt) else e
        return log(e) if arrays and value.is_positive else None
    if isinstance(e, Pow):
        inner = log_form(e.base, arrays)
        return e.exp * inner if inner is not None else None
    if isinstance(e, Mul):
        parts = [log_form(f, arrays) for f in e.args]
        return Add(*parts) if all(p is not None for p in parts) else None
    if isinstance(e, Add):
        parts = [log_form(t, arrays) for t in e.args]
        if any(p is None for p in parts):
            return None
        out = parts[0]
        for p in parts[1:]:
            out = LogAddExp(out, p)
        return out
    if isinstance(e, ClassSum):
        if e.args[0] == exp(LOGITS):  # the plain softmax denominator: see logsumexp
            return SHIFT + log(ClassSum(exp(SHIFTED)))
        inner = log_form(e.args[0], arrays)
        return LogSumExp(inner) if inner is not None else None
    if isinstance(e, SumOffLabel):
        inner = log_form(e.args[0], arrays)
        return LogSumExp(SetAtLabel(inner, -oo)) if inner is not None else None
    return None


def _log_domain(e):
    """log x, for a positive x other than q, as the log form of x."""
    if not isinstance(e, log) or e.args[0] in (PROBS, TARGET) or isinstance(e.args[0], Symbol):
        return None
    out = log_form(e.args[0])
    return out if out is not None and out != e else None


def _log_one_minus_softmax(e):
    """log(1 - q_c) = log Σ_(j≠c) q_j, and log(1 - q) at every class with the top's from the
    others: exact however near 1 q is (Σ_j q_j = 1)."""
    if isinstance(e, LogOneMinusExp) and e.args[0] == AtLabel(LOG_PROBS):
        return LogSumExp(SetAtLabel(LOG_PROBS, -oo))
    if isinstance(e, LogOneMinusExp) and e.args[0] == LOG_PROBS:
        return LogOneMinusSoftmax(LOG_PROBS)
    return None


def _softmax_from_log(e):
    """softmax(u) = e^{log softmax(u)}: one computation of the max-shifted sum for both."""
    return exp(LogSoftmax(e.args[0])) if isinstance(e, Softmax) else None


def _soft(e) -> bool:
    """Whether ``e`` is a quantity made of softmax outputs or exponentials, which may underflow
    or overflow where its log does not."""
    base = e.base if isinstance(e, Pow) else e
    if isinstance(base, AtLabel):
        base = base.args[0]
    return base == PROBS or isinstance(base, (exp, Softmax, Sigmoid, OneMinusExp)) or (
        isinstance(base, (Add, ClassSum, SumOffLabel)) and base.has(exp, PROBS, Softmax)
        and log_form(base) is not None)


def _risky(f) -> bool:
    """A factor that can overflow where the product does not: a power of a softmax quantity
    with an exponent that is negative or not a number, a reciprocal of a sum of exponentials,
    e^u of a u from the log domain (a log of q, times a parameter), or a sum of such terms."""
    if isinstance(f, Pow) and isinstance(f.base, OneMinusExp):  # 1 / (1 - q): (1 - q)^γ is
        return f.exp.is_Number and f.exp < 0                    # computed as a power
    if isinstance(f, Pow) and _soft(f.base):
        return not (f.exp.is_Number and f.exp > 0)
    if isinstance(f, exp):
        return f.args[0].has(LOG_PROBS, LogSumExp, LogAddExp, LogSoftmax, SoftPlus, log, LogOf)
    if isinstance(f, Add):  # 1 + e^u of such a u
        return _soft(f) and any(_risky(g) for t in f.args for g in Mul.make_args(t))
    return False


def _power_from_log(e):
    """q^a = e^{a log q} for an exponent a that is not a positive integer (√q too)."""
    if isinstance(e, Pow) and not (e.exp.is_Integer and e.exp > 0) and _soft(e.base) \
            and not isinstance(e.base, (OneMinusExp, Sigmoid)):
        inner = log_form(e.base)  # a sum of r_j e^{z_j} is positive: r is, inside a log or
        if inner is not None:     # below a fraction bar
            return exp(e.exp * inner)
    return None


def _product_from_logs(e):
    """A product of softmax quantities, one of which may overflow, as e^{Σ logs}; the rest of
    the product (parameters, arrays, signs) multiplies it."""
    if not isinstance(e, Mul):
        return None
    factors = Mul.make_args(e)
    soft = [f for f in factors if (_soft(f) or f == TARGET or isinstance(f, Pow)
                                   and f.base == TARGET) and _log_of_factor(f) is not None]
    if len(soft) < 2 or not any(_risky(f) for f in soft):
        return None
    rest = [f for f in factors if f not in soft]
    # log q collected: q e^{-γ log q} is e^{(1 - γ) log q}, which is 0 (not NaN) where q = 0
    total = collect(Add(*(_log_of_factor(f) for f in soft)), [LOG_PROBS, AtLabel(LOG_PROBS)])
    return Mul(exp(total), *rest)


def _log_of_factor(f):
    """The log form of a factor of a product; a per-class array or parameter counts as
    positive inside a sum of exponentials (which is, where the loss takes its log or divides
    by it), not as a factor of its own."""
    base = f.base if isinstance(f, Pow) else f
    return log_form(f, arrays=isinstance(base, (Add, ClassSum, SumOffLabel)))


def _quotient_of_sum(e):
    """(a - b) / D, with D a sum of exponentials: a / D - b / D, each computed from logs where
    it is a product of softmax quantities (tanh u = (e^u - e^{-u}) / (e^u + e^{-u}))."""
    if not isinstance(e, Mul):
        return None
    factors = Mul.make_args(e)
    # a reciprocal: 1/D (or e^{-L}, L the log of D), which may overflow where a / D does not;
    # a factor that overflows with the product (e^{64 Σ y/q}) is not distributed: ∞ - ∞
    if not any(_risky(f) and (isinstance(f, Pow) and f.exp.is_negative or isinstance(f, exp)
                              and f.args[0].could_extract_minus_sign()) for f in factors):
        return None
    for f in factors:
        if isinstance(f, Add) and any(_soft(g) for t in f.args for g in Mul.make_args(t)):
            rest = [g for g in factors if g is not f]
            common = factor_terms(f)
            if common != f and isinstance(common, Mul):  # q_k (t_k - S) / S: not distributed
                return Mul(common, *rest)
            terms = [Mul(t, *rest) for t in f.args]
            return Add(*(_product_from_logs(t) or t for t in terms))
    return None


def _log_share(e):
    """log a - log(e^{log a} + e^{log b}) = -softplus(log b - log a), the log of a's share of
    a + b: exactly 0 where b = 0, and with every digit where b ≪ a."""
    if not isinstance(e, Add):
        return None
    for t in e.args:
        if isinstance(-t, LogAddExp):
            first, second = (-t).args
            for mine, other in ((first, second), (second, first)):
                if mine in e.args and not mine.has(LogOf):  # log y may be -inf
                    rest = [u for u in e.args if u != t and u != mine]
                    return Add(-SoftPlus(other - mine), *rest)
    return None


def _sum_off_label(e):
    """Σ_j f_j - f_c = Σ_(j≠c) f_j: exact where f_c dominates the sum."""
    if not isinstance(e, Add):
        return None
    for t in e.args:
        if isinstance(t, ClassSum):
            f = t.args[0]
            for at in (AtLabel(f), f.func(AtLabel(f.args[0])) if isinstance(f, exp) else None):
                if at is not None and -at in e.args:
                    rest = [u for u in e.args if u not in (t, -at)]
                    return Add(SumOffLabel(f), *rest)
    return None


LOG_DOMAIN = (
    Rewrite("log-share", "log a - log(a + b) = -softplus(log b - log a): exactly 0 where b = 0, "
            "and exact where b ≪ a", _log_share),
    Rewrite("sum-off-label", "Σ_j f_j - f_c = Σ_(j≠c) f_j: no digit lost where f_c dominates",
            _sum_off_label),
    Rewrite("log-domain", "log of a positive product, power, ratio or sum as a sum of logs, "
            "u for log e^u, a max-shifted log-add-exp for a sum and a log-sum-exp for Σ_j: "
            "finite where the values underflow or overflow", _log_domain),
    Rewrite("log-one-minus-softmax-exact", "log(1 - q_c) = log Σ_(j≠c) q_j, and at the top "
            "log(1 - q_top) = log Σ_(j≠top) q_j: exact however near 1 q is",
            _log_one_minus_softmax),
    Rewrite("softmax-from-log", "softmax(u) = e^{log softmax(u)}: a softmax over modified "
            "logits shares its log-sum-exp with its log, exact at the top", _softmax_from_log),
    Rewrite("power-from-log", "q^a = e^{a log q} for an exponent that is not a positive "
            "integer: finite where q underflows", _power_from_log),
    Rewrite("quotient-of-sum", "(a - b) / D = a / D - b / D for a sum of exponentials D, each "
            "then computed from logs", _quotient_of_sum),
    Rewrite("product-from-logs", "a product of softmax quantities of which one may overflow "
            "as e^{Σ logs}: no 0 · ∞", _product_from_logs),
)
