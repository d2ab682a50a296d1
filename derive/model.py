"""Stage 1 of the pipeline: the model.

Symbols for a symbolic number of classes ``K``, the logits ``z`` and targets ``y``, the softmax
``q`` and the cross-entropy ``E``, and the facts a target may satisfy.  ``q_i`` and ``E`` are
*abbreviations*: steps show them as they are, and :func:`expand_abbreviations` replaces them by
their definitions when a step has to be evaluated.

SymPy's range problem lives here and only here.  ``Sum(f, (i, 1, K))`` differentiated by SymPy
gives Kronecker deltas and ``Piecewise((..., K >= k), (0, True))``; the rules never ask SymPy to
differentiate a sum over a symbolic range, and the one fact they need about the free index, that
``1 <= k <= K``, is stated by :data:`FREE_INDEX_RANGE` and used by the rules that collapse a delta
or split a term off a sum (:class:`SumExcept` holds the remainder, ``Σ_{i≠k}``).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from sympy import (Add, Eq, Expr, IndexedBase, Indexed, KroneckerDelta, Pow, StrictGreaterThan,
                   Sum, Symbol, Tuple, exp, log, sympify)

#: Number of classes: a positive integer, never a number.
K = Symbol("K", integer=True, positive=True)
#: Bound indices of sums, and the free class index ``k`` of the gradient.
i = Symbol("i", integer=True, positive=True)
j = Symbol("j", integer=True, positive=True)
k = Symbol("k", integer=True, positive=True)
#: A second free class index (the Hessian's), and the class of a one-hot target.
l = Symbol("l", integer=True, positive=True)  # noqa: E741
c = Symbol("c", integer=True, positive=True)
_m = Symbol("r", integer=True, positive=True)  # bound index of a softmax denominator over j

#: A real shift of the logits: softmax(z - a) = softmax(z) for every real a.
a = Symbol("a", real=True)
#: The temperature of a tempered softmax, and the amount of label smoothing.
T = Symbol("T", positive=True)
epsilon = Symbol("epsilon", positive=True)
#: Real parameters a step may contain; the checker draws them at random.
PARAMETERS = (a, T, epsilon)

#: A batch of N examples, indexed by n and m.
N = Symbol("N", integer=True, positive=True)
n = Symbol("n", integer=True, positive=True)
m = Symbol("m", integer=True, positive=True)

#: The D inputs of a linear layer, indexed by d and g.
D = Symbol("D", integer=True, positive=True)
d = Symbol("d", integer=True, positive=True)
g = Symbol("g", integer=True, positive=True)

#: Free indices and the range each one is known to lie in: 1 <= index <= K (or N, or D).
FREE_INDEX_RANGE = "1 <= k <= K"
INDICES = (i, j, k, l, c, _m, n, m, d, g)
#: The number each index runs up to, where it is not K.
EXTENT = {n: N, m: N, d: D, g: D}

z = IndexedBase("z", real=True)   # logits
y = IndexedBase("y", real=True)   # targets
w = IndexedBase("w", positive=True)  # class weights
Z = IndexedBase("Z", real=True)   # logits of a batch: Z[n, i]
Y = IndexedBase("Y", real=True)   # targets of a batch: Y[n, i]
W = IndexedBase("W", real=True)   # weights of a linear layer: W[k, d]
x = IndexedBase("x", real=True)   # its inputs: x[d]
b = IndexedBase("b", real=True)   # its biases: b[k]
#: The arrays a step may contain, and their shapes; the checker draws each at random.
ARRAYS = (z, y, w, Z, Y, W, x, b)
SHAPES = {z: (K,), y: (K,), w: (K,), Z: (N, K), Y: (N, K), W: (K, D), x: (D,), b: (K,)}

# Abbreviations: each stands for the definition given below (see ABBREVIATIONS).
q = IndexedBase("q", positive=True)       # softmax of z
p = IndexedBase("p", positive=True)       # softmax of z / T
sig = IndexedBase("sigma", positive=True)  # sigmoid of z
y_ls = IndexedBase("y'", real=True)       # label-smoothed one-hot target
E = Symbol("E")                           # cross-entropy of q against y
E_w = Symbol("E_w")                       # class-weighted cross-entropy
E_T = Symbol("E_T")                       # cross-entropy of the tempered softmax p
E_ls = Symbol("E'")                       # cross-entropy against the smoothed target
E_b = Symbol("E_b")                       # binary cross-entropy of independent sigmoids
Q = IndexedBase("Q", positive=True)       # softmax of each row of a batch: Q[n, i]
ell = IndexedBase("ell")                  # the loss of example n of a batch
L = Symbol("L")                           # the mean loss of a batch
E_lin = Symbol("E_lin")                   # the cross-entropy of a linear layer's logits


def exp_sum(bound: Symbol = j) -> Sum:
    """``Σ_{bound=1}^{K} e^{z_bound}``, the softmax denominator."""
    return Sum(exp(z[bound]), (bound, 1, K))


def softmax(index) -> Expr:
    """``q_index = e^{z_index} / Σ_j e^{z_j}`` (the bound index avoids ``index``)."""
    bound = _m if index == j else j
    return exp(z[index]) / exp_sum(bound)


def cross_entropy(target: IndexedBase = y, probs: IndexedBase = q) -> Expr:
    """``E = -Σ_i y_i log q_i`` (for another target or softmax when given)."""
    return -Sum(target[i] * log(probs[i]), (i, 1, K))


def weighted_cross_entropy() -> Expr:
    """``E_w = -Σ_i w_i y_i log q_i``."""
    return -Sum(w[i] * y[i] * log(q[i]), (i, 1, K))


def tempered_softmax(index) -> Expr:
    """``p_index = e^{z_index / T} / Σ_j e^{z_j / T}``."""
    bound = _m if index == j else j
    return exp(z[index] / T) / Sum(exp(z[bound] / T), (bound, 1, K))


def sigmoid(index) -> Expr:
    """``σ_index = 1 / (1 + e^{-z_index})``."""
    return 1 / (1 + exp(-z[index]))


def binary_cross_entropy() -> Expr:
    """``E_b = -Σ_i (y_i log σ_i + (1 - y_i) log(1 - σ_i))``, one sigmoid per class."""
    return -Sum(Add(y[i] * log(sig[i]), (1 - y[i]) * log(1 - sig[i]), evaluate=False), (i, 1, K))


def smoothed_target(index) -> Expr:
    """``y'_index = (1 - ε) δ_index,c + ε / K``: one-hot at c, smoothed by ε."""
    return Add((1 - epsilon) * KroneckerDelta(index, c), epsilon / K, evaluate=False)


def batch_softmax(row, index) -> Expr:
    """``Q_{n,index} = e^{Z_{n,index}} / Σ_j e^{Z_{n,j}}``: the softmax of row n."""
    bound = _m if index == j else j
    return exp(Z[row, index]) / Sum(exp(Z[row, bound]), (bound, 1, K))


def example_loss(row) -> Expr:
    """``ℓ_n = -Σ_i Y_{n,i} log Q_{n,i}``: the cross-entropy of example n."""
    return -Sum(Y[row, i] * log(Q[row, i]), (i, 1, K))


def linear(index) -> Expr:
    """``Σ_g W_{index,g} x_g + b_index``: the logit a linear layer gives class ``index``."""
    return Add(Sum(W[index, g] * x[g], (g, 1, D)), b[index], evaluate=False)


def linear_cross_entropy() -> Expr:
    """``E`` with every logit z_i replaced by the linear layer's ``Σ_g W_ig x_g + b_i``."""
    return expand_abbreviations(E).xreplace({z[j]: linear(j), z[i]: linear(i)})


def batch_mean() -> Expr:
    """``L = (1/N) Σ_n ℓ_n``: the mean loss of a batch."""
    return Sum(ell[n], (n, 1, N)) / N


#: The Hessian's two matrices, entry by entry: [diag(q)]_kl = q_k δ_kl and [q qᵀ]_kl = q_k q_l.
diag_q = IndexedBase("diag_q", real=True)
outer_q = IndexedBase("outer_q", positive=True)
#: The linear layer's weight gradient as a matrix: [(q - y) xᵀ]_kd = (q_k - y_k) x_d.
outer_grad = IndexedBase("outer_grad", real=True)

#: The shapes of the abbreviations that are arrays.
SHAPES = MappingProxyType({**SHAPES, q: (K,), p: (K,), sig: (K,), y_ls: (K,), Q: (N, K),
                           ell: (N,), diag_q: (K, K), outer_q: (K, K),
                           outer_grad: (K, D)})

#: Every abbreviation of the catalogue and the definition it stands for (read-only).
ABBREVIATIONS = MappingProxyType({
    E: cross_entropy, E_w: weighted_cross_entropy, E_T: lambda: cross_entropy(y, p),
    E_ls: lambda: cross_entropy(y_ls, q), E_b: binary_cross_entropy,
    q: softmax, p: tempered_softmax, sig: sigmoid, y_ls: smoothed_target,
    L: batch_mean, ell: example_loss, Q: batch_softmax, E_lin: linear_cross_entropy,
    diag_q: lambda row, col: q[row] * KroneckerDelta(row, col),
    outer_q: lambda row, col: q[row] * q[col],
    outer_grad: lambda row, col: (q[row] - y[row]) * x[col],
})
#: The cross-entropies of the softmax q, by their target.
TARGET_OF = MappingProxyType({E: y, E_ls: y_ls})


class Loss(Symbol):
    """ℒ: a loss a user wrote, an abbreviation that carries its own definition.

    Nothing is recorded anywhere else: the derivation whose steps hold ℒ holds its formula,
    and two symbols of the same formula are equal (so a check of one is a check of the other).
    """

    def __new__(cls, formula: Expr, name: str = "Lcal"):
        obj = Symbol.__xnew__(cls, name)
        obj.formula = sympify(formula)
        return obj

    def _hashable_content(self):
        return (self.name, self.formula)

    def __getnewargs_ex__(self):
        return ((self.formula, self.name), {})

    def _sympyrepr(self, printer):
        return f"{type(self).__name__}({printer._print(self.formula)})"


def define_loss(formula: Expr) -> Loss:
    """The abbreviation ℒ that stands for ``formula``, a loss a user wrote."""
    return Loss(formula)


def definition(abbreviation):
    """The function that gives the definition of ``abbreviation`` (a symbol such as ``E``, an
    array such as ``q``, or a user's ℒ), or None when it is not an abbreviation."""
    if isinstance(abbreviation, Loss):
        return lambda: abbreviation.formula
    return ABBREVIATIONS.get(abbreviation)


class SumExcept(Expr):
    """``Σ_{index≠skip, 1<=index<=K} function``: a sum with one term taken out.

    ``doit`` gives the full sum less the term at ``skip``, which is right because ``skip``
    lies in ``1..K`` (:data:`FREE_INDEX_RANGE`).
    """

    def __new__(cls, function, limits, skip):
        return Expr.__new__(cls, sympify(function), Tuple(*limits), sympify(skip))

    @property
    def function(self) -> Expr:
        return self.args[0]

    @property
    def limits(self) -> Tuple:
        return self.args[1]

    @property
    def index(self) -> Symbol:
        return self.args[1][0]

    @property
    def skip(self) -> Expr:
        return self.args[2]

    @property
    def free_symbols(self):
        return Sum(self.function, tuple(self.limits)).free_symbols | self.skip.free_symbols

    def as_sum(self) -> Expr:
        return Sum(self.function, tuple(self.limits)) - self.function.subs(self.index, self.skip)

    def doit(self, **hints):
        return self.as_sum().doit(**hints)

    def _eval_is_extended_real(self):
        return self.function.is_extended_real


@dataclass(frozen=True)
class Fact:
    """A property of the target that a step may use; the checker samples targets with it."""

    name: str
    statement: Expr
    text: str


PROBABILITY = Fact("probability", Eq(Sum(y[i], (i, 1, K)), 1),
                   "y is a probability vector: its entries sum to 1")
LINEAR = Fact("linear", Eq(z[i], Sum(W[i, g] * x[g], (g, 1, D)) + b[i]),
              "the logits come from a linear layer: z = W x + b")
POSITIVE = Fact("positive", StrictGreaterThan(y[i], 0),
                 "the targets are positive: y_i > 0 for every i, where the loss is defined")
ONE_HOT = Fact("one-hot", Eq(y[i], KroneckerDelta(i, c)),
               "y is one-hot at class c: y_c = 1 and every other entry is 0")


def is_abbreviation(expr) -> bool:
    """True for ``E``, ``q_index``, a user's ℒ and the other names that stand for longer
    expressions."""
    if isinstance(expr, Indexed):
        return expr.base in ABBREVIATIONS
    return isinstance(expr, Loss) or (isinstance(expr, Symbol) and expr in ABBREVIATIONS)


def _abbreviations_in(expr: Expr) -> set:
    """The abbreviations that ``expr`` holds: symbols, user's losses and array bases."""
    return {a for a in expr.atoms(Symbol, IndexedBase)
            if is_abbreviation(a) or (isinstance(a, IndexedBase) and a in ABBREVIATIONS)}


def expand_abbreviations(expr: Expr, symbols_only: bool = False) -> Expr:
    """Replace every abbreviation by its definition, until none is left (only the loss
    symbols such as ``E`` with ``symbols_only``)."""
    for _ in range(5):  # definitions refer to other abbreviations at most a few levels deep
        expr = expr.xreplace({sym: definition(sym)() for sym in expr.atoms(Symbol)
                              if is_abbreviation(sym)})
        if symbols_only:
            return expr
        expr = expr.replace(lambda e: isinstance(e, Indexed) and e.base in ABBREVIATIONS,
                            lambda e: ABBREVIATIONS[e.base](*e.indices))
        if not _abbreviations_in(expr):
            return expr
    return expr


def own_symbols(*exprs: Expr) -> tuple[list, list]:
    """The scalar parameters (γ, α, ...) and per-class arrays (π, ...) that a user's loss brings
    into ``exprs``: the symbols and arrays that are not the model's."""
    known = {*PARAMETERS, *INDICES, K, N, D}
    parameters, arrays = set(), set()
    for expr in exprs:  # a user's loss is a symbol; the model's other abbreviations bring none
        full = expand_abbreviations(expr, symbols_only=True)
        labels = {base.label for base in full.atoms(IndexedBase)}
        parameters |= {s for s in full.free_symbols if isinstance(s, Symbol)
                       and not is_abbreviation(s) and s not in known and s not in labels}
        arrays |= {e.base for e in full.atoms(Indexed) if e.base not in ARRAYS
                   and e.base not in ABBREVIATIONS}
    return sorted(parameters, key=str), sorted(arrays, key=str)


def depends_on_logits(expr: Expr) -> bool:
    """Whether ``expr`` varies with the logits (through ``z`` or an abbreviation)."""
    if expr.has(z, Z, W, b):
        return True
    return any(depends_on_logits(a.formula) if isinstance(a, Loss) else a != y_ls
               for a in _abbreviations_in(expr))


def is_logit(expr) -> bool:
    return isinstance(expr, Indexed) and expr.base in (z, Z)


def free_indices(expr) -> set[Symbol]:
    """The index symbols of ``expr`` that no sum binds (SymPy's ``free_symbols`` loses some
    inside unevaluated derivatives)."""
    if expr in INDICES:
        return {expr}
    if isinstance(expr, (Sum, SumExcept)):
        limits = expr.limits if isinstance(expr, Sum) else (expr.limits,)
        inner = free_indices(expr.function) - {index for index, _, _ in limits}
        extra = free_indices(expr.skip) if isinstance(expr, SumExcept) else set()
        bounds = set().union(*(free_indices(lo) | free_indices(hi) for _, lo, hi in limits))
        return inner | bounds | extra
    return set().union(*(free_indices(a) for a in expr.args)) if expr.args else set()


def needs_positive_target(loss: Expr) -> bool:
    """Whether ``loss`` takes the log, a root or another non-integer (or negative) power of
    an expression of the target ``y`` that is not positive (or, for a root, not non-negative)
    for every real target: it is then defined only for positive targets."""
    def of_target(e) -> bool:
        return any(x.base == y for x in e.atoms(Indexed))
    logs = any(of_target(e.args[0]) and not e.args[0].is_positive for e in loss.atoms(log))
    powers = any(of_target(e.base) and not (e.exp.is_Integer and e.exp > 0) and not (
        e.base.is_positive or (e.base.is_nonnegative and e.exp.is_positive))
        for e in loss.atoms(Pow))
    return logs or powers
