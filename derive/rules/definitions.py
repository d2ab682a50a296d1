"""Rules that unfold or fold the model's abbreviations (E, q, p, σ, y', ...)."""
from __future__ import annotations

from sympy import Add, Indexed, KroneckerDelta, Mul, Pow, Sum, Symbol, exp, expand_mul, fraction

from ..model import (ABBREVIATIONS, E, E_b, E_ls, E_T, E_w, L, diag_q, is_logit, outer_grad,
                     outer_q, p, q, sig, x, y, y_ls, z, Loss, POSITIVE)
from .registry import _is_exp_sum, rule

# ---- definitions -----------------------------------------------------------------------------

def _definition(name: str, abbreviation, title: str, why: str, tex: str = "") -> None:
    """Register the rule that replaces ``abbreviation`` by its definition in the model."""
    def unfold(expr):
        if isinstance(expr, Indexed) and expr.base == abbreviation:
            return ABBREVIATIONS[abbreviation](*expr.indices)
        return ABBREVIATIONS[abbreviation]() if expr == abbreviation else None
    rule(name, title, why, kind="definition", nodes=(Indexed, Symbol), tex=tex)(unfold)


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


@rule("fold-softmax", "definition of softmax", "e^{z_i} / Σ_j e^{z_j} is q_i", kind="definition", nodes=(Mul,))
def _fold_q(expr):
    return _fold(expr, q)


@rule("fold-tempered-softmax", "definition of p", "e^{z_i/T} / Σ_j e^{z_j/T} is p_i",
      kind="definition", nodes=(Mul,), tex="definition of $p$")
def _fold_p(expr):
    return _fold(expr, p)


def _fold(expr, base_of_softmax):
    """Each ``e^{u_i} / Σ_j e^{u_j}`` in the product ``expr`` folded into ``base_of_softmax``."""
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
        base = base_of_softmax
        defined = ABBREVIATIONS[base](index)
        if defined == factor / _renamed(den.base, defined):
            folded.append(base[index])
            used.append(factor)
    if not folded:
        return None
    others = [f for f in expr.args if f not in used and f is not den]
    return Mul(*others, *folded, Pow(den.base, den.exp + len(folded)))


def _renamed(total, defined):
    """The sum ``total`` with its index renamed to that of the sum in ``defined``, when the two
    sums differ in that index only (Σ_i e^{z_i} is Σ_j e^{z_j})."""
    mine = [a for a in defined.atoms(Sum) if len(a.limits) == 1]
    if not (isinstance(total, Sum) and len(total.limits) == 1 and len(mine) == 1):
        return total
    (old, *bounds), (new, *theirs) = total.limits[0], mine[0].limits[0]
    if bounds != theirs or total.function.has(new):
        return total
    return Sum(total.function.xreplace({old: new}), (new, *bounds))


@rule("shift-softmax", "shift invariance",
      "multiply above and below by e^{-a}: e^{-a} e^{z_i} = e^{z_i - a} and "
      "e^{-a} Σ_j e^{z_j} = Σ_j e^{z_j - a}", kind="algebra", nodes=(Mul,),
      tex="multiply above and below by $e^{-a}$")
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
      "bring a sum of fractions over one denominator: 1 - 1/(1 + e^{-z}) = e^{-z}/(1 + e^{-z})",
      kind="algebra", nodes=(Add,))
def _common_denominator(expr):
    if not isinstance(expr, Add):
        return None
    dens = {f.base for term in expr.args for f in Mul.make_args(term)
            if isinstance(f, Pow) and f.exp == -1 and isinstance(f.base, Add)}
    if len(dens) != 1:
        return None
    (den,) = dens
    return Mul(expand_mul(Add(*(term * den for term in expr.args))), Pow(den, -1))


@rule("multiply-through", "multiply above and below by e^{z_k}",
      "e^{-z_k}/(1 + e^{-z_k}) = 1/(e^{z_k} + 1): multiply the numerator and the denominator "
      "by e^{z_k}, the reciprocal of the numerator", kind="algebra", nodes=(Mul,),
      tex="multiply above and below by $e^{z_k}$")
def _multiply_through(expr):
    if not isinstance(expr, Mul):
        return None
    num, den = fraction(expr, exact=True)  # exact: e^{-u} stays in the numerator
    if not (isinstance(num, exp) and isinstance(den, Add) and is_logit(-num.args[0])):
        return None  # e^{-z_k} above: the rule multiplies by e^{z_k}
    by = exp(-num.args[0])
    return Pow(expand_mul(den * by), -1) * expand_mul(num * by)


@rule("sigmoid-product", "σ (1 - σ)",
      "e^{-z}/(1 + e^{-z})² = σ (1 - σ): 1/(1 + e^{-z}) is σ, and e^{-z}/(1 + e^{-z}) = 1 - σ",
      kind="definition", nodes=(Mul,), tex=r"$\sigma (1 - \sigma)$")
def _sigmoid_product(expr):
    if not isinstance(expr, Mul):
        return None
    for logit in (f.args[0] for f in expr.args if isinstance(f, exp)):
        if not is_logit(-logit):
            continue
        index = (-logit).indices[0]
        pattern = exp(logit) * (1 + exp(logit)) ** -2
        rest = expr / pattern
        if not rest.has(z[index]):
            return rest * sig[index] * (1 - sig[index])
    return None


@rule("matrix-form", "in matrix form", "q_k δ_kl is entry (k, l) of diag(q), q_k q_l of q qᵀ, "
      "and (q_k - y_k) x_d of (q - y) xᵀ", kind="definition", nodes=(Mul,))
def _matrix_form(expr):
    if not isinstance(expr, Mul):
        return None
    coeff, rest = expr.as_coeff_Mul()
    if not isinstance(rest, Mul) or len(rest.args) != 2:
        return None
    first, second = rest.args
    for entry, other in ((first, second), (second, first)):
        if isinstance(entry, Indexed) and entry.base == x and isinstance(other, Add):
            row = [a.indices[0] for a in other.atoms(Indexed) if a.base == q]
            if len(row) == 1 and other == q[row[0]] - y[row[0]]:
                return coeff * outer_grad[row[0], entry.indices[0]]
        if isinstance(entry, Indexed) and entry.base == q:
            row = entry.indices[0]
            if isinstance(other, KroneckerDelta) and row in other.args:
                col = other.args[1] if other.args[0] == row else other.args[0]
                return coeff * diag_q[row, col]
            if isinstance(other, Indexed) and other.base == q:
                row, col = sorted((row, other.indices[0]), key=str)
                return coeff * outer_q[row, col]
    return None


@rule("definition-loss", "definition of the loss", "ℒ stands for the loss as it was written",
      kind="definition", nodes=(Loss,), tex=r"definition of $\mathcal{L}$")
def _definition_loss(expr):
    return expr.formula if isinstance(expr, Loss) else None


rule("definition-loss-positive", "definition of the loss, for y_i > 0",
     "ℒ stands for the loss as it was written; it takes the log or a root of the target, so it "
     "is defined for targets y_i > 0", kind="definition", nodes=(Loss,), fact=POSITIVE,
     tex=r"definition of $\mathcal{L}$, for $y_i > 0$")(_definition_loss)
