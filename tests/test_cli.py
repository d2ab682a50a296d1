"""Front end: the CLI through main([...]), and its answers to bad input."""
import subprocess
import sys

import pytest

import derive
from derive.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_latex_prints_every_derivation(capsys):
    code, out, err = run(capsys, "latex")
    assert code == 0 and err == ""
    assert out.count(r"\begin{align*}") == len(derive.names())


def test_latex_route_and_document(capsys):
    code, out, _ = run(capsys, "latex", "--route", "chain", "--document")
    assert code == 0
    assert out.startswith(r"\documentclass") and out.rstrip().endswith(r"\end{document}")
    assert out.count(r"\begin{align*}") == 1


@pytest.mark.parametrize("fmt, marker", [("markdown", "$$"), ("text", "∂E/∂z_k")])
def test_other_formats(capsys, fmt, marker):
    code, out, _ = run(capsys, fmt, "--route", "logsumexp")
    assert code == 0 and marker in out


def test_check_reports_each_derivation(capsys, monkeypatch, reports):
    # the test run's reports stand in for checking the whole catalogue a second time
    monkeypatch.setattr("derive.check.check", lambda d: reports[d.name])
    code, out, _ = run(capsys, "check")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == len(derive.names())
    assert lines[0].startswith("logsumexp: 9 steps, 24,800 samples at K=2..8; "
                               "proved symbolically: steps 1, 2, 3, 8")
    assert lines[2].startswith("chain: 11 steps") and lines[2].endswith("q_k - y_k")
    assert "batch-mean: 5 steps" in out and "proved symbolically: step 1;" in out


def test_check_checks_afresh(capsys):
    code, out, _ = run(capsys, "check", "--route", "chain")
    assert code == 0 and out.startswith("chain: 11 steps, 50,400 samples at K=2..8")


def test_check_fails_with_exit_1(capsys, monkeypatch):
    import dataclasses

    from derive.derivations import build as real_build
    from derive.model import q, y, k

    def broken(name):
        d = real_build(name)
        steps = list(d.steps)
        last = max(n for n, s in enumerate(steps) if not s.aside)  # the result, not an aside
        steps[last] = dataclasses.replace(steps[last], expr=q[k] + y[k])
        return dataclasses.replace(d, steps=tuple(steps), goal=q[k] + y[k])

    monkeypatch.setattr("derive.derivations.build", broken)
    code, out, err = run(capsys, "check", "--route", "chain")
    assert code == 1
    assert err.startswith("derive: check failed: derivation 'chain', step 10 (expand) does not hold")
    assert len(err.splitlines()) == 1


def test_list(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == derive.names()


def test_eval_worked_example_of_the_log_sum_exp_article(capsys):
    code, out, _ = run(capsys, "eval", "--logits", "1", "2", "0.5", "--label", "1")
    assert code == 0
    assert out.splitlines() == ["softmax   0.2312 0.6285 0.1402",
                                "loss      0.4644",
                                "gradient  0.2312 -0.3715 0.1402"]


def test_eval_worked_example_of_the_chain_rule_article(capsys):
    code, out, _ = run(capsys, "eval", "--probs", "0.2", "0.6", "0.2", "--target", "1", "0", "0")
    assert code == 0
    assert "loss      1.6094" in out.splitlines()
    assert "gradient  -0.8000 0.6000 0.2000" in out.splitlines()


def test_eval_probability_target(capsys):
    code, out, _ = run(capsys, "eval", "--logits", "0", "0", "--target", "0.5", "0.5", "--digits", "3")
    assert code == 0 and "loss      0.693" in out and "gradient  0.000 0.000" in out


BAD = [
    (["eval", "--logits", "1", "abc", "--label", "0"], "invalid float value: 'abc'"),
    (["eval", "--logits", "1", "2", "--label", "2"], "--label: 2 is out of range 0..1"),
    (["eval", "--logits", "1", "2", "--label", "-1"], "--label: -1 is out of range 0..1"),
    (["eval", "--logits", "1", "2", "--label", "x"], "invalid int value: 'x'"),
    (["eval", "--logits", "1", "2", "--target", "1"], "--target has 1 values but there are 2 classes"),
    (["eval", "--logits", "1", "2", "--target", "-0.5", "1.5"], "--target: probabilities must not be negative"),
    (["eval", "--logits", "1", "2", "--target", "nan", "1"], "--target: nan is not allowed"),
    (["eval", "--logits", "nan", "2", "--label", "0"], "--logits: nan is not allowed"),
    (["eval", "--probs", "0.5", "0.6", "--label", "0"], "--probs: probabilities must sum to 1"),
    (["eval", "--probs", "-0.5", "1.5", "--label", "0"], "--probs: probabilities must not be negative"),
    (["eval", "--logits", "1", "2"], "give the true class with --label, or a target with --target"),
    # options that go with --loss, without it; a repeated one; a target the loss does not use
    (["text", "--name", "focal"], "--name goes with --loss"),
    (["check", "--assume", "any"], "--assume goes with --loss"),
    (["eval", "--logits", "1", "2", "--label", "0", "--param", "gamma=2"], "--param goes with --loss"),
    (["eval", "--logits", "1", "2", "--label", "0", "--array", "w=1,2"], "--array goes with --loss"),
    (["eval", "--loss", "-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)", "--logits", "1", "2",
      "--target", "0.5", "0.5", "--param", "gamma=2", "--param", "gamma=3"],
     "--param gamma: given more than once"),
    (["eval", "--loss", "-log(q[c])", "--logits", "1", "2", "--target", "0.5", "0.5"],
     "the loss uses the class c: give --label"),
    (["eval", "--loss", "sum(z[i]**2, i)", "--logits", "1", "2", "--target", "0.5", "0.5"],
     "--target: the loss uses neither the target y nor the class c"),
    (["eval", "--loss", "-sum(y[i]*log(q[i]), i)", "--logits", "1", "2"],
     "the loss uses the target y: give --target"),
    (["latex", "--route", "nope"], "unknown derivation 'nope'; choose from logsumexp, any-target, chain"),
    (["latex", "--route", "chian"], "unknown derivation 'chian'; did you mean 'chain'?"),
    (["check", "--route", "chain", "hesian"], "unknown derivation 'hesian'; did you mean 'hessian'?"),
    (["markdown", "--document"], "unrecognized arguments: --document"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["eval", "--logits", "1", "2", "--label", "0", "--digits", "-1"],
     "argument --digits: -1 is out of range 0..17"),
    (["eval", "--logits", "1", "2", "--label", "0", "--digits", "18"],
     "argument --digits: 18 is out of range 0..17"),
    (["eval", "--logits", "1", "-nan", "--label", "0"], "--logits: nan is not allowed"),
    (["eval", "--logits", "1", "-inf", "--target", "0", "-inf"], "--target: -inf is not allowed"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(b[0]) or "nothing" for b in BAD])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("derive: error: ")
    assert message in err


def test_no_command_prints_the_usage_and_points_to_help(capsys):
    for argv in ([], ["--quiet"]):
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == ""
        usage, hint = err.splitlines()
        assert usage.startswith("usage: derive")
        assert hint == "derive: error: no command given; `derive --help` lists the commands"


def test_version(capsys):
    assert main(["--version"]) == 0  # returned, not raised: main() flushes stdout itself
    assert capsys.readouterr().out.strip() == f"derive {derive.__version__}"


def test_help(capsys):
    for argv in (["--help"], ["eval", "--help"], ["build", "--help"], ["text", "--help"]):
        assert main(argv) == 0
        assert "usage: derive" in capsys.readouterr().out


def test_python_dash_m():
    done = subprocess.run([sys.executable, "-m", "derive", "eval", "--logits", "1", "2", "0.5",
                           "--label", "7"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == "derive: error: --label: 7 is out of range 0..2\n"


def test_a_fault_of_derive_itself_is_one_line_and_exit_70(capsys, monkeypatch):
    def broken(name):
        raise ValueError("something inside broke")
    monkeypatch.setattr("derive.derivation", broken)
    code, out, err = run(capsys, "text", "--route", "chain")
    assert code == 70 and out == ""
    assert err == ("derive: internal error: ValueError: something inside broke "
                   "(set DERIVE_DEBUG=1 to see where)\n")
    monkeypatch.setenv("DERIVE_DEBUG", "1")
    with pytest.raises(ValueError):
        main(["text", "--route", "chain"])


def test_zero_prints_without_a_sign(capsys):
    from derive.cli import _formatter
    fmt = _formatter(4)
    assert [fmt(v) for v in (-0.0, -1e-9, 0.0, -0.5, 2e-5)] == \
        ["0.0000", "0.0000", "0.0000", "-0.5000", "0.0000"]
    code, out, _ = run(capsys, "eval", "--loss", "sum(z[i]**2, i)", "--logits", "0", "-1e-9")
    assert code == 0 and out == "loss      0.0000\ngradient  0.0000 0.0000\n"


def test_an_error_never_goes_to_stdout_when_stderr_is_closed(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "f.py"
    with open(out, "w") as f:
        done = subprocess.run([sys.executable, "-m", "derive", "code", "--loss", "("],
                              stdout=f, stderr=subprocess.DEVNULL, close_fds=True,
                              preexec_fn=lambda: __import__("os").close(2))
    assert done.returncode == 2 and out.read_text() == ""


def test_a_command_from_a_thread_obeys_its_timeout(capsys):
    import threading
    import time
    found = {}
    fraction = "1/(1 + " * 20 + "q[c]" + ")" * 20

    def work():
        start = time.monotonic()
        found["code"] = main(["check", "--timeout", "1", "--loss", fraction])
        found["seconds"] = time.monotonic() - start
    worker = threading.Thread(target=work)
    worker.start()
    worker.join(30)
    _, err = capsys.readouterr()
    assert found["code"] == 2 and found["seconds"] < 2.0
    assert err.startswith("derive: error: out of time after 1 s while ")


@pytest.mark.parametrize("argv", [
    ["check", "--loss", "-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)"],
    ["text", "--loss", "-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)"],
    ["eval", "--loss", "-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)", "--param", "gamma=2",
     "--logits", "1", "2", "--target", "0.5", "0.5"],
], ids=["check", "text", "eval"])
def test_one_parse_and_one_check_a_command(capsys, monkeypatch, argv):
    import derive
    import derive.check
    calls = {"parse": 0, "check": 0}
    parse, check = derive.parse, derive.check.check

    def counted(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)
        return wrapper
    monkeypatch.setattr(derive, "parse", counted("parse", parse))
    monkeypatch.setattr(derive.check, "check", counted("check", check))
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert calls == {"parse": 1, "check": 1}


def test_sympys_spelling_of_lambda_is_the_parameter_lambda(capsys):
    for name in ("lambda", "lamda"):
        code, out, err = run(capsys, "eval", "--loss", r"-\lambda \log q_{c}", "--param",
                             f"{name}=0.1", "--logits", "1", "2", "3", "--label", "0")
        assert code == 0, err
        assert out.startswith("loss      0.2408\n")
