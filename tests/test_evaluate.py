"""derive.evaluate: any expression of the model, at numbers, with 0-based indices."""
import math

import pytest
from sympy import Derivative, KroneckerDelta

import derive
from derive.errors import InputError
from derive.model import E, i, k, q, y, z

LOGITS, LABEL = [1.0, 2.0, 0.5], [0.0, 1.0, 0.0]


def test_softmax_and_loss_of_the_worked_example():
    qs = [derive.evaluate(q[k], LOGITS, k=n) for n in range(3)]
    assert [round(v, 2) for v in qs] == [0.23, 0.63, 0.14]
    assert derive.evaluate(E, LOGITS, LABEL) == pytest.approx(-math.log(qs[1]))


@pytest.mark.parametrize("name", ["logsumexp", "chain"])
def test_every_step_has_the_same_value(derivations, name):
    # the worked example is one-hot, so every fact in force holds
    d = derivations[name]
    grads = [derive.evaluate(s.expr, LOGITS, LABEL, k=0, c=1) for s in d.main_steps
             if s.lhs == Derivative(E, z[k])]
    assert grads == pytest.approx([0.2312239] * len(grads), abs=1e-7)


def test_indices_are_zero_based():
    assert derive.evaluate(y[k], LOGITS, LABEL, k=1) == 1.0
    assert derive.evaluate(KroneckerDelta(i, k), LOGITS, k=2, i=2) == 1.0


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 3}, "index k=3 is out of range 0..2"),
    ({}, "needs a value for index k"),
    ({"k": 0, "v": 1}, "unknown index, array or parameter 'v'"),
])
def test_bad_indices(kwargs, message):
    with pytest.raises(InputError, match=message):
        derive.evaluate(q[k] - y[k], LOGITS, LABEL, **kwargs)


def test_bad_arrays():
    with pytest.raises(InputError, match=r"disagree on the number of classes.*: z \(3,\), y \(2,\)"):
        derive.evaluate(E, LOGITS, [1, 0])
    with pytest.raises(InputError, match="z must be a non-empty array"):
        derive.evaluate(E, [], [])
    with pytest.raises(InputError, match="give the logits"):
        derive.evaluate(E)


def test_batch_arrays():
    from derive.model import L, Z, m
    logits = [[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]]
    targets = [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    mean = derive.evaluate(L, Z=logits, Y=targets)
    assert mean == pytest.approx((0.4643688 + math.log(3)) / 2)
    grad = derive.evaluate(derive.derivation("batch-mean").result, Z=logits, Y=targets, m=1, k=0)
    assert grad == pytest.approx((1 / 3 - 1) / 2)
    with pytest.raises(InputError, match="index m=2 is out of range 0..1"):
        derive.evaluate(Z[m, k], Z=logits, m=2, k=0)


def test_readme_style_doctest():
    import doctest
    failures, tried = doctest.testmod(derive, verbose=False)
    assert tried > 0 and failures == 0
