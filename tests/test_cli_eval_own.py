"""`derive eval --loss`: its numbers come from the generated, checked module of the loss, so
logits of any size give the true values and -inf masks work, as for the catalogue."""
import functools

import numpy as np
import pytest

import derive
from derive.cli import _formatter, main

CROSS_ENTROPY = "-sum(y[i]*log(q[i]), i)"
LABEL_CROSS_ENTROPY = "-log(q[c])"
FOCAL = "-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)"
WEIGHTED_FOCAL = "-alpha[c]*(1 - q[c])**gamma*log(q[c])"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@functools.cache
def module(text):
    return derive.numpy_module(text)


def printed(loss, grad, digits=4):
    fmt = _formatter(digits)
    return f"loss      {fmt(loss)}\ngradient  {' '.join(map(fmt, grad))}\n"


@pytest.mark.parametrize("loss", [CROSS_ENTROPY, LABEL_CROSS_ENTROPY])
@pytest.mark.parametrize("label, lines", [
    ("0", ["loss      0.0000", "gradient  0.0000 0.0000 0.0000"]),
    ("1", ["loss      1000.0000", "gradient  1.0000 -1.0000 0.0000"]),
    ("2", ["loss      2000.0000", "gradient  1.0000 0.0000 -1.0000"]),
])
def test_the_cross_entropy_agrees_with_the_catalogues_at_logits_of_a_thousand(capsys, loss, label,
                                                                             lines):
    logits = ["--logits", "1000", "0", "-1000", "--label", label]
    code, catalogue, err = run(capsys, "eval", *logits)
    assert (code, err) == (0, "")
    code, out, err = run(capsys, "eval", "--loss", loss, *logits)
    assert (code, err) == (0, "")
    assert out.splitlines() == lines == catalogue.splitlines()[1:]


@pytest.mark.parametrize("digits", ["4", "12"])
def test_the_cross_entropy_agrees_with_the_catalogue_with_a_target(capsys, digits):
    argv = ["--logits", "3", "-700", "800", "0.5", "--target", "0.1", "0.2", "0.3", "0.4",
            "--digits", digits]
    code, catalogue, _ = run(capsys, "eval", *argv)
    code_own, out, err = run(capsys, "eval", "--loss", CROSS_ENTROPY, *argv)
    assert code == code_own == 0 and err == ""
    assert out.splitlines() == catalogue.splitlines()[1:]
    assert np.isfinite(float(out.splitlines()[0].split()[1]))


@pytest.mark.parametrize("text, values, target", [
    (FOCAL, ["--param", "gamma=2"], ["--label", "1"]),
    (FOCAL, ["--param", "gamma=0.5"], ["--target", "0.2", "0.5", "0.3"]),
    (WEIGHTED_FOCAL, ["--param", "gamma=0", "--array", "alpha=0.5,-1,2"], ["--label", "2"]),
    ("sum(q[i]*log(q[i]/t[i]), i)", ["--array", "t=0.2,0.3,0.5"], []),
    ("sum((q[i] - y[i])**2, i)", [], ["--target", "0", "1", "0"]),
])
def test_agrees_with_the_generated_module_at_ordinary_logits(capsys, text, values, target):
    logits = [1.0, 2.0, 0.5]
    code, out, err = run(capsys, "eval", "--loss", text, *values, "--logits",
                         *map(str, logits), *target, "--digits", "12")
    assert (code, err) == (0, "")
    given = {}
    for option, item in zip(values[::2], values[1::2]):
        name, _, numbers = item.partition("=")
        given[name] = float(numbers) if option == "--param" else \
            np.array([float(v) for v in numbers.split(",")])
    if not target:
        y = np.zeros(3)
    elif target[0] == "--label":
        y = np.array(int(target[1]))
    else:
        y = np.array([float(v) for v in target[1:]])
    loss, grad = module(text).loss_with_grad(np.array(logits), y, **given)
    assert out == printed(loss, grad, 12)


@pytest.mark.parametrize("text, target, lines", [
    (CROSS_ENTROPY, ["--label", "0"], ["loss      1.3133", "gradient  -0.7311 0.0000 0.7311"]),
    (LABEL_CROSS_ENTROPY, ["--label", "0"],
     ["loss      1.3133", "gradient  -0.7311 0.0000 0.7311"]),
    (CROSS_ENTROPY, ["--target", "0.5", "0", "0.5"],
     ["loss      0.8133", "gradient  -0.2311 0.0000 0.2311"]),
])
def test_a_masked_class_works_as_in_the_catalogue(capsys, text, target, lines):
    logits = ["--logits", "0", "-inf", "1", *target]
    code, catalogue, _ = run(capsys, "eval", *logits)
    code_own, out, err = run(capsys, "eval", "--loss", text, *logits)
    assert code == code_own == 0 and err == ""
    assert out.splitlines() == lines == catalogue.splitlines()[1:]


@pytest.mark.parametrize("argv, message", [
    (["--param", "gamma=-1"], "gamma must be a finite real number ≥ 0, not -1"),
    (["--param", "gamma=inf"], "gamma must be a finite real number ≥ 0, not inf"),
    (["--param", "gamma=-inf"], "gamma must be a finite real number ≥ 0, not -inf"),
    (["--param", "gamma=nan"], "gamma must be a finite real number ≥ 0, not nan"),
    (["--param", "gamma=1e999"], "gamma must be a finite real number ≥ 0, not inf"),
    ([], "the loss needs a value for gamma: give --param gamma=NUMBER"),
    (["--param", "gamma=1", "--param", "beta=2"],
     "--param beta: the loss has no value 'beta' (it takes gamma)"),
    (["--array", "gamma=1,2,3"], "--array gamma: gamma is a scalar parameter of the loss; give "
                                 "it with --param"),
])
def test_a_bad_value_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, "eval", "--loss", FOCAL, *argv, "--logits", "1", "2", "0.5",
                         "--label", "1")
    assert code == 2 and out == ""
    assert err == f"derive: error: {message}\n"


@pytest.mark.parametrize("argv, message", [
    (["--array", "alpha=1,inf,2"], "each entry of alpha must be a finite real number, not inf"),
    (["--array", "alpha=1,nan,2"], "each entry of alpha must be a finite real number, not nan"),
    (["--array", "alpha=1,2"], "--array alpha: 2 values but there are 3 classes"),
    (["--param", "alpha=1"], "--param alpha: alpha is a per-class array of the loss; give it "
                             "with --array"),
])
def test_a_bad_array_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, "eval", "--loss", WEIGHTED_FOCAL, "--param", "gamma=1", *argv,
                         "--logits", "1", "2", "0.5", "--label", "1")
    assert code == 2 and out == ""
    assert err == f"derive: error: {message}\n"


def test_a_logit_of_plus_inf_or_nan_is_still_refused(capsys):
    for bad in ("inf", "nan"):
        code, out, err = run(capsys, "eval", "--loss", CROSS_ENTROPY, "--logits", "1", bad,
                             "--label", "0")
        assert code == 2 and out == "" and len(err.splitlines()) == 1
        assert f"--logits: {bad} is not allowed (must be finite or -inf)" in err
