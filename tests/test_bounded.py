"""A library you can call from anywhere: one deadline and a memory budget for every call, no
signal or timer, any thread, losses defined for positive targets, no state that grows."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import derive
from derive import budget, model
from derive.errors import CheckError

#: inputs that once ran for minutes or ran out of memory: 32 characters that expand to thousands
#: of terms, nested sums whose sample arrays grow as 8^n, and a continued fraction
POWER = "sum((q[i] + y[i] + z[i])**64, i)"
NESTED = "sum(sum(sum(sum(sum(q[a]*q[d]*q[f]*q[g]*q[h], a), d), f), g), h)"
DEEPEST = "sum(sum(sum(sum(sum(sum(sum(sum(q[a]*q[d]*q[f]*q[g]*q[h]*q[i]*q[j]*q[m], a), d), " \
          "f), g), h), i), j), m)"
FRACTION = "1/(1 + " * 20 + "q[c]" + ")" * 20

#: runs a command and reports its time, exit status, stderr and the peak memory of the child
MEASURE = """
import json, resource, subprocess, sys, time
start = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"seconds": time.monotonic() - start, "code": done.returncode,
                  "err": done.stderr, "peak": peak}))
"""


def _measured(*argv):
    env = dict(os.environ, PYTHONWARNINGS="default")
    out = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "derive", *argv],
                         capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out)


@pytest.fixture(scope="module")
def startup():
    """Seconds a process takes to start and import what derive's commands import."""
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", "import derive.cli, derive.check, lark, numpy, sympy"],
                   check=True)
    return time.monotonic() - start


@pytest.mark.parametrize("loss", [POWER, NESTED, DEEPEST, FRACTION],
                         ids=["power of a sum", "5 nested sums", "8 nested sums",
                              "continued fraction"])
def test_an_expensive_input_ends_by_its_deadline_within_the_memory_budget(loss, startup):
    run = _measured("check", "--timeout", "5", "--loss", loss)
    assert run["seconds"] < 5 + 1 + startup  # the deadline counts from derive's start
    assert run["code"] in (0, 2), run["err"]
    if run["code"] == 2:
        assert run["err"].startswith("derive: error: out of time after 5 s while ")
        assert len(run["err"].splitlines()) == 1
    assert run["peak"] < 1 << 30
    assert "Warning" not in run["err"]


def test_the_deadline_covers_the_whole_call():
    start = time.monotonic()
    with pytest.raises(derive.OutOfTime, match="out of time after 0.5 s while"):
        derive.gradient(FRACTION, timeout=0.5)
    assert time.monotonic() - start < 1.5
    with pytest.raises(derive.OutOfTime):
        derive.numpy_module("-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)", timeout=1e-6)


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), "soon", "0.5", True])
def test_a_bad_timeout_is_refused(bad):
    with pytest.raises(derive.DeriveError, match="timeout must be"):
        derive.gradient("-log(q[c])", timeout=bad)


def test_nested_deadlines_keep_the_earlier():
    with budget.deadline(100):
        with budget.deadline(1e-9):
            with pytest.raises(budget.OutOfTime):
                budget.check("the inner block")
        budget.check("the outer block")  # the inner deadline is gone with its block
        assert budget.remaining() > 99
    assert budget.remaining() == float("inf")


def test_a_timer_of_the_caller_is_left_alone():
    if not hasattr(signal, "setitimer"):
        pytest.skip("no interval timers here")
    handler = signal.signal(signal.SIGALRM, lambda *_: None)
    try:
        signal.setitimer(signal.ITIMER_REAL, 30.0)
        derive.gradient("-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)")
        remaining, interval = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < remaining <= 30.0 and interval == 0
        assert signal.getsignal(signal.SIGALRM) is not signal.SIG_DFL
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, handler)


def test_a_derivation_in_a_thread_obeys_its_timeout():
    outcome = {}

    def work():
        start = time.monotonic()
        try:
            derive.gradient(FRACTION, timeout=1.0)
            outcome["result"] = "finished"
        except derive.OutOfTime as e:
            outcome["result"] = str(e)
        outcome["seconds"] = time.monotonic() - start

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(30)
    assert outcome["result"].startswith("out of time after 1 s while")
    assert outcome["seconds"] < 2.0


def test_the_library_works_in_a_thread():
    found = {}
    worker = threading.Thread(target=lambda: found.update(
        d=derive.gradient("-sum(y[i]*log(q[i]), i)"),
        m=derive.numpy_module("-log(q[c])", name="thread_ce")))
    worker.start()
    worker.join(60)
    assert found["d"].result == model.q[model.k] - model.y[model.k]
    loss = found["m"].loss(np.array([1.0, 2.0, 0.5]), np.array(1))
    assert loss == pytest.approx(0.4644, abs=1e-4)


def test_many_derivations_neither_slow_down_nor_grow_a_table():
    tables = (model.ABBREVIATIONS, model.SHAPES, model.TARGET_OF)
    sizes = [len(t) for t in tables]
    losses = [f"-sum(y[i]*log(q[i]), i)*{n + 1}/{n + 2}" for n in range(300)]
    seconds = []
    for text in losses:
        start = time.perf_counter()
        derive.gradient(text)
        seconds.append(time.perf_counter() - start)
    again = []
    for text in losses[:30]:
        start = time.perf_counter()
        derive.gradient(text)
        again.append(time.perf_counter() - start)
    assert [len(t) for t in tables] == sizes
    assert not hasattr(model, "LOSSES")
    # the last 30 derivations against the first 30, run once more now, on the same losses
    assert sum(seconds[-30:]) <= 1.5 * sum(again)


def test_a_derivation_owns_its_definitions():
    d = derive.gradient("-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)")
    loss = d.steps[0].lhs
    assert isinstance(loss, model.Loss) and loss.formula == d.steps[0].expr
    assert loss not in model.ABBREVIATIONS
    with pytest.raises(TypeError):
        model.ABBREVIATIONS[loss] = lambda: 0  # the catalogue's tables are read-only
    with pytest.raises(TypeError):
        model.SHAPES[loss] = ()
    # the same loss written again is the same symbol: its check is the same check
    assert derive.gradient("-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)").steps[0].lhs == loss


#: losses that take the log or a root of the target, and their gradients at the logits z and the
#: target y by central differences of the loss itself
OF_THE_TARGET = {
    "KL divergence": "sum(y[i]*log(y[i]/q[i]), i)",
    "Hellinger distance": "sum((sqrt(q[i]) - sqrt(y[i]))**2, i)/2",
    "symmetric cross-entropy": "-alpha*sum(y[i]*log(q[i]), i) - beta*sum(q[i]*log(y[i]), i)",
    "Jensen-Shannon divergence": "sum(y[i]*log(2*y[i]/(y[i] + q[i])), i)/2 "
                                 "+ sum(q[i]*log(2*q[i]/(y[i] + q[i])), i)/2",
}


@pytest.mark.parametrize("name", OF_THE_TARGET)
def test_a_loss_of_the_log_of_the_target_derives(name):
    text = OF_THE_TARGET[name]
    d = derive.gradient(text)
    assert d.steps[0].rules == ("definition-loss-positive",)
    assert model.POSITIVE in d.steps[0].facts
    rng = np.random.default_rng(3)
    logits, target = rng.normal(size=5), rng.dirichlet(np.ones(5))
    values = {"alpha": 0.7, "beta": 1.3} if "alpha" in text else {}
    loss = d.steps[0].lhs

    def at(z):
        return derive.evaluate(loss, list(z), list(target), **values)
    h = 1e-6
    for k in range(5):
        step = np.eye(5)[k] * h
        central = (at(logits + step) - at(logits - step)) / (2 * h)
        derived = derive.evaluate(d.result, list(logits), list(target), k=k, **values)
        assert derived == pytest.approx(central, rel=1e-6, abs=1e-8)


def test_a_one_hot_target_of_a_loss_of_the_log_of_the_target_is_refused():
    with pytest.raises(derive.DeriveError, match="not defined at the zeros of a one-hot target"):
        derive.gradient("sum(y[i]*log(y[i]/q[i]), i)", assume="one-hot")


@pytest.mark.parametrize("loss", ["q[c]**(-64)", "exp(exp(z[c]))"])
def test_a_sample_that_overflows_is_drawn_again_never_a_failure(loss):
    report = derive._checked_gradient(loss, None, None, 60)[1]
    assert all(step.numeric > 0 for step in report.steps)


def test_a_loss_that_overflows_everywhere_is_named():
    with pytest.raises(CheckError, match=r"cannot be evaluated: e\^\(e\^\(10 \+ z_c\)\) is not "
                                         "finite"):
        derive.gradient("exp(exp(exp(exp(exp(z[c] + 10)))))")


def test_a_wrong_step_is_still_found_where_the_loss_overflows_elsewhere():
    import dataclasses

    from derive.check import check
    d = derive.gradient("exp(exp(z[c]))")
    steps = list(d.steps)
    steps[-1] = dataclasses.replace(steps[-1], expr=steps[-1].expr * 1.001)
    with pytest.raises(CheckError, match="does not hold"):
        check(dataclasses.replace(d, steps=tuple(steps)))


def test_the_checker_plans_samples_within_the_memory_budget():
    from derive.check import sampling
    d = derive.gradient(DEEPEST)
    for step in d.steps:
        for size in sampling.SIZES:
            samples, chunk = sampling.plan((step.expr,), size, 800)
            per_sample = sampling.volume(step.expr, size)
            assert samples * per_sample <= budget.WORK
            assert chunk * per_sample <= max(budget.ELEMENTS, per_sample)
    assert sampling.volume(model.q[model.k], 8) == 64  # q: K entries, each a sum over K
    assert sampling.plan((d.steps[-1].expr,), 8, 800) == (0, 0)  # 8^8 entries a sample: none
    assert sampling.plan((d.steps[-1].expr,), 2, 800)[0] > 0


def test_the_evaluator_never_warns():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = derive.evaluate(model.exp(model.exp(model.z[model.k])), [800.0, 0.0], k=0)
    assert np.isinf(value)


def test_the_mean_of_an_empty_batch_is_nan_without_a_warning():
    import warnings
    catalogue = derive.numpy_module()
    own = derive.numpy_module("-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)")
    empty, labels = np.zeros((0, 3)), np.zeros(0, dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(catalogue.cross_entropy(empty, labels, reduction="mean"))
        assert np.isnan(own.loss(empty, labels, reduction="mean", gamma=2.0))
        assert own.loss(empty, labels, reduction="sum", gamma=2.0) == 0


def test_a_long_product_stops_by_its_deadline():
    # the strategy tries many rules that do not apply; their messages are never printed
    product = "*".join(f"(q[c] + {n})" for n in range(1, 161))
    start = time.monotonic()
    with pytest.raises(derive.OutOfTime):
        derive.gradient(product, timeout=1.0)
    assert time.monotonic() - start < 2.0


def test_a_loss_that_overflows_gets_code_without_a_warning(capsys):
    from derive.cli import main
    assert main(["code", "--loss", "exp(64*sum(y[i]/q[i], i))"]) == 0
    assert "Warning" not in capsys.readouterr().err


def test_a_loss_of_the_log_of_the_target_is_evaluated_at_positive_targets_only(capsys):
    from derive.cli import main
    kl = "sum(y[i]*log(y[i]/q[i]), i)"
    for target in (["--target", "1", "0", "0"], ["--label", "0"]):
        assert main(["eval", "--loss", kl, "--logits", "1", "2", "3", *target]) == 2
        assert "defined for positive targets only" in capsys.readouterr().err
    assert main(["eval", "--loss", kl, "--logits", "1", "2", "3", "--target", ".2", ".3", ".5"]) == 0
    assert capsys.readouterr().out.startswith("loss      0.0780\n")
