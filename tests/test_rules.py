"""Stage 2: every rule on a small input, with the expected rewrite written out by hand."""
import pytest
from sympy import Add, Derivative, KroneckerDelta, Sum, UnevaluatedExpr, exp, log

from derive import rules
from derive.errors import RuleDoesNotApplyError, UnknownRuleError
from derive.model import (E, E_b, E_ls, E_T, E_w, K, SumExcept, T, a, c, epsilon, i, j, k, p,
                          q, sig, w, y, y_ls, z, L, N, Q, Y, Z, ell, m, n, E_lin, W, b, d, g, x)
from derive.model import D as INPUTS
from derive.model import define_loss, diag_q, l, outer_q
from sympy import Symbol

gamma = Symbol("gamma")

S = Sum(exp(z[j]), (j, 1, K))
derive_loss = define_loss(-log(q[c]))


def D(f, x=z[k]):
    return Derivative(f, x)


CASES = [
    ("definition-cross-entropy", E, -Sum(y[i] * log(q[i]), (i, 1, K)), {}),
    ("definition-weighted-cross-entropy", E_w, -Sum(w[i] * y[i] * log(q[i]), (i, 1, K)), {}),
    ("definition-tempered-cross-entropy", E_T, -Sum(y[i] * log(p[i]), (i, 1, K)), {}),
    ("definition-tempered-softmax", p[k], exp(z[k] / T) / Sum(exp(z[j] / T), (j, 1, K)), {}),
    ("definition-smoothed-target", y_ls[k],
     Add((1 - epsilon) * KroneckerDelta(k, c), epsilon / K, evaluate=False), {}),
    ("definition-smoothed-cross-entropy", E_ls, -Sum(y_ls[i] * log(q[i]), (i, 1, K)), {}),
    ("definition-binary-cross-entropy", E_b,
     -Sum(Add(y[i] * log(sig[i]), (1 - y[i]) * log(1 - sig[i]), evaluate=False), (i, 1, K)), {}),
    ("definition-sigmoid", sig[k], 1 / (1 + exp(-z[k])), {}),
    ("fold-tempered-softmax", y[k] * exp(z[k] / T) / Sum(exp(z[j] / T), (j, 1, K)), y[k] * p[k], {}),
    ("common-denominator", log(1 - 1 / (1 + exp(-z[k]))), log(exp(-z[k]) / (1 + exp(-z[k]))), {}),
    ("multiply-through", log(exp(-z[k]) / (1 + exp(-z[k]))), log(1 / (exp(z[k]) + 1)), {}),
    ("sigmoid-product", exp(-z[k]) / (1 + exp(-z[k])) ** 2, sig[k] * (1 - sig[k]), {}),
    ("power-rule", D(1 / (1 + exp(-z[k]))), -D(1 + exp(-z[k])) / (1 + exp(-z[k])) ** 2, {}),
    ("exp-sum-derivative", D(S), exp(z[k]), {}),
    ("exp-sum-derivative", D(Sum(exp(z[j] / T), (j, 1, K))), exp(z[k] / T) / T, {}),
    ("one-hot-entry", q[k] - y[k], q[k] - KroneckerDelta(k, c), {}),
    ("cancel", y[i] * UnevaluatedExpr(1 / q[i]) * q[i], y[i], {}),
    ("probability-rows", Sum(Y[m, i], (i, 1, K)) * Q[m, k], Q[m, k], {}),
    ("sigmoid-derivative", D(sig[i]), sig[i] * (1 - sig[i]) * KroneckerDelta(i, k), {}),
    ("log-quotient", log(1 / (1 + exp(-z[k]))), -log(1 + exp(-z[k])), {}),
    ("definition-batch-mean", L, Sum(ell[n], (n, 1, N)) / N, {}),
    ("independent-examples", Derivative(ell[n], Z[m, k]),
     KroneckerDelta(n, m) * Derivative(ell[n], Z[n, k]), {}),
    ("logit-derivative", Derivative(Z[n, i], Z[m, k]), KroneckerDelta(n, m) * KroneckerDelta(i, k), {}),
    ("gradient-lemma", Derivative(ell[m], Z[m, k]), Sum(Y[m, i], (i, 1, K)) * Q[m, k] - Y[m, k], {}),
    ("chain-through-logits", Derivative(E_lin, W[k, d]),
     Sum(Derivative(E, z[i]) * Derivative(
         Add(Sum(W[i, g] * x[g], (g, 1, INPUTS)), b[i], evaluate=False), W[k, d]), (i, 1, K)), {}),
    ("weight-derivative", Derivative(W[i, g], W[k, d]), KroneckerDelta(i, k) * KroneckerDelta(g, d),
     {}),
    ("bias-derivative", Derivative(b[i], b[k]), KroneckerDelta(i, k), {}),
    ("constant-derivative", Derivative(b[i], W[k, d]), 0, {}),
    ("constant-derivative", Derivative(Sum(W[i, g] * x[g], (g, 1, INPUTS)), b[k]), 0, {}),
    ("sum-of-constant", Sum(a * y[k], (i, 1, K)), UnevaluatedExpr(K) * a * y[k], {}),
    ("smoothed-sum", q[k] * Sum(y_ls[i], (i, 1, K)) - y_ls[k], q[k] - y_ls[k], {}),
    ("gradient-lemma", D(E_ls), Sum(y_ls[i], (i, 1, K)) * q[k] - y_ls[k], {}),
    ("definition-softmax", q[i], exp(z[i]) / S, {}),
    ("fold-softmax", y[i] * exp(z[k]) / S, y[i] * q[k], {}),
    ("fold-softmax", exp(z[i]) * exp(z[k]) / S**2, q[i] * q[k], {}),
    ("shift-softmax", exp(z[k]) / S, exp(z[k] - a) / Sum(exp(z[j] - a), (j, 1, K)), {"by": a}),
    ("log-quotient", log(exp(z[i]) / S), z[i] - log(S), {}),
    ("sum-linearity", Sum(y[i] * (z[i] - log(S)), (i, 1, K)),
     Sum(y[i] * z[i], (i, 1, K)) - log(S) * Sum(y[i], (i, 1, K)), {}),
    ("sum-linearity", SumExcept(y[i] * q[k], (i, 1, K), k), q[k] * SumExcept(y[i], (i, 1, K), k), {}),
    ("split-term", Sum(y[i] * z[i], (i, 1, K)), y[k] * z[k] + SumExcept(y[i] * z[i], (i, 1, K), k),
     {"at": k}),
    ("kronecker-collapse", Sum(y[i] * KroneckerDelta(i, k), (i, 1, K)), y[k], {}),
    ("kronecker-collapse", Sum(q[i] * Sum(x[g] * KroneckerDelta(g, d) * KroneckerDelta(i, k),
                                          (g, 1, INPUTS)), (i, 1, K)),
     Sum(q[i] * x[d] * KroneckerDelta(i, k), (i, 1, K)), {"over": g}),
    ("kronecker-off-diagonal", SumExcept(y[i] * (KroneckerDelta(i, k) - q[k]), (i, 1, K), k),
     SumExcept(-y[i] * q[k], (i, 1, K), k), {}),
    ("differentiate", E, D(E), {"wrt": z[k]}),
    ("log-both-sides", q[k], log(q[k]), {}),
    ("sum-rule", D(z[i] + log(S)), D(z[i]) + D(log(S)), {}),
    ("sum-rule", D(S), Sum(D(exp(z[j])), (j, 1, K)), {}),
    ("constant-factor", D(y[i] * log(q[i])), y[i] * D(log(q[i])), {}),
    ("constant-derivative", q[k] * Sum(y[i], (i, 1, K)) - D(y[k]), q[k] * Sum(y[i], (i, 1, K)), {}),
    ("gradient-lemma", D(E), Sum(y[i], (i, 1, K)) * q[k] - y[k], {}),
    ("gradient-lemma", Derivative(E, z[i], z[k]), D(Sum(y[j], (j, 1, K)) * q[i] - y[i]), {}),
    ("chain-rule", D(log(q[i])), Derivative(log(q[i]), q[i]) * D(q[i]), {}),
    ("log-derivative", Derivative(log(q[i]), q[i]), UnevaluatedExpr(1 / q[i]), {}),
    ("log-derivative", D(log(q[i])), UnevaluatedExpr(1 / q[i]) * D(q[i]), {}),
    ("log-derivative", D(log(S)), D(S) / S, {}),
    ("exp-derivative", D(exp(z[j])), exp(z[j]) * D(z[j]), {}),
    ("logit-derivative", D(z[j]), KroneckerDelta(j, k), {}),
    ("logit-self-derivative", D(z[k]) * q[k], q[k], {}),
    ("quotient-rule", D(exp(z[i]) / S), (S * D(exp(z[i])) - exp(z[i]) * D(S)) / S**2, {}),
    ("softmax-jacobian", D(q[i]), q[i] * (KroneckerDelta(i, k) - q[k]), {}),
    ("probability-sum", q[k] * Sum(y[i], (i, 1, K)), q[k], {}),
    ("probability-complement", SumExcept(y[i], (i, 1, K), k), 1 - y[k], {}),
    ("one-hot-select", Sum(y[i] * z[i], (i, 1, K)), z[c], {}),
    ("expand", -y[k] * (1 - q[k]) + q[k] * (1 - y[k]), q[k] - y[k], {}),
    ("softmax-sum", q[k] * Sum(q[i], (i, 1, K)) - q[k], 0, {}),
    ("product-rule", D(q[i] * log(q[i])), log(q[i]) * D(q[i]) + q[i] * D(log(q[i])), {}),
    ("definition-loss", derive_loss, -log(q[c]), {}),
    ("definition-loss-positive", define_loss(-log(y[c] * q[c])), -log(y[c] * q[c]), {}),
    ("matrix-form", q[k] * KroneckerDelta(k, l) - q[k] * q[l], diag_q[k, l] - outer_q[k, l], {}),
    ("factor", q[i] * KroneckerDelta(i, k) - q[i] * q[k], q[i] * (KroneckerDelta(i, k) - q[k]), {}),
    ("collect-terms", Add(q[k], y[k], -q[k], evaluate=False), y[k], {}),
    ("distribute", q[k] * (y[k] - q[k]), Add(-q[k]**2, q[k] * y[k], evaluate=False), {}),
    ("sum-distribute", Sum(y[i] * (1 - q[i]), (i, 1, K)),
     Sum(Add(-q[i] * y[i], y[i], evaluate=False), (i, 1, K)), {}),
    ("sum-factor-out", Sum(q[k] * y[i], (i, 1, K)), q[k] * Sum(y[i], (i, 1, K)), {}),
    ("combine-sums", q[k] * Sum(y[i], (i, 1, K)) - q[k] * Sum(q[i], (i, 1, K)),
     q[k] * Sum(y[i] - q[i], (i, 1, K)), {}),
    ("factor-common", 2 * q[k]**2 - 2 * y[k] * q[k] + y[k], 2 * q[k] * (q[k] - y[k]) + y[k], {}),
    ("factor-grouping", z[k] * q[k] - z[k] * y[k] + q[k] - y[k], (1 + z[k]) * (q[k] - y[k]), {}),
    ("merge-powers", q[c] * q[c]**(gamma - 1), q[c]**gamma, {}),
    ("kronecker-select", KroneckerDelta(k, c) * log(q[k]), KroneckerDelta(k, c) * log(q[c]), {}),
]


@pytest.mark.parametrize("name, before, after, params", CASES, ids=[c[0] for c in CASES])
def test_rule_rewrites(name, before, after, params):
    assert rules.apply(name, before, **params) == after


def test_every_rule_is_tested_and_justified():
    assert {c[0] for c in CASES} == set(rules.RULES)
    for rule in rules.RULES.values():
        assert rule.title and rule.why and "\n" not in rule.why and rule.kind in rules.KINDS


def test_a_rule_without_a_known_kind_is_refused():
    with pytest.raises(ValueError, match="unknown kind"):
        rules.rule("no-kind", "t", "why", kind="misc")


def test_unknown_rule_is_a_named_error():
    with pytest.raises(UnknownRuleError, match="unknown rule 'no-such-rule'"):
        rules.apply("no-such-rule", q[k])


def test_rule_that_matches_nothing_says_so():
    with pytest.raises(RuleDoesNotApplyError, match="'chain-rule' does not apply"):
        rules.apply("chain-rule", z[k])


def test_rules_applied_together_until_nothing_changes():
    expr = D(-Sum(y[i] * log(q[i]), (i, 1, K)))
    out = rules.apply_together(("sum-rule", "constant-factor"), expr)
    assert out == -Sum(y[i] * D(log(q[i])), (i, 1, K))


def test_rules_applied_together_must_each_apply():
    with pytest.raises(RuleDoesNotApplyError, match="quotient-rule"):
        rules.apply_together(("sum-rule", "quotient-rule"), D(S))


def test_constant_factor_keeps_logit_dependent_factors_inside():
    assert rules.apply("constant-factor", D(y[i] * q[i] * z[i])) == y[i] * D(q[i] * z[i])


def test_factor_grouping_takes_a_sum_as_one_letter_and_leaves_quotients():
    total = Sum(y[i] * q[i], (i, 1, K))
    a, b = Symbol("alpha"), Symbol("beta")
    grouped = (a + b) * (total - y[k]) + y[k] - total
    assert rules.attempt("factor-grouping", grouped) == (total - y[k]) * (a + b - 1)
    quotients = grouped / (1 + total) + y[k] / total  # factored inside, not over one denominator
    assert rules.attempt("factor-grouping", quotients) == ((total - y[k]) * (a + b - 1) / (1 + total)
                                                           + y[k] / total)
