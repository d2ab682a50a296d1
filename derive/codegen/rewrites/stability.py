"""The stability rewrites: forms of the softmax, its log and log-sum-exp that neither overflow
nor cancel, each an identity of the model (cited to a checked step) or of the reals."""
from __future__ import annotations

from typing import Callable

from sympy import Add, Expr, Mul, Pow, S, exp, log

from ..ir import (CLASSES, LOG_PROBS, LOGITS, PROBS, SHIFT, SHIFTED, TARGET, AtLabel, AtTop,
                  BalanceTop, ClassSum, Log1p, LogOf, LogOneMinusExp, LogRatio, LogSoftmax,
                  LogSumExp, OneMinusExp, SetAtLabel, Sigmoid, Softmax, SoftPlus, SumOffTop,
                  SumOffTopOf, SumXLogQ, XLogY)
from . import Rewrite, optimize
from .logdomain import LOG_DOMAIN


def _is_one_minus(e: Expr, what: Callable[[Expr], bool]):
    """The x of ``e = 1 - x`` where ``what(x)``; None otherwise."""
    if isinstance(e, Add) and len(e.args) == 2 and S.One in e.args:
        (other,) = [t for t in e.args if t != 1]
        if other.could_extract_minus_sign() and what(-other):
            return -other
    return None


def _log_of_probs(e):
    if isinstance(e, log) and e.args[0] == PROBS:
        return LOG_PROBS
    if isinstance(e, log) and e.args[0] == AtLabel(PROBS):
        return AtLabel(LOG_PROBS)
    return None


def _softmax_fold(e):
    """e^{u_k} / Σ_j e^{u_j} (or its entry at the label, e^{u_c} / Σ_j e^{u_j}) as softmax(u)."""
    if not isinstance(e, Mul):
        return None
    for f in e.args:
        if isinstance(f, Pow) and f.exp == -1 and isinstance(f.base, ClassSum) \
                and isinstance(f.base.args[0], exp):
            u = f.base.args[0].args[0]
            if u == SHIFTED:  # q's own definition, written out on purpose
                return None
            softmax = PROBS if u == LOGITS else Softmax(u)
            for top, value in ((exp(u), softmax), (exp(AtLabel(u)), AtLabel(softmax))):
                if top in e.args:
                    rest = [g for g in e.args if g not in (f, top)]
                    return Mul(value, *rest)
    return None


def _log_of_softmax(e):
    if isinstance(e, log) and isinstance(e.args[0], Softmax):
        return LogSoftmax(e.args[0].args[0])
    if isinstance(e, log) and isinstance(e.args[0], AtLabel) \
            and isinstance(e.args[0].args[0], Softmax):
        return AtLabel(LogSoftmax(e.args[0].args[0].args[0]))
    return None


def _logsumexp(e):
    if isinstance(e, log) and isinstance(e.args[0], ClassSum) and isinstance(e.args[0].args[0], exp):
        u = e.args[0].args[0].args[0]
        if u == SHIFTED:  # already max-shifted: see log1p-logsumexp
            return None
        return SHIFT + log(ClassSum(exp(SHIFTED))) if u == LOGITS else LogSumExp(u)
    return None


def _one_minus_probs(e):
    x = _is_one_minus(e, lambda x: x in (PROBS, AtLabel(PROBS)))
    if x is not None:
        return OneMinusExp(LOG_PROBS if x == PROBS else AtLabel(LOG_PROBS))
    x = _is_one_minus(-e, lambda x: x in (PROBS, AtLabel(PROBS)))  # q - 1 = -(1 - q)
    if x is not None:
        return -OneMinusExp(LOG_PROBS if x == PROBS else AtLabel(LOG_PROBS))
    return None


def _one_minus_exponential(e):
    x = _is_one_minus(e, lambda x: isinstance(x, exp))
    if x is not None:
        return OneMinusExp(x.args[0])
    x = _is_one_minus(-e, lambda x: isinstance(x, exp))  # e^l - 1 = -(1 - e^l)
    return -OneMinusExp(x.args[0]) if x is not None else None


def _softmax_at_label(e):
    if isinstance(e, AtLabel) and isinstance(e.args[0], Softmax):
        return exp(AtLabel(LogSoftmax(e.args[0].args[0])))
    return None


def _log_one_minus_exp(e):
    if isinstance(e, log) and isinstance(e.args[0], OneMinusExp):
        return LogOneMinusExp(e.args[0].args[0])
    return None


def _power_times_log(e):
    """(1 - e^l)^p · l → (1 - e^l)^{p+1} · l / (1 - e^l): finite at l = 0 for any p > -1."""
    if not isinstance(e, Mul):
        return None
    for f in e.args:
        if isinstance(f, Pow) and isinstance(f.base, OneMinusExp) and f.base.args[0] in e.args \
                and not f.exp.is_nonnegative:
            l = f.base.args[0]
            rest = [g for g in e.args if g not in (f, l)]
            return Mul(Pow(f.base, f.exp + 1), LogRatio(l), *rest)
    return None


def _log_sigmoid(e):
    if isinstance(e, log) and isinstance(e.args[0], Sigmoid):
        return -SoftPlus(-e.args[0].args[0])
    return None


def _sigmoid_complement(e):
    x = _is_one_minus(e, lambda x: isinstance(x, Sigmoid))
    if x is not None:
        return Sigmoid(-x.args[0])
    x = _is_one_minus(-e, lambda x: isinstance(x, Sigmoid))  # σ(u) - 1 = -σ(-u)
    return -Sigmoid(-x.args[0]) if x is not None else None


def _sigmoid_minus_target(e):
    """σ(u) - y = σ(u) (1 - y) - y σ(-u): exact at y = 1 where σ(u) → 1, and at y = 0."""
    if isinstance(e, Add) and len(e.args) == 2 and -TARGET in e.args:
        (s,) = [t for t in e.args if t != -TARGET]
        if isinstance(s, Sigmoid):
            return s * (1 - TARGET) - TARGET * Sigmoid(-s.args[0])
    return None


def _xlogy(e):
    """y log y = xlogy(y, y), and y (a + log y) = y a + xlogy(y, y): 0 where y = 0."""
    if isinstance(e, Mul) and TARGET in e.args and log(TARGET) in e.args:
        rest = [g for g in e.args if g not in (TARGET, log(TARGET))]
        return Mul(XLogY(TARGET, TARGET), *rest)
    if isinstance(e, Mul) and TARGET in e.args:
        for f in e.args:
            for log_y in (log(TARGET), LogOf(TARGET)):
                coeff = f.coeff(log_y) if isinstance(f, Add) else S.Zero
                if coeff != 0 and not coeff.has(TARGET):
                    rest = [g for g in e.args if g is not f]
                    return Mul(*rest) * (f - coeff * log_y) + coeff * Mul(
                        XLogY(TARGET, TARGET), *[g for g in rest if g != TARGET])
    return None


REWRITES = (
    Rewrite("log-softmax", "log q_k = z_k - a - log Σ_j e^{z_j - a} with a = max_j z_j: no "
            "exponent is positive, and log q is exact where q underflows",
            _log_of_probs, ("shift-invariance", "log-quotient")),
    Rewrite("fold-softmax", "e^{u_k} / Σ_j e^{u_j} is the softmax of u, computed max-shifted",
            _softmax_fold, ("shift-invariance", "shift-softmax")),
    Rewrite("log-of-softmax", "log(e^{u_k} / Σ_j e^{u_j}) = u_k - log Σ_j e^{u_j}",
            _log_of_softmax, ("shift-invariance", "log-quotient")),
    Rewrite("logsumexp", "log Σ_j e^{u_j} = m + log Σ_j e^{u_j - m} with m = max_j u_j: "
            "nothing overflows", _logsumexp, ("shift-invariance", "log-quotient")),
    Rewrite("one-minus-softmax", "1 - q_k = -expm1(log q_k): exact as q_k → 1",
            _one_minus_probs),
    Rewrite("softmax-at-label", "softmax(u)_c = e^{u_c - log Σ_j e^{u_j}}: its log, and 1 - it, "
            "are then exact", _softmax_at_label, ("shift-invariance", "log-quotient")),
    Rewrite("one-minus-exp", "1 - e^l = -expm1(l): exact as l → 0", _one_minus_exponential),
    Rewrite("log-one-minus-softmax", "log(1 - q_k) from log q_k without cancellation",
            _log_one_minus_exp),
    Rewrite("power-times-log", "(1 - q)^p log q = (1 - q)^{p+1} · log q / (1 - q), whose last "
            "factor tends to -1 as q → 1: no 0 · ∞ for p < 0", _power_times_log),
    Rewrite("log-sigmoid", "log σ(u) = -log(1 + e^{-u}), computed as -softplus(-u)",
            _log_sigmoid, ("log-sigmoid", "log-quotient")),
    Rewrite("sigmoid-complement", "1 - σ(u) = σ(-u): exact where σ(u) → 1",
            _sigmoid_complement, ("log-sigmoid", "multiply-through")),
    Rewrite("xlogy", "y log y with 0 log 0 = 0", _xlogy),
    Rewrite("sigmoid-minus-target", "σ(u) - y = σ(u)(1 - y) - y σ(-u), since 1 - σ(u) = "
            "σ(-u): exact where σ(u) → 1 and y = 1", _sigmoid_minus_target,
            ("log-sigmoid", "multiply-through")),
    *LOG_DOMAIN,
)



def _masked_sum(e):
    """Σ_j x_j log q_j, linear in log q, as a sum in which 0 · log 0 = 0."""
    if isinstance(e, ClassSum) and isinstance(e.args[0], Mul) and LOG_PROBS in e.args[0].args:
        rest = e.args[0] / LOG_PROBS
        if not rest.has(LOG_PROBS):
            return SumXLogQ(rest, LOG_PROBS)
    return None


MASKED_SUM = Rewrite("masked-sum", "Σ_j y_j log q_j with 0 · log 0 = 0 where a class is "
                     "masked (q_j = 0): the limit of y log q as y → 0", _masked_sum)


def _log1p_logsumexp(e):
    """Σ_j e^{z_j - a} as 1 + the sum of the other terms, and the log of that as log1p."""
    exps = exp(SHIFTED)
    if e == ClassSum(exps):
        return 1 + SumOffTop(exps)
    if isinstance(e, log) and e.args[0] == 1 + SumOffTop(exps):
        return Log1p(SumOffTop(exps))
    return None


LOG1P_LOGSUMEXP = Rewrite(
    "log1p-logsumexp", "Σ_j e^{z_j - a} = 1 + Σ_{j≠top} e^{z_j - a} and its log "
    "log1p(Σ_{j≠top} e^{z_j - a}), with a = z_top the largest logit: exact where the top "
    "dominates, so that 1 - q there keeps its digits", _log1p_logsumexp)


def exact_log_sum(expr: Expr, used: set[str]) -> Expr:
    """``expr`` with Σ_j e^{z_j - a} as 1 + the sum of the other terms, and its log as log1p of
    that sum: exact where the top term dominates."""
    return optimize(expr, (LOG1P_LOGSUMEXP,), used)


def _sum_of_constant(e, shape):
    if isinstance(e, ClassSum) and not shape(e.args[0]).classes:
        return CLASSES * e.args[0]
    return None


def _expectation_from_top(e, shape):
    """Σ_j q_j x_j = x_top + Σ_(j≠top) q_j (x_j - x_top), since Σ_j q_j = 1."""
    if isinstance(e, ClassSum) and isinstance(e.args[0], Mul) and PROBS in e.args[0].args:
        x = e.args[0] / PROBS
        # not Σ_j q_j y_j g_j, which is q_c g_c for labels (one-hot-select)
        if shape(x).classes and not x.has(AtTop) and TARGET not in Mul.make_args(x):
            return AtTop(x) + SumOffTopOf(PROBS, x - AtTop(x))
    return None


EXPECTATION_FROM_TOP = Rewrite(
    "expectation-from-top", "Σ_j q_j x_j = x_top + Σ_(j≠top) q_j (x_j - x_top), since Σ_j q_j "
    "= 1: x_k - Σ_j q_j x_j has no difference of two numbers near x_top where q_top is near 1",
    _expectation_from_top, ("shift-invariance", "shift-softmax"), context=("shape",))

def _balance_top(e, shape):
    """The gradient's entry at the top as minus the sum of the others; for labels, where the
    gradient is q_k R off the label (R one value a row), its entry at the label is -R (1 - q_c),
    computed from the rows alone."""
    if isinstance(e, SetAtLabel):
        rest = e.args[0] / PROBS
        if e.args[0].has(PROBS) and not rest.has(PROBS) and not shape(rest).classes:
            return SetAtLabel(e.args[0], -rest * OneMinusExp(AtLabel(LOG_PROBS)))
    return BalanceTop(e)


BALANCE_TOP = Rewrite(
    "balance-top", "Σ_k ∂E/∂z_k = 0 for a loss unchanged by z + a (checked at random logits "
    "and shifts; q is, by shift-invariance), "
    "so the gradient's entry at the largest logit is minus the sum of the others (for labels, "
    "q_k R off the label makes it -R (1 - q_c) at the label): exact where it is a difference of "
    "two numbers near 1", _balance_top, ("shift-invariance", "shift-softmax"),
    context=("shape",), whole=True)

SUM_OF_CONSTANT = Rewrite("sum-of-constant", "Σ_{i=1}^K x = K x for an x that is the same "
                          "for every class", _sum_of_constant, context=("shape",))
