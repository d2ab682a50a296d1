"""SymPy printers for the renderers: LaTeX and one-line Unicode text.

They print what SymPy cannot know about this model: ``Σ_{i≠k}`` (:class:`SumExcept`), ∂ for
every derivative, textbook order of factors (``y_i log q_i`` rather than ``log(q_i) y_i``),
and ``z_k`` for indexed symbols.
"""
from __future__ import annotations

from sympy import (Add, Derivative, Indexed, KroneckerDelta, Mul, Number, Pow, Sum, Symbol,
                   UnevaluatedExpr, exp, fraction, log)
from sympy.printing.latex import LatexPrinter
from sympy.printing.pretty.pretty_symbology import pretty_symbol
from sympy.printing.str import StrPrinter

from ..model import SumExcept, c, d, diag_q, k, l, m, outer_grad, outer_q, q, w, x, y, z

_BASE_ORDER = {w: 0, y: 1, q: 2, z: 3}
#: named matrices, as LaTeX and as text
_MATRICES = {diag_q: (r"\operatorname{diag}(q)", "diag(q)"), outer_q: (r"q q^{\top}", "q qᵀ"),
             outer_grad: (r"\left(q - y\right) x^{\top}", "(q - y) xᵀ")}
#: the order of a Kronecker delta's indices: summed ones first, then free ones, the class c last
#: (δ_ik, δ_gd, δ_kc), as a person writes them
_INDEX_ORDER = {k: 1, l: 1, m: 1, d: 1, c: 2}


def _factor_rank(factor) -> tuple[int, int]:
    """Where a factor stands in a product: numbers, sums, y, q, z, δ, exp, log, (…), ∂."""
    if isinstance(factor, Number):
        return (0, 0)
    if isinstance(factor, (Sum, SumExcept)):
        return (1, 0)
    if isinstance(factor, Indexed) and factor.base == x:  # an input after what multiplies it
        return (3, 6)
    if isinstance(factor, Indexed):
        return (2, _BASE_ORDER.get(factor.base, 4))
    if isinstance(factor, Symbol):  # a scalar parameter leads: γ y_k q_k, K ε
        return (0, 1)
    if isinstance(factor, UnevaluatedExpr):  # 1/u held apart: where the derivative of log put it
        return (2, 1.5)
    if isinstance(factor, KroneckerDelta):  # after what it multiplies: (1 - ε) δ_ic, σ_i (1 - σ_i) δ_ik
        return (3, 5.5)
    if isinstance(factor, exp):
        return (4, 0)
    if isinstance(factor, log):
        return (5, 0)
    if isinstance(factor, Add) or (isinstance(factor, Pow) and isinstance(factor.base, Add)
                                   and not factor.exp.is_negative):
        # (1 - y_i) before log(1 - σ_i), (1 - q_i)^γ before log q_i; (δ_ik - q_k) after q_i
        return (3, 5) if not factor.has(log, exp, Derivative) else (6, 0)
    if isinstance(factor, Derivative):
        return (8, 0)
    return (7, 0)


def ordered_terms(expr: Add) -> list:
    """The terms of ``expr``: as built, where a definition or a rule built the sum unevaluated
    in the order a person writes it (y log σ + (1 - y) log(1 - σ)); otherwise positive before
    negative, and a number first among the positive (1 + e^{z})."""
    if expr.args != Add(*expr.args).args:
        return list(expr.args)

    def key(term):
        negative = term.could_extract_minus_sign()
        return (negative, not (term.is_number and not negative))
    return sorted(expr.as_ordered_terms(), key=key)


def delta_indices(delta: KroneckerDelta) -> tuple:
    """The indices of a Kronecker delta in the order a person writes them."""
    return tuple(sorted(delta.args, key=lambda index: (_INDEX_ORDER.get(index, 0), str(index))))


def reciprocal_first(expr: Mul):
    """``(numerator, denominator)`` when ``expr`` reads better as ``(1/denominator) numerator``:
    a numerator that is one product holding a sum or a derivative, as in (1/N) Σ_n ℓ_n and
    (1/u) ∂u/∂x; None otherwise."""
    num, den = fraction(expr, exact=True)
    if den == 1 or isinstance(num, Add) or not num.has(Sum, SumExcept, Derivative):
        return None
    return num, den


def ordered_factors(expr: Mul) -> list:
    """The factors of ``expr`` in textbook order (stable within each kind)."""
    return sorted(expr.as_ordered_factors(), key=_factor_rank)


def _simple(expr) -> bool:
    """An expression printed without parentheses after ∂ or log: z_k, q_i, E, log q_i, e^{z_i}."""
    if isinstance(expr, (Indexed, Symbol)):
        return True
    return isinstance(expr, (log, exp)) and isinstance(expr.args[0], (Indexed, Symbol))


class DeriveLatexPrinter(LatexPrinter):
    """LaTeX for the steps: ∂ always, ``\\sum_{i≠k}``, ``y_{i} \\log q_{i}``."""

    printmethod = "_derive_latex"
    #: ``one_fraction``: a quotient printed as one fraction, never as (1/den) num
    _default_settings = {**LatexPrinter._default_settings, "one_fraction": False}

    def __init__(self, settings=None):
        super().__init__({"order": "none", **(settings or {})})

    def _as_ordered_terms(self, expr, order=None):
        return ordered_terms(expr)  # the "none" order is meant for factors only (_print_Mul)

    def _print_Mul(self, expr):
        if not isinstance(expr, Mul):  # SymPy prints 1/x through _print_Mul
            return super()._print_Mul(expr)
        coeff, rest = expr.as_coeff_Mul()
        if coeff.is_negative:
            return "- " + self._print_Mul(-expr) if rest != 1 else self._print(coeff)
        split = None if self._settings["one_fraction"] else reciprocal_first(expr)
        if split is not None:
            num, den = split
            return r"\frac{1}{%s} %s" % (self._print(den), self._print_factors(num))
        return self._print_factors(expr)

    def _print_factors(self, expr):
        factors = ordered_factors(expr) if isinstance(expr, Mul) else [expr]
        if len(factors) == 1:
            return self._print(factors[0])
        return super()._print_Mul(Mul(*factors, evaluate=False))

    def _print_ExpBase(self, expr, exp=None):
        # the exponent inline, e^{z_j/T}, as a person writes it
        folded = self._settings["fold_short_frac"]
        self._settings["fold_short_frac"] = True
        try:
            tex = r"e^{%s}" % self._print(expr.args[0])
        finally:
            self._settings["fold_short_frac"] = folded
        return self._do_exponent(tex, exp)

    def _print_KroneckerDelta(self, expr, exp=None):
        first, second = (self._print(i) for i in delta_indices(expr))
        tex = r"\delta_{%s%s}" % (first, second)
        return r"\left(%s\right)^{%s}" % (tex, exp) if exp is not None else tex

    def _print_Loss(self, expr):
        return r"\mathcal{L}"

    def _print_Symbol(self, expr, style="plain"):
        if expr.name in SHORT_GREEK:  # eps is ε, lam is λ
            return super()._print_Symbol(Symbol(SHORT_GREEK[expr.name]), style)
        # a subscript of several letters is a word, set upright: E_{\mathrm{lin}}
        base, _, sub = expr.name.partition("_")
        if sub.isalpha() and len(sub) > 1 and sub.lower() not in _GREEK:
            return r"%s_{\mathrm{%s}}" % (self._print(Symbol(base)), sub)
        tex = super()._print_Symbol(expr, style)
        if tex == expr.name and len(tex) > 1 and tex.isalpha():
            return r"\mathrm{%s}" % tex  # a name of several letters is a word: \mathrm{gp}
        return tex

    def _needs_mul_brackets(self, expr, first=False, last=False) -> bool:
        if isinstance(expr, SumExcept) and not last:
            return True  # as SymPy does for Sum: Σ_{i≠k} y_i q_k would read as one sum
        return super()._needs_mul_brackets(expr, first=first, last=last)

    def _print_Indexed(self, expr):
        if expr.base in _MATRICES:  # an entry of a named matrix: [diag(q)]_{kl}
            return r"\left[%s\right]_{%s}" % (_MATRICES[expr.base][0],
                                              "".join(map(self._print, expr.indices)))
        return "%s_{%s}" % (self._print(expr.base), ",".join(map(self._print, expr.indices)))

    def _print_log(self, expr, exp=None):
        arg = expr.args[0]
        inner = r"\log %s" % self._print(arg) if _simple(arg) else \
            r"\log\left(%s\right)" % self._print(arg) if not isinstance(arg, Sum) else \
            r"\log %s" % self._print(arg)
        return inner if exp is None else r"\left(%s\right)^{%s}" % (inner, exp)

    def _print_Derivative(self, expr):
        # the last variable differentiates last, so it stands first: ∂²E/∂z_l ∂z_k
        wrt = " ".join(r"\partial %s" % self._print(v) for v in reversed(expr.variables))
        order = len(expr.variables)
        partial = r"\partial" if order == 1 else r"\partial^{%d}" % order
        if _simple(expr.expr):
            return r"\frac{%s %s}{%s}" % (partial, self._print(expr.expr), wrt)
        return r"\frac{%s}{%s} \left(%s\right)" % (partial, wrt, self._print(expr.expr))

    def _print_SumExcept(self, expr):
        index, lo, hi = (self._print(a) for a in expr.limits)
        tex = r"\sum_{\substack{%s=%s\\ %s \neq %s}}^{%s} " % (index, lo, index,
                                                            self._print(expr.skip), hi)
        body = self._print(expr.function)
        return tex + (r"\left(%s\right)" % body if isinstance(expr.function, Add) else body)


#: Parameters named by the usual short form of a Greek letter, printed as the letter.
SHORT_GREEK = {"eps": "epsilon", "lam": "lambda"}

_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "sigma", "tau", "lambda", "mu", "pi",
          "theta", "eta", "kappa", "rho", "omega", "phi", "psi", "chi", "xi", "nu", "zeta"}

_SUBSCRIPT = str.maketrans("0123456789aeijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉ₐₑᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ")


class TextPrinter(StrPrinter):
    """One-line Unicode for a terminal: ``-Σ[i=1..K] y_i·log(q_i)``, ``∂q_i/∂z_k``."""

    printmethod = "_derive_text"

    def _print_IndexedBase(self, expr):
        return self._print(expr.label)

    def _print_Symbol(self, expr):
        if expr.name == "ell":
            return "ℓ"
        return pretty_symbol(SHORT_GREEK.get(expr.name, expr.name))  # eps -> ε, sigma -> σ

    def _print_Loss(self, expr):
        return "ℒ"

    def _as_ordered_terms(self, expr, order=None):
        return ordered_terms(expr)

    def _print_Indexed(self, expr):
        if expr.base in _MATRICES:
            return "[%s]_%s" % (_MATRICES[expr.base][1], "".join(map(self._print, expr.indices)))
        return "%s_%s" % (self._print(expr.base), "".join(map(self._print, expr.indices)))

    def _print_Mul(self, expr):
        coeff, rest = expr.as_coeff_Mul()
        if coeff.is_negative:
            return "-" + self._print_Mul(-expr) if rest != 1 else self._print(coeff)
        split = reciprocal_first(expr)
        if split is not None:
            num, den = split
            factors = ordered_factors(num) if isinstance(num, Mul) else [num]
            return "(1/%s)·%s" % (self._factor(den, alone=True) if not _simple(den) else
                                  self._print(den), "·".join(self._factor(f) for f in factors))
        num, den = fraction(expr, exact=True)
        factors = ordered_factors(num) if isinstance(num, Mul) else [num]
        text = "·".join(self._factor(f) for f in factors)
        if den == 1:
            return text
        if len(factors) > 1:
            text = "(%s)" % text
        return "%s/%s" % (text, self._factor(den, alone=True))

    def _factor(self, f, alone=False):
        """A factor of a product, in parentheses unless it is a single term."""
        if isinstance(f, Add) or (isinstance(f, (Sum, SumExcept)) or alone and isinstance(f, Mul)):
            return "(%s)" % self._print(f)
        return self._print(f)

    def _print_Pow(self, expr, rational=False):
        if not expr.exp.is_Number:  # (1 - q_i)^γ, (1 - q_i)^(γ - 1)
            base = self._print(expr.base) if _simple(expr.base) else "(%s)" % self._print(expr.base)
            power = self._print(expr.exp)
            return "%s^%s" % (base, power if isinstance(expr.exp, (Symbol, Indexed))
                              else "(%s)" % power)
        if expr.exp == 2:
            return "%s²" % (self._print(expr.base) if _simple(expr.base) else "(%s)" % self._print(expr.base))
        if expr.exp == -1:
            return "1/%s" % self._factor(expr.base, alone=True)
        return super()._print_Pow(expr, rational)

    def _print_exp(self, expr):
        arg = expr.args[0]
        return "e^%s" % (self._print(arg) if _simple(arg) else "(%s)" % self._print(arg))

    def _print_KroneckerDelta(self, expr):
        return "δ_%s%s" % tuple(map(self._print, delta_indices(expr)))

    def _print_UnevaluatedExpr(self, expr):
        return "(%s)" % self._print(expr.args[0])

    def _print_Sum(self, expr):
        # SymPy keeps Σ_j Σ_i f as one Sum with two limits, the innermost first
        signs = " ".join("Σ[%s=%s..%s]" % tuple(limit) for limit in reversed(expr.limits))
        return "%s %s" % (signs, self._sum_body(expr.function))

    def _print_SumExcept(self, expr):
        return "Σ[%s≠%s] %s" % (expr.index, self._print(expr.skip), self._sum_body(expr.function))

    def _sum_body(self, function):
        return "(%s)" % self._print(function) if isinstance(function, Add) else self._print(function)

    def _print_Derivative(self, expr):
        wrt = "".join("∂%s" % self._print(v) for v in reversed(expr.variables))
        partial = "∂" if len(expr.variables) == 1 else "∂%s" % "⁰¹²³⁴⁵⁶⁷⁸⁹"[len(expr.variables)]
        if _simple(expr.expr):
            return "%s%s/%s" % (partial, self._print(expr.expr), wrt)
        return "%s/%s (%s)" % (partial, wrt, self._print(expr.expr))


def latex(expr, **settings) -> str:
    return DeriveLatexPrinter(settings).doprint(expr)


def text(expr) -> str:
    return TextPrinter().doprint(expr)
