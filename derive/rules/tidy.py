"""Rules that tidy a closed derivative into the form a paper prints: collect like terms, multiply
out, take out a common factor, gather sums, merge powers, and use a Kronecker delta.

Each rewrites one node a step (the outermost it matches), so that the strategy can weigh every
step by the cost of what it leaves (:func:`cost`) and keep only those that shorten the result.
"""
from __future__ import annotations

from itertools import combinations, product

from sympy import (Add, Dummy, KroneckerDelta, Mul, Number, Pow, S, Sum, count_ops, exp, expand_mul,
                   factor, igcd)

from ..model import c, k
from .registry import rule

#: Most terms of a sum that "take out a common factor" compares in pairs.
PAIRS_OF_AT_MOST = 12
#: Largest sum, in operations (a sum Σ as one letter), that "factor by grouping" hands to
#: SymPy's ``factor``.
GROUPING_OPERATIONS = 40


def cost(expr) -> int:
    """How long an expression is: SymPy's operation count (each addition, product, power and
    function once), where a sum counts twice and what is under a sum counts once more: it is
    done once for every class, so that a factor taken out of a sum shortens it."""
    under = sum(1 + count_ops(s.function) for s in expr.atoms(Sum))
    return int(count_ops(expr)) + under


@rule("collect-terms", "collect like terms",
      "terms that differ only in a constant factor add up: a u + b u = (a + b) u, and u - u = 0",
      kind="algebra", nodes=(Add,), once=True)
def _collect_terms(expr):
    collected = Add(*expr.args)
    terms = Add.make_args(collected)
    same = len(terms) == len(expr.args) and set(terms) == set(expr.args)  # only reordered
    return None if same else collected


@rule("distribute", "multiply out", "a (u + v) = a u + a v", kind="algebra", nodes=(Mul,),
      once=True)
def _distribute(expr):
    brackets = [f for f in expr.args if isinstance(f, Add)]
    if not brackets:
        return None
    others = [f for f in expr.args if not isinstance(f, Add)]
    terms = [Mul(*others, *choice) for choice in product(*(b.args for b in brackets))]
    if len(terms) > 2 * PAIRS_OF_AT_MOST:
        return None
    return Add(*terms, evaluate=False)  # like terms are collected in a step of their own


@rule("sum-distribute", "multiply out under the sum", "a (u + v) = a u + a v, term by term "
      "under the sum", kind="algebra", nodes=(Sum,), once=True)
def _sum_distribute(expr):
    if len(expr.limits) != 1:
        return None
    terms = []
    for term in Add.make_args(expr.function):
        terms.extend(Add.make_args(expand_mul(term)))
    if len(terms) > 2 * PAIRS_OF_AT_MOST or terms == list(Add.make_args(expr.function)):
        return None
    return Sum(Add(*terms, evaluate=False), expr.limits[0])  # like terms collect in a step


@rule("sum-factor-out", "constant factor of a sum", "Σ_i c a_i = c Σ_i a_i when c does not "
      "depend on i", kind="sum", nodes=(Sum,), once=True)
def _sum_factor_out(expr):
    if len(expr.limits) != 1:
        return None
    index = expr.limits[0][0]
    factors = Mul.make_args(expr.function)
    outside = [f for f in factors if not f.has(index)]
    if not outside:
        return None
    return Mul(*outside) * Sum(Mul(*(f for f in factors if f.has(index))), expr.limits[0])


@rule("combine-sums", "gather the sums", "Σ_i a_i + c Σ_i b_i = Σ_i (a_i + c b_i) when c does "
      "not depend on i", kind="sum", nodes=(Add,), once=True)
def _combine_sums(expr):
    groups: dict[tuple, list] = {}
    for term in expr.args:
        sums = [f for f in Mul.make_args(term) if isinstance(f, Sum) and len(f.limits) == 1]
        if len(sums) != 1:
            continue
        total = sums[0]
        rest = Mul(*(f for f in Mul.make_args(term) if f is not total))
        if rest.has(total.limits[0][0]):
            continue
        groups.setdefault(total.limits[0], []).append((term, rest, total))
    for limits, members in groups.items():
        if len(members) < 2:
            continue
        split = [_powers(rest) for _, rest, _ in members]
        common = split[0]
        for other in split[1:]:
            common = _common(common, other)
        outer = Mul(common[0], *(base ** e for base, e in common[1].items()))
        body = Add(*(_quotient(common, part) * total.function
                     for part, (_, _, total) in zip(split, members)))
        others = [t for t in expr.args if t not in {m[0] for m in members}]
        return Add(outer * Sum(body, limits), *others)
    return None


def _powers(term):
    """``term`` as its numerical coefficient and a map from base to exponent."""
    coefficient, rest = term.as_coeff_Mul()
    powers: dict = {}
    for factor_ in Mul.make_args(rest):
        base, exponent = factor_.as_base_exp() if isinstance(factor_, Pow) else (factor_, S.One)
        powers[base] = powers.get(base, S.Zero) + exponent
    return coefficient, powers


def _lower(a, b):
    """The smaller of two exponents that differ by an integer, or None."""
    gap = a - b
    if not gap.is_integer:
        return None
    return b if gap.is_nonnegative else a


def _common(one, other):
    """The factor of the largest exponents that the two terms, as :func:`_powers`, share."""
    (ca, pa), (cb, pb) = one, other
    shared = {}
    for base in pa.keys() & pb.keys():
        one, two = pa[base], pb[base]
        if one.is_negative and two.is_negative:  # 1/u from u^{-1} and u^{-2}
            low = _lower(-one, -two)
            low = None if low is None else -low
        else:
            low = _lower(one, two)
            low = low if low is not None and (low.is_positive or not low.is_number) else None
        if low is not None:
            shared[base] = low
    number = S.One
    if ca.is_Integer and cb.is_Integer and igcd(int(ca), int(cb)) > 1:
        number = S(igcd(int(ca), int(cb)))
    return number, shared


def _divides(common, term):
    number, shared = common
    coefficient, powers = term
    if number != 1 and not (coefficient.is_Integer and coefficient % number == 0):
        return False
    for base, e in shared.items():
        if base not in powers:
            return False
        have = powers[base]
        if e.is_negative and not (have.is_negative and _lower(-have, -e) == -e):
            return False
        if not e.is_negative and _lower(have, e) != e:
            return False
    return True


def _quotient(common, term):
    number, shared = common
    coefficient, powers = term
    left = {base: e - shared.get(base, 0) for base, e in powers.items()}
    return Mul(coefficient / number, *(base ** e for base, e in left.items()))


def _positive_first(bracket, outer):
    """``bracket`` and its factor ``outer``, with the signs turned where most terms of the
    bracket are negative."""
    negative = sum(t.could_extract_minus_sign() for t in Add.make_args(bracket))
    terms = len(Add.make_args(bracket))
    if 2 * negative > terms or (2 * negative == terms and outer.could_extract_minus_sign()):
        return -bracket, -outer
    return bracket, outer


def _factorings(expr):
    """Every way to take a common factor out of two or more terms of the sum ``expr``,
    shortest first."""
    terms = list(expr.args)
    if len(terms) > PAIRS_OF_AT_MOST:
        return []
    split = [_powers(t) for t in terms]
    found, seen = [], set()
    for a, b in combinations(range(len(terms)), 2):
        common = _common(split[a], split[b])
        number, shared = common
        key = (number, tuple(sorted(shared.items(), key=str)))
        if (number == 1 and not shared) or key in seen:
            continue
        seen.add(key)
        members = [n for n in range(len(terms)) if _divides(common, split[n])]
        outer = Mul(number, *(base ** e for base, e in shared.items()))
        bracket, outer = _positive_first(Add(*(_quotient(common, split[n]) for n in members)),
                                         outer)
        rest = [terms[n] for n in range(len(terms)) if n not in members]
        product_ = Mul(outer, bracket, evaluate=not outer.is_Number)  # 2 (u - v) stays
        candidate = Add(product_, *rest)
        if candidate != expr and candidate not in found:
            found.append(candidate)
    return sorted(found, key=cost)


@rule("factor-common", "take out the common factor", "a u + a v = a (u + v)", kind="algebra",
      nodes=(Add,), once=True, choices=_factorings)
def _factor_common(expr):
    found = _factorings(expr)
    return found[0] if found else None


@rule("factor-grouping", "factor by grouping", "a u - a v + b u - b v = (a + b)(u - v)",
      kind="algebra", nodes=(Add,), once=True)
def _factor_grouping(expr):
    sums = {total: Dummy() for total in sorted(expr.atoms(Sum), key=str)}  # a sum as one letter
    plain = expr.xreplace(sums)
    if (count_ops(plain) > GROUPING_OPERATIONS or len(Add.make_args(expand_mul(plain))) < 4
            or any(power.exp.is_negative for power in plain.atoms(Pow))):  # no fractions
        return None
    factored = factor(plain).xreplace({letter: total for total, letter in sums.items()})
    brackets = [f for f in Mul.make_args(factored) if isinstance(f, Add)]
    if len(brackets) < 2 or factored == expr:
        return None
    outer = Mul(*(f for f in Mul.make_args(factored) if not isinstance(f, Add)))
    turned = []
    for bracket in brackets:
        bracket, outer = _positive_first(bracket, outer)
        turned.append(bracket)
    return Mul(outer, *turned, evaluate=False) if outer == -1 else Mul(outer, *turned)


@rule("merge-powers", "merge powers", "u^a u^b = u^{a+b}, and e^a e^b = e^{a+b}", kind="algebra",
      nodes=(Mul,), once=True)
def _merge_powers(expr):
    args = list(expr.args)
    powered = {f.base for f in args if isinstance(f, Pow)}
    for n, f in enumerate(args):  # (u - 1) beside (1 - u)^a is -(1 - u)
        if isinstance(f, Add) and -f in powered:
            args[n:n + 1] = [S.NegativeOne, -f]
            expr = Mul(*args, evaluate=False)
            break
    bases: dict = {}
    for f in expr.args:
        base, exponent = f.as_base_exp() if isinstance(f, (Pow, exp)) else (f, S.One)
        if isinstance(base, Number):
            continue
        bases.setdefault(base, []).append(f)
    if all(len(v) < 2 for v in bases.values()):
        return None
    merged = []
    for f in expr.args:  # e^u e^v = e^{u+v} too: the base of e^u is e
        base = f.as_base_exp()[0] if isinstance(f, (Pow, exp)) else f
        group = bases.get(base)
        if group is None or len(group) < 2:
            merged.append(f)
        elif f is group[0]:
            merged.append(Pow(base, Add(*(g.as_base_exp()[1] if isinstance(g, (Pow, exp))
                                          else S.One for g in group))))
    return Mul(*merged)


@rule("kronecker-select", "δ_kc f_k = δ_kc f_c", "δ_kc is 0 unless k = c, so beside it k may be "
      "written c", kind="sum", nodes=(Mul,), tex=r"$\delta_{kc} f_k = \delta_{kc} f_c$")
def _kronecker_select(expr):
    delta = KroneckerDelta(k, c)
    if delta not in expr.args:
        return None
    others = [f for f in expr.args if f != delta]
    moved = [f.xreplace({k: c}) for f in others]
    if moved == others:
        return None
    return Mul(delta, *moved)

