"""Stage 1: the model's symbols, abbreviations, facts and the Σ_{i≠k} object."""
from sympy import Integer, Sum, exp, log

from derive import model
from derive.model import K, E, SumExcept, i, j, k, q, y, z


def test_symbolic_number_of_classes():
    assert K.is_integer and K.is_positive
    assert K.is_number is False


def test_softmax_avoids_capturing_its_own_index():
    assert model.softmax(i) == exp(z[i]) / Sum(exp(z[j]), (j, 1, K))
    bound = model.softmax(j).as_numer_denom()[1].limits[0][0]
    assert bound != j


def test_abbreviations_expand_to_definitions():
    assert model.expand_abbreviations(q[k]) == model.softmax(k)
    expanded = model.expand_abbreviations(E)
    assert expanded == -Sum(y[i] * log(model.softmax(i)), (i, 1, K))
    assert not expanded.has(q)


def test_sum_except_is_the_sum_less_one_term():
    s = SumExcept(y[i], (i, 1, K), k)
    assert s.as_sum() == Sum(y[i], (i, 1, K)) - y[k]
    assert s.subs({K: 3, k: 2}).doit() == y[1] + y[3]
    assert i not in model.free_indices(s) and k in model.free_indices(s)


def test_free_indices_ignore_bound_ones():
    assert model.free_indices(Sum(y[i] * z[k], (i, 1, K))) == {k}
    assert model.free_indices(z[i] + q[k]) == {i, k}


def test_facts_are_explicit_statements():
    assert model.PROBABILITY.statement.lhs == Sum(y[i], (i, 1, K))
    assert model.PROBABILITY.statement.rhs == Integer(1)
    assert model.ONE_HOT.statement.lhs == y[i]


def test_dependence_on_logits():
    assert model.depends_on_logits(q[i]) and model.depends_on_logits(E)
    assert not model.depends_on_logits(y[i] * 3)
