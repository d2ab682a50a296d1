"""Each rewrite of the lowering on its own: its pattern, its replacement, and agreement of the
two over input ranges, including the ranges where the rewrite matters (q → 1, q underflowing,
|z| = 1e3).

The pattern's meaning is evaluated with mpmath at 3000 digits (the reference); the replacement is
evaluated in float64 with the NumPy runtime's own helpers, as generated code computes it; the
pattern evaluated naively in float64 shows where the rewrite matters.
"""
import functools

import mpmath
import numpy as np
import pytest
from sympy import Add, Mul, Number, Pow, Symbol, exp, log

from derive.codegen.backends import numpy_runtime as rt
from derive.codegen.ir import (CLASS, CLASSES, FULL, LOG_PROBS, LOGITS, PROBS, SCALAR, SHIFT,
                               SHIFTED, TARGET, AtLabel, AtTop, BalanceTop, ClassSum, Log1p, LogAddExp,
                               LogOf, LogOneMinusExp, LogOneMinusSoftmax, LogRatio, LogSoftmax,
                               LogSumExp, OneHot, OneMinusExp, SetAtLabel, Sigmoid, Softmax,
                               SoftPlus, SumOffLabel, SumOffTop, SumOffTopOf, SumXLogQ, XLogY)
from derive.codegen.lower import CITED
from derive.codegen.rewrites import optimize
from derive.codegen.to_array import shape_of

mpmath.mp.dps = 3000  # 1 - q to its last digit where q = 1 - e^(-5000)
GAMMA = Symbol("v_gamma")
_vexp, _vlog = np.vectorize(mpmath.exp, otypes=[object]), np.vectorize(mpmath.log, otypes=[object])


class Exact:
    """The meaning of each node, with mpmath numbers in object arrays."""
    exp, log = staticmethod(_vexp), staticmethod(_vlog)

    @staticmethod
    def number(n):
        return mpmath.mpf(int(n.p)) / int(n.q) if n.is_Rational else mpmath.mpf(float(n))


class Naive(Exact):
    """The same meanings in float64, computed as written."""
    exp, log = staticmethod(np.exp), staticmethod(np.log)

    @staticmethod
    def number(n):
        return float(n)


def meaning(e, env, lib):
    """The value of the array formula ``e``, each operation by its definition."""
    def ev(x):
        return meaning(x, env, lib)
    if isinstance(e, Symbol):
        return env[e]
    if isinstance(e, Number):
        return lib.number(e)
    if isinstance(e, Add):
        out = ev(e.args[0])
        for a in e.args[1:]:
            out = out + ev(a)
        return out
    if isinstance(e, Mul):  # a factor of 0 gives 0: y log q → 0 as y → 0
        out = ev(e.args[0])
        for a in e.args[1:]:
            v = ev(a)
            out = np.where((out == 0) | (v == 0), mpmath.mpf(0), out * v) if lib is Exact \
                else out * v
        return out
    if isinstance(e, Pow):
        return ev(e.base) ** ev(e.exp)
    one = lib.number(Number(1))
    table = {
        exp: lambda u: lib.exp(u), log: lambda u: lib.log(u),
        ClassSum: lambda u: np.sum(np.broadcast_to(u, env[LOGITS].shape), axis=-1, keepdims=True),
        AtLabel: lambda u: np.take_along_axis(np.broadcast_to(u, env[LOGITS].shape),
                                              env["labels"], axis=-1),
        SumOffTop: lambda u: np.sum(u, axis=-1, keepdims=True) - one,
        SumOffLabel: lambda u: np.sum(np.broadcast_to(u, env[LOGITS].shape), axis=-1, keepdims=True)
        - np.take_along_axis(np.broadcast_to(u, env[LOGITS].shape), env["labels"], axis=-1),
        Log1p: lambda u: lib.log(one + u), LogSumExp: lambda u: lib.log(
            np.sum(lib.exp(u), axis=-1, keepdims=True)),
        Softmax: lambda u: lib.exp(u) / np.sum(lib.exp(u), axis=-1, keepdims=True),
        LogSoftmax: lambda u: lib.log(lib.exp(u) / np.sum(lib.exp(u), axis=-1, keepdims=True)),
        SoftPlus: lambda u: lib.log(one + lib.exp(u)), Sigmoid: lambda u: one / (one + lib.exp(-u)),
        OneMinusExp: lambda u: one - lib.exp(u), LogOneMinusExp: lambda u: lib.log(one - lib.exp(u)),
        LogRatio: lambda u: u / (one - lib.exp(u)),
        XLogY: lambda x, y: np.where(x == 0, 0 * one, x * lib.log(np.where(x == 0, one, y))),
        SumXLogQ: lambda t, l: np.sum(np.where(t == 0, 0 * one, t * l), axis=-1, keepdims=True),
        OneHot: lambda _: np.eye(env[LOGITS].shape[-1], dtype=object if lib is Exact else float)[
            env["labels"][..., 0]],
        LogAddExp: lambda a, b: lib.log(lib.exp(a) + lib.exp(b)), LogOf: lambda u: lib.log(u),
        LogOneMinusSoftmax: lambda u: lib.log(one - lib.exp(u)),
        BalanceTop: lambda g: g,  # an identity of the model: its meaning is the gradient's
        AtTop: lambda u: np.take_along_axis(np.broadcast_to(u, env[LOGITS].shape), env["top"],
                                            axis=-1),
        SumOffTopOf: lambda w, u: _off_top(np.where(w == 0, 0 * one, w * u), env),
        SetAtLabel: lambda v, r: _set(np.broadcast_to(v, env[LOGITS].shape), env["labels"], r),
    }
    return table[type(e)](*map(ev, e.args))


def _off_top(values, env):
    values = np.broadcast_to(values, env[LOGITS].shape)
    return np.sum(values, axis=-1, keepdims=True) - np.take_along_axis(values, env["top"], -1)


def _set(values, labels, row):
    out = np.array(values)
    np.put_along_axis(out, labels, row, axis=-1)
    return out


def runtime(e, env):
    """The value of ``e`` as generated code computes it: the runtime's helpers, in float64."""
    def ev(x):
        return runtime(x, env)
    calls = {
        exp: np.exp, log: np.log, Log1p: np.log1p,
        ClassSum: lambda u: np.sum(np.broadcast_to(u, env[LOGITS].shape), axis=-1, keepdims=True),
        AtLabel: lambda u: rt._take(np.broadcast_to(u, env[LOGITS].shape), env["labels"]),
        SumOffTop: lambda u: rt._sum_off_top(np.array(u), env["top"]),
        SumOffLabel: lambda u: rt._sum_off_label(u, env["labels"]),
        LogSumExp: rt._logsumexp, Softmax: rt._softmax, LogSoftmax: rt._log_softmax,
        SoftPlus: rt._softplus,
        Sigmoid: rt._sigmoid, OneMinusExp: rt._one_minus_exp,
        LogOneMinusExp: rt._log_one_minus_exp, LogRatio: rt._log_ratio, XLogY: rt._xlogy,
        SumXLogQ: rt._sum_xlogq, OneHot: lambda _: rt._one_hot(env["labels"], env[LOGITS]),
        SetAtLabel: lambda v, r: rt._set_at_label(v, env["labels"], r, env[LOGITS]),
        LogAddExp: np.logaddexp, LogOf: np.log,
        LogOneMinusSoftmax: lambda u: rt._log_one_minus_softmax(u, env["top"]),
        BalanceTop: lambda g: rt._balance_top(g, env["top"]),
        AtTop: lambda u: rt._take(np.broadcast_to(u, env[LOGITS].shape), env["top"]),
        SumOffTopOf: lambda w, u: rt._weighted_sum_off_top(w, u, env["top"]),
    }
    with np.errstate(all="ignore"):
        if type(e) in calls:
            return calls[type(e)](*map(ev, e.args))
        if isinstance(e, Symbol):
            return env[e]
        if isinstance(e, Number):
            return float(e)
        values = list(map(ev, e.args))
        if isinstance(e, Pow):
            return values[0] ** values[1]
        out = values[0]
        for v in values[1:]:
            out = out + v if isinstance(e, Add) else out * v
        return out


def _environments():
    """Logits of each range, with labels at the largest and at the smallest logit."""
    rng = np.random.default_rng(7)
    ranges = {
        "ordinary": rng.normal(size=(4, 5)) * 3,
        "|z| = 1e3": rng.normal(size=(4, 5)) * 1e3,
        "q → 1": np.array([[40.0, 0.0, -1.0, 0.5, -2.0], [0.0, 38.0, 1.0, -3.0, 2.0]] * 2),
        "q underflows": np.array([[800.0, 0.0, -1.0, 0.5, -2.0], [0.0, -750.0, 1.0, 3.0, 2.0]] * 2),
        "a masked class": np.array([[1.0, -np.inf, -1.0, 0.5, -2.0], [0.0, -np.inf, 1.0, 3.0, 2.0]] * 2),
    }
    for name, z in ranges.items():
        labels = np.stack([np.argmax(z, -1), np.argmin(z, -1), np.argmax(z, -1),
                           np.argmin(z, -1)])[np.arange(4), np.arange(4)][:, None]
        target = rng.dirichlet(np.ones(5), 4)
        target[0, 1] = 0.0  # a zero target entry, for 0 · log 0
        yield name, z, labels, target


def _env(z, labels, target, exact: bool):
    if exact:
        z = np.vectorize(mpmath.mpf, otypes=[object])(z)
        target = np.vectorize(mpmath.mpf, otypes=[object])(target)
        a = np.max(z, axis=-1, keepdims=True)
        e = _vexp(z - a)
        total = np.sum(e, axis=-1, keepdims=True)
        probs, log_probs = e / total, (z - a) - _vlog(total)
        gamma = mpmath.mpf("0.5")
    else:  # as generated code computes them (shift-invariance and log1p-logsumexp)
        a = np.max(z, axis=-1, keepdims=True)
        with np.errstate(all="ignore"):
            others = rt._sum_off_top(np.exp(z - a), np.argmax(z, -1)[:, None])
            log_probs, probs = (z - a) - np.log1p(others), np.exp(z - a) / (1 + others)
        gamma = 0.5
    return {LOGITS: z, SHIFT: a, SHIFTED: z - a, PROBS: probs, LOG_PROBS: log_probs,
            TARGET: target, GAMMA: gamma, CLASSES: z.shape[-1] * (mpmath.mpf(1) if exact else 1.0),
            "labels": labels, "top": np.argmax(np.asarray(z, dtype=float), -1)[:, None]}


def _shape(e):
    return shape_of(e, lambda s: FULL if s in (LOGITS, TARGET, SHIFTED, PROBS, LOG_PROBS)
                    else CLASS if s.name.startswith("w") else SCALAR)


#: rewrite -> (a pattern it rewrites, whether naive float64 fails somewhere without it)
PATTERNS = {
    "log-softmax": (log(PROBS), True),
    "fold-softmax": (exp(2 * LOGITS) / ClassSum(exp(2 * LOGITS)), True),
    "log-of-softmax": (log(Softmax(LOGITS / 2)), True),
    "logsumexp": (log(ClassSum(exp(LOGITS))), True),
    "one-minus-softmax": (1 - PROBS, True),
    "softmax-at-label": (AtLabel(Softmax(2 * LOGITS)), True),
    "one-minus-exp": (1 - exp(LOG_PROBS), True),
    "log-one-minus-softmax": (log(OneMinusExp(LOG_PROBS)), True),
    "power-times-log": (OneMinusExp(LOG_PROBS) ** (GAMMA - 1) * LOG_PROBS, True),
    "log-sigmoid": (log(Sigmoid(LOGITS)), True),
    "sigmoid-complement": (1 - Sigmoid(LOGITS), True),
    "xlogy": (TARGET * log(TARGET), True),
    "one-hot-select": (ClassSum(TARGET * LOG_PROBS), True),  # 0 · log 0 at a masked class
    "label-term": (ClassSum(LOG_PROBS + TARGET * LOGITS), True),
    "one-hot-rows": (TARGET, False),
    "one-hot-entry": (PROBS - TARGET, True),
    "sum-of-constant": (ClassSum(SHIFT), False),
    "log1p-logsumexp": (log(ClassSum(exp(SHIFTED))), True),
    "masked-sum": (ClassSum(TARGET * LOG_PROBS), True),
    "sigmoid-minus-target": (Sigmoid(LOGITS) - TARGET, True),
    "sum-off-label": (ClassSum(exp(SHIFTED)) - exp(AtLabel(SHIFTED)), True),
    "log-domain": (log((exp(LOGITS) + exp(-LOGITS)) / 2), True),
    "log-one-minus-softmax-exact": (LogOneMinusExp(LOG_PROBS), True),
    "power-from-log": (PROBS ** GAMMA, True),
    "quotient-of-sum": ((exp(LOGITS) - 1) * exp(-LogAddExp(LOGITS, 0)), True),
    "product-from-logs": (PROBS * exp(-GAMMA * LOG_PROBS), True),
    "balance-top": (PROBS * ClassSum(TARGET) - TARGET, True),
    "softmax-from-log": (Softmax(2 * LOGITS), True),
    "log-share": (SHIFT - LogAddExp(SHIFT, SHIFT - 30), True),
    "expectation-from-top": (TARGET + 1 - ClassSum(PROBS * (TARGET + 1)), True),
}
#: The rewrites whose patterns are checked with a one-hot target (of the labels)
LABELS = {"one-hot-select", "label-term", "one-hot-rows", "one-hot-entry", "sigmoid-minus-target",
          "balance-top"}


def test_every_rewrite_has_a_pattern_here():
    assert set(PATTERNS) == {rw.name for rw in CITED}


def _close(got, ref):
    """Entry by entry, to 1e-9 relative (a result below the smallest normal number may be
    0); equal infinities agree, and an entry the pattern leaves undefined is not compared."""
    got = np.asarray(got, dtype=float)
    ref_f = np.array(np.vectorize(float)(ref), dtype=float)
    with np.errstate(all="ignore"):
        close = np.abs(got - ref_f) <= 1e-9 * np.abs(ref_f) + 1e-300
    return bool(np.all(close | (got == ref_f) | np.isnan(ref_f)))


RANGES = [name for name, *_ in _environments()]
#: Where a replacement is not yet exact, with the numbers (strict: each must still fail).
KNOWN = {
    ("log-one-minus-softmax", "|z| = 1e3"): "log(1 - q) is -1539 where 1 - q = e^-1539, but "
    "log q = -e^-1539 underflows to 0 in float64, so -inf comes out",
    ("power-times-log", "|z| = 1e3"): "(1 - q)^(γ-1) log q = -7.9e-200 where log q = -6.2e-399 "
    "underflows to 0, so 0 comes out",
}
KNOWN["log-one-minus-softmax", "q underflows"] = "log(1 - q) where 1 - q = e^-800: log q = -e^-800 " \
    "underflows to 0 in float64, so -inf comes out"
KNOWN["power-times-log", "q underflows"] = "(1 - q)^(γ-1) log q where 1 - q = e^-800: log q " \
    "underflows to 0, so 0 comes out"


@functools.lru_cache(maxsize=None)
def _envs(name: str, one_hot: bool):
    """The exact and the float64 values of the array symbols in range ``name``; with
    ``one_hot``, the target is the one-hot rows of the labels."""
    z, labels, target = next((z, l, t) for n, z, l, t in _environments() if n == name)
    if one_hot:
        target = np.eye(z.shape[-1])[labels[:, 0]]
    return _env(z, labels, target, True), _env(z, labels, target, False)


def _values(rewrite, name, z, labels, target):
    pattern, _ = PATTERNS[rewrite.name]
    replacement = optimize(pattern, (rewrite,), set(), shape=_shape, cited=set())
    exact, plain = _envs(name, rewrite.name in LABELS)
    reference = meaning(pattern, exact, Exact)
    reference = np.broadcast_to(reference, z.shape[:-1] + (np.shape(reference)[-1],))
    with np.errstate(all="ignore"):
        naive = meaning(pattern, plain, Naive)
    return replacement, reference, np.broadcast_to(runtime(replacement, plain), reference.shape), \
        np.broadcast_to(naive, reference.shape)


@pytest.mark.parametrize("rewrite, name", [
    pytest.param(rw, name, marks=pytest.mark.xfail(reason=KNOWN[rw.name, name], strict=True))
    if (rw.name, name) in KNOWN else (rw, name) for rw in CITED for name in RANGES],
    ids=lambda x: getattr(x, "name", x))
def test_a_replacement_agrees_with_what_its_pattern_means(rewrite, name):
    z, labels, target = next((z, l, t) for n, z, l, t in _environments() if n == name)
    replacement, reference, got, _ = _values(rewrite, name, z, labels, target)
    assert replacement != PATTERNS[rewrite.name][0], "the rewrite matches its pattern"
    assert _close(got, reference)


@pytest.mark.parametrize("rewrite", CITED, ids=lambda rw: rw.name)
def test_a_stability_rewrite_matters_somewhere(rewrite):
    """The pattern computed as written fails in some range where the replacement is exact
    (and an identity that is not about stability fails nowhere)."""
    fails = []
    for name, z, labels, target in _environments():
        _, reference, _, naive = _values(rewrite, name, z, labels, target)
        if not _close(naive, reference):
            fails.append(name)
    assert bool(fails) == PATTERNS[rewrite.name][1], fails


def test_a_wrong_replacement_is_caught():
    exact, plain = _envs("ordinary", False)
    reference = meaning(1 - PROBS, exact, Exact)
    assert _close(runtime(OneMinusExp(LOG_PROBS), plain), reference)
    assert not _close(runtime(OneMinusExp(LOG_PROBS) * (1 + Number(10) ** -6), plain), reference)
    assert not _close(runtime(OneMinusExp(LOG_PROBS + 1e-3), plain), reference)
