"""The domains of a loss's parameters and per-class arrays (derive.domains), one set for the
command line, derive.evaluate and the generated modules; and per-class arrays given one row a
row of logits."""
import functools

import numpy as np
import pytest

import derive
from derive.cli import _formatter, main
from derive.domains import Domain, of_loss
from numerics import central_difference

FOCAL = "-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)"
CROSS_ENTROPY = "-sum(y[i]*log(q[i]), i)"
POLY = "-sum(y[i]*log(q[i]), i) + eps*sum(y[i]*(1 - q[i]), i)"
SMOOTHED = "-sum(((1 - eps)*y[i] + eps/K)*log(q[i]), i)"
TEACHER = "sum(q[i]*log(q[i]/t[i]), i)"
BALANCED = "-sum(alpha[i]*y[i]*log(q[i]), i)"
WEIGHTED_FOCAL = "-alpha[c]*(1 - q[c])**gamma*log(q[c])"
TWO_ARRAYS = "-sum(alpha[i]*t[i]*log(q[i]), i)"


@functools.cache
def module(text):
    return derive.numpy_module(text)


def words(text):
    return {str(s): d.words for s, d in of_loss(derive.parse(text)).items()}


# ---- the rule ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    (FOCAL, {"gamma": "a finite real number ≥ 0"}),                  # an exponent
    (POLY, {"eps": "a finite real number"}),                          # a coefficient
    (SMOOTHED, {"eps": "a finite real number"}),
    ("-sum(y[i]*log(q[i]), i) + lam*log(sum(exp(z[i]), i))**2", {"lam": "a finite real number"}),
    ("(1 - q[c]**rho)/rho", {"rho": "a finite real number > 0"}),    # an exponent and a divisor
    ("-sum(y[i]*(q[i]**(1 - t) - 1)/(1 - t), i)", {"t": "a finite real number < 1"}),
    ("-sum(y[i]*log(exp(z[i]/T)/sum(exp(z[j]/T), j)), i)", {"T": "a finite real number > 0"}),
    ("sqrt(beta)*sum(q[i]**2, i)", {"beta": "a finite real number ≥ 0"}),  # a root
    ("log(beta)*q[c]", {"beta": "a finite real number > 0"}),            # a log
    ("sum(q[i]/t[i], i)", {"t": "a finite real number ≠ 0"}),            # a divisor only
    (TEACHER, {"t": "a finite real number > 0"}),                          # inside a log
    (BALANCED, {"alpha": "a finite real number"}),
    (WEIGHTED_FOCAL, {"gamma": "a finite real number ≥ 0", "alpha": "a finite real number"}),
    ("q[c]*beta*gamma/(beta + gamma)", {"beta": "a finite real number > 0",
                                        "gamma": "a finite real number > 0"}),  # two at once
])
def test_a_domain_follows_from_where_the_value_appears(text, expected):
    assert words(text) == expected


def test_a_domain_holds_finite_numbers_only():
    anything = Domain(((None, None, False, False),))
    assert 0 in anything and -1e300 in anything
    assert not any(v in anything for v in (np.inf, -np.inf, np.nan, 10 ** 400))
    at_least = of_loss(derive.parse(FOCAL))[derive.parse("gamma")]
    assert 0 in at_least and 3 in at_least and -1e-300 not in at_least


def test_the_header_states_the_domains():
    from derive.codegen import own
    text = own.source(own.spec(derive.gradient(WEIGHTED_FOCAL)))
    header = " ".join(text.split('"""')[1].split())
    assert "gamma (a finite real number ≥ 0)" in header
    assert "alpha (each entry a finite real number), each of shape (K,) or the logits' shape" \
        in header
    assert "inf and NaN are refused" in header


# ---- γ = 0 and ε = 0 -------------------------------------------------------------------------------

LOGITS = np.random.default_rng(0).normal(scale=2, size=(4, 5))
LABELS = np.array([0, 4, 2, 1])
PROBS = np.random.default_rng(1).dirichlet(np.ones(5), size=4)


@pytest.mark.parametrize("text, values", [(FOCAL, {"gamma": 0}), (FOCAL, {"gamma": 0.0}),
                                          (POLY, {"eps": 0.0}), (SMOOTHED, {"eps": 0})])
def test_the_baseline_at_zero_is_the_cross_entropy(text, values):
    ce = module(CROSS_ENTROPY)
    for target in (LABELS, PROBS):
        ours = module(text).loss_with_grad(LOGITS, target, **values)
        theirs = ce.loss_with_grad(LOGITS, target)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_a_coefficient_may_be_negative_and_its_gradient_is_right():
    m = module(POLY)
    total = lambda x: m.loss(x, PROBS, "sum", eps=-0.7)  # noqa: E731
    np.testing.assert_allclose(m.grad(LOGITS, PROBS, eps=-0.7), central_difference(total, LOGITS),
                               atol=1e-6)


# ---- inf and NaN, everywhere; the command line and the module refuse the same values ---------------

def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_eval(capsys, text, *values):
    return run(capsys, "eval", "--loss", text, *values, "--logits", "1", "2", "0.5", "--label", "1")


@pytest.mark.parametrize("text, option, name, shape", [
    (FOCAL, "--param", "gamma", None), (POLY, "--param", "eps", None),
    ("-sum(y[i]*log(exp(z[i]/T)/sum(exp(z[j]/T), j)), i)", "--param", "T", None),
    (BALANCED, "--array", "alpha", 3), (TEACHER, "--array", "t", 3)])
@pytest.mark.parametrize("value", ["-2", "-1e-300", "0", "1e-300", "0.5", "inf", "-inf", "nan"])
def test_the_command_line_and_the_module_refuse_the_same_values(capsys, text, option, name,
                                                                shape, value):
    given = value if shape is None else ",".join(["1", value, "2"])
    argv = [option, f"{name}={given}"]
    if text == TEACHER:  # a loss with no target
        code, out, err = run(capsys, "eval", "--loss", text, *argv, "--logits", "1", "2", "0.5")
    else:
        code, out, err = cli_eval(capsys, text, *argv)
    number = float(value) if shape is None else np.array([1, float(value), 2])
    target = np.zeros(3) if text == TEACHER else np.array(1)
    try:
        loss, grad = module(text).loss_with_grad(np.array([1, 2, 0.5]), target, **{name: number})
    except ValueError as e:
        assert code == 2 and out == ""
        assert err == f"derive: error: {e}\n"
        if value in ("inf", "-inf", "nan"):
            assert str(e).startswith((f"{name} must be a finite", f"each entry of {name} must "
                                                                  "be a finite"))
    else:
        assert value not in ("inf", "-inf", "nan")
        assert (code, err) == (0, "")
        fmt = _formatter(4)
        assert out == f"loss      {fmt(loss)}\ngradient  {' '.join(map(fmt, grad))}\n"


def test_derive_evaluate_refuses_the_same_values():
    d = derive.gradient(FOCAL)
    at = dict(z=[1.0, 2.0, 0.5], y=[0.0, 1.0, 0.0])
    assert derive.evaluate(d.steps[0].lhs, **at, gamma=0) == pytest.approx(
        float(module(CROSS_ENTROPY).loss(np.array([1.0, 2.0, 0.5]), np.array(1))))
    for bad in (-1, np.inf, np.nan):
        with pytest.raises(derive.InputError, match=r"^gamma must be a finite real number ≥ 0, "):
            derive.evaluate(d.steps[0].lhs, **at, gamma=bad)
    d = derive.gradient(TEACHER)
    with pytest.raises(derive.InputError, match=r"^each entry of t must be a finite real number "
                                                r"> 0, not 0$"):
        derive.evaluate(d.steps[0].lhs, z=[1.0, 2.0, 0.5], t=[0.5, 0, 0.5])


# ---- per-row arrays -------------------------------------------------------------------------------

ROWS = np.random.default_rng(2).uniform(0.2, 2.0, size=(4, 5))


@pytest.mark.parametrize("text, name, target", [
    (TEACHER, "t", PROBS), (BALANCED, "alpha", LABELS), (BALANCED, "alpha", PROBS),
    (WEIGHTED_FOCAL, "alpha", LABELS)])
def test_a_per_row_array_gives_each_row_what_its_row_gives(text, name, target):
    m = module(text)
    extra = {"gamma": 2.0} if "gamma" in text else {}
    same = m.loss_with_grad(LOGITS, target, **extra, **{name: np.tile(ROWS[0], (4, 1))})
    once = m.loss_with_grad(LOGITS, target, **extra, **{name: ROWS[0]})
    for a, b in zip(same, once):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-16)
    loss, grad = m.loss_with_grad(LOGITS, target, **extra, **{name: ROWS})
    assert loss.shape == (4,) and grad.shape == LOGITS.shape
    for n in range(4):
        row_loss, row_grad = m.loss_with_grad(LOGITS[n], target[n], **extra, **{name: ROWS[n]})
        assert loss[n] == pytest.approx(float(row_loss), rel=1e-13)
        np.testing.assert_allclose(grad[n], row_grad, rtol=1e-13, atol=1e-16)
    assert not np.allclose(loss, once[0])  # the rows' values differ, and so do their losses
    np.testing.assert_allclose(m.loss(LOGITS, target, **extra, **{name: ROWS}), loss, rtol=1e-14)
    np.testing.assert_allclose(m.grad(LOGITS, target, **extra, **{name: ROWS}), grad, rtol=1e-14,
                               atol=1e-16)


@pytest.mark.parametrize("text, name, target", [(TEACHER, "t", PROBS), (BALANCED, "alpha", PROBS),
                                                (WEIGHTED_FOCAL, "alpha", LABELS)])
def test_the_gradient_with_a_per_row_array_matches_central_differences(text, name, target):
    m = module(text)
    extra = {"gamma": 2.0, name: ROWS} if "gamma" in text else {name: ROWS}
    total = lambda x: m.loss(x, target, "sum", **extra)  # noqa: E731
    np.testing.assert_allclose(m.grad(LOGITS, target, **extra), central_difference(total, LOGITS),
                               atol=1e-6)
    mean_loss, mean_grad = m.loss_with_grad(LOGITS, target, "mean", **extra)
    assert mean_loss == pytest.approx(float(np.mean(m.loss(LOGITS, target, **extra))), rel=1e-14)
    np.testing.assert_allclose(mean_grad, m.grad(LOGITS, target, **extra) / 4, rtol=1e-14)


def test_one_per_row_array_brings_the_others_to_the_logits_shape():
    m = module(TWO_ARRAYS)
    alpha = np.array([0.5, 2.0, 1.0, 1.5, 0.8])
    loss, grad = m.loss_with_grad(LOGITS, PROBS, alpha=alpha, t=ROWS)
    for n in range(4):
        row_loss, row_grad = m.loss_with_grad(LOGITS[n], PROBS[n], alpha=alpha, t=ROWS[n])
        assert loss[n] == pytest.approx(float(row_loss), rel=1e-13)
        np.testing.assert_allclose(grad[n], row_grad, rtol=1e-13, atol=1e-16)


def test_a_per_row_array_of_another_shape_is_refused_by_name():
    m = module(TEACHER)
    for bad, shape in ((ROWS[:3], "(3, 5)"), (ROWS[:, :4], "(4, 4)"), (ROWS[None], "(1, 4, 5)"),
                       (ROWS[0, :4], "(4,)")):
        for f in (m.loss, m.grad, m.loss_with_grad):
            with pytest.raises(ValueError) as raised:
                f(LOGITS, PROBS, t=bad)
            assert str(raised.value) == (f"t must have shape (K,) = (5,) or the logits' shape "
                                         f"(4, 5), not {shape}")
    bad_entry = ROWS.copy()
    bad_entry[2, 3] = -1
    with pytest.raises(ValueError, match=r"^each entry of t must be a finite real number > 0, "
                                         r"not -1$"):
        m.loss(LOGITS, PROBS, t=bad_entry)


def test_a_per_row_array_is_not_written_over():
    m = module(WEIGHTED_FOCAL)
    given = ROWS.copy()
    given.setflags(write=False)
    m.loss_with_grad(LOGITS, LABELS, gamma=0.5, alpha=given)
    np.testing.assert_array_equal(given, ROWS)
