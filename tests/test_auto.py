"""Stage 3, automatic: users' own losses derived step by step, checked, and compared with central
differences of the loss itself."""
import numpy as np
import pytest
from sympy import Derivative, KroneckerDelta, exp, log

import derive
from derive.errors import CheckError, DeriveError
from derive.model import c, k, q, y

LOSSES = [
    # name, text, assumption, parameters, arrays
    ("focal", "-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)", "probability", {"gamma": 2.0}, {}),
    ("brier", "sum((q[i] - y[i])**2, i)", "probability", {}, {}),
    ("entropy", "-sum(q[i]*log(q[i]), i)", "any", {}, {}),
    ("cross-entropy", "-sum(y[i]*log(q[i]), i)", "any", {}, {}),
    ("label cross-entropy", "-log(q[c])", "one-hot", {}, {}),
    ("poly-1", "-sum(y[i]*log(q[i]), i) + eps*(1 - sum(y[i]*q[i], i))", "probability",
     {"eps": 1.0}, {}),
    ("z-loss", "beta*log(sum(exp(z[i]), i))**2", "any", {"beta": 1e-4}, {}),
    ("generalized cross-entropy", "sum(y[i]*(1 - q[i]**alpha)/alpha, i)", "probability",
     {"alpha": 0.7}, {}),
    ("class-weighted", "-sum(w[i]*y[i]*log(q[i]), i)", "any", {}, {"w": [0.5, 2.0, 1.0, 1.5]}),
    ("sigmoid BCE", "-sum(y[i]*log(sigma[i]) + (1 - y[i])*log(1 - sigma[i]), i)", "any", {}, {}),
    ("sigmoid focal",
     "-sum(y[i]*(1 - sigma[i])**gamma*log(sigma[i]) + (1 - y[i])*sigma[i]**gamma*log(1 - sigma[i]), i)",
     "any", {"gamma": 2.0}, {}),
    ("confidence penalty", "-sum(y[i]*log(q[i]), i) + beta*sum(q[i]*log(q[i]), i)", "probability",
     {"beta": 0.1}, {}),
    ("logit MSE", "sum((z[i] - y[i])**2, i)/K", "any", {}, {}),
    ("KL to a prior", "sum(pi[i]*(log(pi[i]) - log(q[i])), i)", "any", {},
     {"pi": [0.1, 0.2, 0.3, 0.4]}),
    ("sqrt loss", "sqrt(sum((q[i] - y[i])**2, i) + 1)", "probability", {}, {}),
]


@pytest.fixture(scope="module")
def derived():
    return {name: derive.gradient(text, assume=assume, name=name)
            for name, text, assume, _, _ in LOSSES}


@pytest.mark.parametrize("name, text, assume, params, arrays", LOSSES, ids=[x[0] for x in LOSSES])
def test_gradient_matches_central_differences(derived, name, text, assume, params, arrays):
    d = derived[name]
    assert not d.result.has(Derivative)
    rng = np.random.default_rng(0)
    size = 4
    for _ in range(3):
        z0 = rng.normal(scale=2.0, size=size)
        label = int(rng.integers(size))
        y0 = np.eye(size)[label] if assume == "one-hot" else (
            rng.dirichlet(np.ones(size)) if assume == "probability" else rng.uniform(0, 1, size))
        values = {**params, **arrays, **({"c": label} if assume == "one-hot" else {})}
        loss = d.steps[0].lhs
        for n in range(size):
            up, down = z0.copy(), z0.copy()
            up[n] += 1e-6
            down[n] -= 1e-6
            numeric = (derive.evaluate(loss, up, y0, **values)
                       - derive.evaluate(loss, down, y0, **values)) / 2e-6
            exact = derive.evaluate(d.result, z0, y0, k=n, **values)
            assert exact == pytest.approx(numeric, rel=1e-5, abs=1e-7), (name, n)


def test_cross_entropy_gives_q_minus_y(derived):
    d = derive.gradient("-sum(y[i]*log(q[i]), i)")
    assert d.result == q[k] - y[k]
    assert derived["label cross-entropy"].result == q[k] - KroneckerDelta(k, c)


def test_the_form_for_any_target_is_kept_before_the_fact(derived):
    from sympy import Sum

    from derive.model import K, PROBABILITY, i
    d = derive.gradient("-sum(y[i]*log(q[i]), i)")
    before = [s for s in d.main_steps if PROBABILITY not in s.facts][-1].expr
    assert before == Sum(y[i], (i, 1, K)) * q[k] - y[k]


def test_every_step_names_its_rules_and_is_one_idea(derived):
    from derive import rules
    for d in derived.values():
        for step in d.steps:
            kinds = {rules.get(r).kind for r in step.rules}
            assert step.rules and (len(step.rules) <= 2 or len(kinds) == 1), (d.name, step.rules)


def test_the_same_loss_gives_the_same_steps():
    from derive.render import render
    first = render("latex", [derive.gradient("sum((q[i] - y[i])**2, i)")])
    assert first == render("latex", [derive.gradient("sum((q[i] - y[i])**2, i)")])


def test_a_sympy_expression_is_a_loss_too():
    from sympy import Sum

    from derive.model import K, i
    d = derive.gradient(-Sum(y[i] * log(q[i]), (i, 1, K)))
    assert d.result == q[k] - y[k]


def test_a_loss_the_engine_cannot_finish_names_the_sub_expression():
    from sympy import Function, Sum

    from derive.model import K, i, z
    f = Function("f")
    with pytest.raises(DeriveError, match=r"cannot differentiate f\(z\[i\]\)"):
        derive.gradient(Sum(f(z[i]), (i, 1, K)))


def test_the_class_c_needs_one_hot():
    with pytest.raises(DeriveError, match='assume="one-hot"') as raised:
        derive.gradient("-log(q[c])", assume="probability")
    assert "--" not in str(raised.value)  # the API's words, not the CLI's


def test_the_api_defaults_are_those_of_the_cli():
    # one-hot for a loss of the class c, as the CLI and numpy_module take it
    d = derive.gradient("-log(q[c])")
    assert d.result == q[k] - KroneckerDelta(k, c)


def test_a_time_limit_stops_the_derivation():
    with pytest.raises(derive.OutOfTime, match="out of time after 1e-09 s while"):
        derive.gradient("-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)", timeout=1e-9)
    assert issubclass(derive.OutOfTime, TimeoutError) and issubclass(derive.OutOfTime, DeriveError)


def test_a_wrong_automatic_step_is_rejected(derived):
    import dataclasses

    from derive.check import check
    d = derived["focal"]
    steps = list(d.steps)
    steps[-1] = dataclasses.replace(steps[-1], expr=steps[-1].expr + q[k] * exp(-5))
    with pytest.raises(CheckError, match=f"step {len(steps)}"):
        check(dataclasses.replace(d, steps=tuple(steps)))


def test_evaluate_takes_parameters_and_arrays_by_name(derived):
    d = derived["KL to a prior"]
    with pytest.raises(derive.InputError, match="needs a value for pi"):
        derive.evaluate(d.result, [0.0, 1.0, 2.0, 3.0], [0, 0, 1, 0], k=0)
    value = derive.evaluate(d.result, [0.0, 1.0, 2.0, 3.0], [0, 0, 1, 0], k=0,
                            pi=[0.25, 0.25, 0.25, 0.25])
    softmax = np.exp([0.0, 1.0, 2.0, 3.0]) / np.exp([0.0, 1.0, 2.0, 3.0]).sum()
    assert value == pytest.approx(softmax[0] - 0.25)


# ---- the command line ---------------------------------------------------------------------------

FOCAL = "-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)"


def run(capsys, *argv):
    from derive.cli import main
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_latex_of_your_loss_round_trips(capsys):
    from derive.render.printers import latex
    code, out, err = run(capsys, "latex", "--loss", FOCAL, "--name", "Focal loss")
    assert code == 0 and err == "" and out.startswith("% Focal loss (focal-loss)")
    d = derive.gradient(FOCAL)
    definition = latex(d.steps[0].expr)
    assert definition in out.splitlines()[3]
    assert derive.parse(definition) == derive.parse(FOCAL) == d.steps[0].expr


def test_text_and_check_of_your_loss(capsys):
    code, out, _ = run(capsys, "text", "--loss", "-log(q[c])")  # a leading minus, as typed
    assert code == 0 and out.rstrip().endswith("= q_k - δ_kc\n      ↳ cancel (u (1/u) = 1 for "
                                               "u ≠ 0: q_i, σ_i and 1 - σ_i are never 0)")
    code, out, _ = run(capsys, "check", "--loss", "-sum(q[i]*log(q[i]), i)", "--assume", "any")
    assert code == 0 and out.startswith("your-loss: ") and "samples at K=2..8" in out


def test_eval_of_your_loss(capsys):
    code, out, _ = run(capsys, "eval", "--loss", FOCAL, "--param", "gamma=0", "--logits", "1", "2",
                       "0.5", "--label", "1")
    assert code == 0  # γ = 0 is the cross-entropy: the articles' numbers
    assert out == "loss      0.4644\ngradient  0.2312 -0.3715 0.1402\n"
    code, out, _ = run(capsys, "eval", "--loss", "sum(pi[i]*(log(pi[i]) - log(q[i])), i)",
                       "--array", "pi=0.2,0.3,0.5", "--logits", "1", "2", "0.5")
    assert code == 0 and out.splitlines()[1] == "gradient  0.0312 0.3285 -0.3598"
    code, _, err = run(capsys, "eval", "--loss", "sum(pi[i]*(log(pi[i]) - log(q[i])), i)",
                       "--array", "pi=0.2,0.3,0.5", "--logits", "1", "2", "0.5", "--target", "0",
                       "1", "0")
    assert code == 2 and "--target: the loss uses neither the target y nor the class c" in err


@pytest.mark.parametrize("argv, message", [
    (["text", "--loss", "-sum(y[i]*log(q[i]), i))"], "syntax error: unexpected ')'"),
    (["text", "--loss", "foo(q[i])"], "unknown function 'foo'"),
    (["text", "--loss", "q[j]"], "the index j is not bound by a sum"),
    (["text", "--loss", "-log(q[c])", "--assume", "probability"], "--assume one-hot"),
    (["text", "--loss", "sum(y[i]*log(y[i]/q[i]), i)", "--assume", "one-hot"],
     "not defined at the zeros of a one-hot target"),
    (["text", "--loss", "sum(abs(q[i]), i)"], "abs is not allowed"),
    (["text", "--loss", "__import__('os').system('true')"], "not allowed"),
    (["text", "--loss", FOCAL, "--timeout", "0.000001"], "out of time after 1e-06 s while"),
    (["eval", "--loss", FOCAL, "--logits", "1", "2", "--label", "0"], "needs a value for gamma"),
    (["eval", "--loss", FOCAL, "--param", "gamma", "--logits", "1", "2", "--label", "0"],
     "--param 'gamma': give NAME=NUMBER"),
    (["latex", "--loss", FOCAL, "--route", "chain"], "either --route or --loss"),
])
def test_bad_loss_is_an_error_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith("derive: error: ") and message in err.splitlines()[0]
