"""Rules of differentiation: sum, constant factor, chain, log, exp, quotient, and the lemmas."""
from __future__ import annotations

from sympy import (Add, Derivative, Indexed, KroneckerDelta, Mul, Pow, S, Sum, UnevaluatedExpr,
                   exp, log)

from ..model import (LINEAR, TARGET_OF, E, E_lin, K, Q, W, Y, Z, b, depends_on_logits, ell, i,
                     is_abbreviation, is_logit, j, linear, q, sig, z)
from .registry import _single_variable, _split_constant, rule

# ---- derivatives -----------------------------------------------------------------------------

@rule("differentiate", "differentiate both sides", "apply ∂/∂x to both sides of the equation",
      kind="differentiate", whole=True)
def _differentiate(expr, wrt):
    return Derivative(expr, wrt)


@rule("log-both-sides", "take logarithms", "both sides are positive, so their logarithms are equal",
      kind="algebra", whole=True)
def _log_both_sides(expr):
    return log(expr)


@rule("sum-rule", "sum rule", "the derivative of a sum is the sum of the derivatives",
      kind="linearity", nodes=(Derivative,))
def _sum_rule(expr):
    x = _single_variable(expr)
    if x is None:
        return None
    f = expr.expr
    if isinstance(f, Add):  # in the order the sum was written
        return Add(*(Derivative(t, x) for t in f.args), evaluate=f.args == Add(*f.args).args)
    if isinstance(f, Sum) and _depends(f, x):  # a constant sum is left whole, its derivative 0
        return Sum(Derivative(f.function, x), *f.limits)
    return None


def _depends(expr, x) -> bool:
    """Whether ``expr`` varies with the variable ``x``: a layer's weights and biases are apart
    from each other; anything else is a logit or depends on them."""
    if isinstance(x, Indexed) and x.base in (W, b):
        return expr.has(x.base) or expr.has(E_lin)
    return depends_on_logits(expr)


@rule("constant-factor", "constant factor",
      "a factor that does not depend on the logits moves out of the derivative", kind="linearity", nodes=(Derivative,))
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
      "∂E/∂v = Σ_i ∂E/∂z_i · ∂z_i/∂v", kind="derivative", nodes=(Derivative,), fact=LINEAR)
def _chain_through_logits(expr):
    v = _single_variable(expr)
    if v is None or getattr(expr, "expr", None) != E_lin or v.base not in (W, b):
        return None
    return Sum(Derivative(E, z[i]) * Derivative(linear(i), v), (i, 1, K))


def _entry_by_entry(expr, bases, wrt_bases):
    """``(f, x)`` when ``expr`` is ∂f/∂x for an entry f of one of ``bases`` and an entry x of
    one of ``wrt_bases``; ``(None, None)`` otherwise."""
    x = _single_variable(expr)
    f = getattr(expr, "expr", None)
    if x is None or not (isinstance(f, Indexed) and f.base in bases and isinstance(x, Indexed)
                         and x.base in wrt_bases):
        return None, None
    return f, x


@rule("weight-derivative", "∂W_ig/∂W_kd = δ_ik δ_gd",
      "the weights are independent variables: each entry's derivative is 1 by itself and 0 by "
      "any other", kind="variables", nodes=(Derivative,),
      tex=r"$\partial W_{i,g} / \partial W_{k,d} = \delta_{ik} \delta_{gd}$")
def _weight_derivative(expr):
    f, v = _entry_by_entry(expr, (W,), (W,))
    if f is None:
        return None
    return Mul(*(KroneckerDelta(p_, q_) for p_, q_ in zip(f.indices, v.indices)))


@rule("bias-derivative", "∂b_i/∂b_k = δ_ik",
      "the biases are independent variables: each entry's derivative is 1 by itself and 0 by "
      "any other", kind="variables", nodes=(Derivative,), tex=r"$\partial b_i / \partial b_k = \delta_{ik}$")
def _bias_derivative(expr):
    f, v = _entry_by_entry(expr, (b,), (b,))
    if f is None:
        return None
    return KroneckerDelta(f.indices[0], v.indices[0])


@rule("independent-examples", "examples are independent",
      "the loss of example n depends on row n of the logits only: ∂ℓ_n/∂Z_{m,k} = δ_nm ∂ℓ_n/∂Z_{n,k}",
      kind="variables", nodes=(Derivative,))
def _independent_examples(expr):
    f, x = _entry_by_entry(expr, (ell,), (Z,))
    if f is None:
        return None
    row, other = f.indices[0], x.indices[0]
    if row == other:
        return None
    return KroneckerDelta(row, other) * Derivative(f, Z[row, x.indices[1]])


@rule("constant-derivative", "the derivative of a constant is 0",
      "what does not depend on the variable has derivative 0", kind="linearity", nodes=(Derivative,))
def _constant_derivative(expr):
    x = _single_variable(expr)
    if x is None or _depends(expr.expr, x):
        return None
    return S.Zero


@rule("gradient-lemma", "gradient (lemma)",
      "∂E/∂z_k = (Σ_i y_i) q_k - y_k for any target y, proved by the derivation any-target",
      kind="lemma", nodes=(Derivative,), tex="gradient (lemma)")
def _gradient_lemma(expr):
    f, x = _entry_by_entry(expr, (ell,), (Z,))
    if f is not None and x.indices[0] == f.indices[0]:  # one example of a batch: ∂ℓ_n/∂Z_{n,k}
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


@rule("chain-rule", "chain rule", "∂f(u)/∂x = ∂f/∂u · ∂u/∂x", kind="derivative", nodes=(Derivative,))
def _chain_rule(expr):
    x = _single_variable(expr)
    if x is None or not isinstance(expr.expr, (log, exp)):
        return None
    u = expr.expr.args[0]
    if u == x or not is_abbreviation(u):
        return None
    return Derivative(expr.expr, u) * Derivative(u, x)


@rule("log-derivative", "derivative of log", "∂ log u/∂x = (1/u) ∂u/∂x", kind="derivative", nodes=(Derivative,))
def _log_derivative(expr):
    x = _single_variable(expr)
    if x is None or not isinstance(expr.expr, log):
        return None
    u = expr.expr.args[0]
    # 1/u is held apart, so that it cancels against u only in a step of its own ("cancel");
    # 1/Σ_j e^{z_j} never cancels and stays an ordinary factor
    reciprocal = 1 / u if isinstance(u, Sum) else UnevaluatedExpr(1 / u)
    return reciprocal if u == x else reciprocal * Derivative(u, x)


@rule("exp-derivative", "derivative of exp", "∂e^u/∂x = e^u ∂u/∂x", kind="derivative", nodes=(Derivative,))
def _exp_derivative(expr):
    x = _single_variable(expr)
    if x is None or not isinstance(expr.expr, exp):
        return None
    return expr.expr * Derivative(expr.expr.args[0], x)


@rule("logit-derivative", "∂z_i/∂z_k = δ_ik", "the logits are independent variables",
      kind="variables", nodes=(Derivative,), tex=r"$\partial z_i / \partial z_k = \delta_{ik}$")
def _logit_derivative(expr):
    x = _single_variable(expr)
    if x is None or not (is_logit(expr.expr) and is_logit(x)) or expr.expr.base != x.base:
        return None
    return Mul(*(KroneckerDelta(a, b) for a, b in zip(expr.expr.indices, x.indices)))


@rule("logit-self-derivative", "∂z_k/∂z_k = 1", "a variable's derivative by itself is 1",
      kind="variables", nodes=(Derivative,), tex=r"$\partial z_k / \partial z_k = 1$")
def _logit_self_derivative(expr):
    x = _single_variable(expr)
    return S.One if x is not None and is_logit(x) and expr.expr == x else None


@rule("quotient-rule", "quotient rule", "∂(a/b)/∂x = (b ∂a/∂x - a ∂b/∂x) / b²",
      kind="derivative", nodes=(Derivative,))
def _quotient_rule(expr):
    x = _single_variable(expr)
    if x is None or not isinstance(expr.expr, Mul):
        return None
    num, den = expr.expr.as_numer_denom()
    if den == 1 or not depends_on_logits(den):
        return None
    return (den * Derivative(num, x) - num * Derivative(den, x)) / den**2


@rule("sigmoid-derivative", "derivative of the sigmoid",
      "∂σ_i/∂z_k = σ_i (1 - σ_i) δ_ik: σ_i depends on z_i only, and "
      "∂σ/∂z = σ (1 - σ), proved by the derivation sigmoid-derivative", kind="lemma", nodes=(Derivative,),
      tex=r"derivative of $\sigma$ (lemma)")
def _sigmoid_derivative(expr):
    f, x = _entry_by_entry(expr, (sig,), (z,))
    if f is None:
        return None
    return f * (1 - f) * KroneckerDelta(f.indices[0], x.indices[0])


@rule("softmax-jacobian", "softmax Jacobian (lemma)",
      "∂q_i/∂z_k = q_i (δ_ik - q_k), proved by the derivation softmax-jacobian", kind="lemma", nodes=(Derivative,))
def _softmax_jacobian(expr):
    f, x = _entry_by_entry(expr, (q,), (z,))
    if f is None:
        return None
    row, col = f.indices[0], x.indices[0]
    return q[row] * (KroneckerDelta(row, col) - q[col])


@rule("exp-sum-derivative", "only the term j = k depends on z_k",
      "∂/∂z_k Σ_j e^{u(z_j)} = e^{u(z_k)} ∂u(z_k)/∂z_k: the logits are independent, so every "
      "other term is constant", kind="derivative", nodes=(Derivative,), tex=r"only the term $j = k$ depends on $z_k$")
def _exp_sum_derivative(expr):
    x = _single_variable(expr)
    f = getattr(expr, "expr", None)
    if x is None or not is_logit(x) or not isinstance(f, Sum) or len(f.limits) != 1 \
            or not isinstance(f.function, exp):
        return None
    index = f.limits[0][0]
    u = f.function.args[0]
    logits = [e for e in u.atoms(Indexed) if is_logit(e)]
    if logits != [z[index]]:
        return None
    rate = u.diff(z[index])  # u is a function of z_index alone: its own derivative
    if rate.has(z):
        return None
    return rate * f.function.subs(index, x.indices[0])



@rule("power-rule", "power rule", "∂u^n/∂x = n u^{n-1} ∂u/∂x for a constant n", kind="derivative", nodes=(Derivative,))
def _power_rule(expr):
    x = _single_variable(expr)
    f = getattr(expr, "expr", None)
    if x is None or not isinstance(f, Pow) or depends_on_logits(f.exp) or f.base == x:
        return None
    return f.exp * f.base ** (f.exp - 1) * Derivative(f.base, x)


@rule("product-rule", "product rule", "∂(uv)/∂x = ∂u/∂x v + u ∂v/∂x", kind="derivative", nodes=(Derivative,))
def _product_rule(expr):
    x = _single_variable(expr)
    f = getattr(expr, "expr", None)
    if x is None or not isinstance(f, Mul):
        return None
    varying = [factor for factor in f.args if _depends(factor, x)]
    if len(varying) < 2:
        return None
    constant = Mul(*(factor for factor in f.args if not _depends(factor, x)))
    terms = [Mul(*(other for m, other in enumerate(varying) if m != n)) * Derivative(factor, x)
             for n, factor in enumerate(varying)]
    return constant * Add(*terms)
