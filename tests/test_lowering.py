"""The general lowering: array formulas, named stability rewrites, and generated modules of
users' own losses through the API and the CLI."""
import math

import numpy as np
import pytest

import derive
from derive.cli import main
from derive.codegen import ir, module
from derive.codegen import own as lossmodule
from derive.codegen.backends import numpy_runtime
from derive.codegen.rewrites import Rewrite
from derive.codegen.lower import CITED
from derive.codegen.to_array import to_array

FOCAL = "-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)"


@pytest.fixture(scope="module")
def focal_spec():
    return lossmodule.spec(derive.gradient(FOCAL), "focal")


def helpers(*names):
    """The runtime's helper functions, as the module that defines them has them."""
    return {name: numpy_runtime.HELPERS[name] for name in names}


def test_the_runtime_is_emitted_as_its_own_source_with_what_it_calls():
    text = numpy_runtime.sources({"_logsumexp"})
    space = {"numpy": np}
    exec(compile(text, "runtime", "exec"), space)
    assert {"_logsumexp", "_sum_off_top"} <= set(space)  # _logsumexp calls _sum_off_top
    u = np.array([[1000.0, 0.0, -3.0]])
    assert space["_logsumexp"](u) == numpy_runtime._logsumexp(u)
    assert numpy_runtime.needed({"_take", "numpy.exp"}) == ["_take"]


@pytest.mark.parametrize("rewrite", [rw for rw in CITED
                                     if rw.source], ids=lambda rw: rw.name)
def test_a_rewrite_of_the_model_cites_a_main_step_of_a_derivation(rewrite):
    name, number = rewrite.step(derive.derivation)
    d = derive.derivation(name)
    assert 1 <= number <= len(d.steps)
    assert rewrite.source[1] in d.steps[number - 1].rules


def test_a_rewrite_citing_a_rule_its_derivation_does_not_use_is_refused():
    bogus = Rewrite("bogus", "none", None, ("shift-invariance", "sigmoid-derivative"))
    with pytest.raises(derive.DeriveError, match="no step of shift-invariance uses"):
        bogus.step(derive.derivation)


def test_rewrites_have_distinct_names_and_reasons():
    names = [rw.name for rw in CITED]
    assert len(names) == len(set(names))
    assert all(rw.why for rw in CITED)


def test_one_minus_exp_is_exact_where_one_minus_q_is_not():
    h = helpers("_one_minus_exp")
    log_q = np.array([-1e-20, -1e-10, -0.5, -30.0])
    expected = [-math.expm1(v) for v in log_q]
    np.testing.assert_allclose(h["_one_minus_exp"](log_q), expected, rtol=1e-15)
    assert 1 - np.exp(log_q[0]) == 0  # what plain subtraction gives


def test_log_ratio_has_its_limit_at_zero():
    h = helpers("_log_ratio")
    l = np.array([0.0, -1e-12, -0.3, -700.0])
    expected = [-1.0, -1.0, -0.3 / -math.expm1(-0.3), -700.0]
    np.testing.assert_allclose(h["_log_ratio"](l), expected, rtol=1e-11)


def test_log_one_minus_exp_on_both_sides_of_log_2():
    h = helpers("_log_one_minus_exp")
    l = np.array([-1e-30, -0.1, -0.7, -5.0, -50.0])
    expected = [math.log(-math.expm1(v)) if v > -math.log(2) else math.log1p(-math.exp(v))
                for v in l]
    np.testing.assert_allclose(h["_log_one_minus_exp"](l), expected, rtol=1e-14)
    assert np.isfinite(h["_log_one_minus_exp"](l)).all()


def test_sigmoid_softplus_logsumexp_and_xlogy_do_not_overflow():
    h = helpers("_sigmoid", "_softplus", "_sum_off_top", "_logsumexp", "_xlogy")
    u = np.array([-1000.0, -1.0, 0.0, 2.0, 1000.0])
    np.testing.assert_allclose(h["_sigmoid"](u), [0.0, 1 / (1 + math.e), 0.5,
                                                   1 / (1 + math.exp(-2)), 1.0], atol=1e-300)
    np.testing.assert_allclose(h["_softplus"](u), [0.0, math.log1p(math.exp(-1)), math.log(2),
                                                    math.log1p(math.exp(2)), 1000.0])
    big = np.array([[1000.0, 1000.0]])
    np.testing.assert_allclose(h["_logsumexp"](big), [[1000 + math.log(2)]])
    assert h["_xlogy"](np.array([0.0, 0.5]), np.array([0.0, 0.5])).tolist() == \
        [0.0, 0.5 * math.log(0.5)]


def test_the_focal_gradient_uses_the_stability_rewrites(focal_spec):
    text = lossmodule.source(focal_spec)
    for name in ("log-softmax", "one-minus-softmax", "power-times-log", "one-hot-select",
                 "one-hot-entry"):
        assert f"  {name}: " in text
    assert "_one_minus_exp(" in text and "_log_ratio(" in text
    assert "numpy.subtract(1, probs" not in text
    assert "_logsumexp(" not in text  # q's own max-shifted sum serves, not a second pass


def test_without_its_rewrites_the_focal_gradient_is_nan_where_q_is_one(focal_spec, monkeypatch):
    z = np.array([[0.0, -800.0, -900.0], [40.0, 0.0, -3.0]])
    labels = np.array([0, 0])
    stable = lossmodule.load(focal_spec).grad(z, labels, gamma=0.5)
    assert np.isfinite(stable).all()
    from derive.codegen import lower
    from derive.codegen.rewrites import labels as label_rewrites
    monkeypatch.setattr(lower, "REWRITES", ())
    monkeypatch.setattr(label_rewrites, "REWRITES", ())
    naive = lossmodule.load(focal_spec).grad(z, labels, gamma=0.5)
    assert not np.isfinite(naive).all()


def test_the_source_is_deterministic_and_every_line_says_what_it_computes(focal_spec):
    first, second = lossmodule.source(focal_spec), lossmodule.source(focal_spec)
    assert first == second
    functions = first[first.index("\ndef loss("):]
    body = [line.strip() for line in functions.splitlines() if line.startswith(" " * 12 + "t")
            or line.startswith(" " * 12 + "grad =") or line.startswith(" " * 12 + "loss =")]
    assert body and all("  # " in line for line in body)
    assert all(line.split(" = ", 1)[1].count("numpy.") <= 1 for line in body)


def test_the_header_cites_the_derivation_steps(focal_spec):
    text = lossmodule.source(focal_spec)
    assert f"grad       your-loss, step {focal_spec.grad_step}:" in text
    step = focal_spec.derivation.steps[focal_spec.grad_step - 1]
    from sympy import Derivative
    assert isinstance(step.lhs, Derivative) and not step.facts and not step.aside
    assert not step.expr.has(Derivative)
    later = focal_spec.derivation.steps[focal_spec.grad_step:]
    # the last step for any target, before the steps that only shorten it for the page
    assert all(s.facts or s.aside or s.phase == "tidy" for s in later)


def test_a_formula_with_two_free_indices_cannot_be_lowered():
    from derive.model import k, l, q
    with pytest.raises(ir.LoweringError):
        to_array(q[k] * q[l], ir.Values())


def test_numpy_module_of_a_loss_and_of_the_catalogue():
    m = derive.numpy_module("-log(q[c])", name="ce")
    z = np.array([[1.0, 2.0, 0.5]])
    loss, grad = m.loss_with_grad(z, np.array([1]))
    expected = -np.log(np.exp(2) / np.exp(z).sum())
    np.testing.assert_allclose(loss, [expected])
    assert hasattr(derive.numpy_module(), "cross_entropy_with_grad")
    with pytest.raises(ValueError, match="label c"):
        m.loss(z, np.array([[0.0, 1.0, 0.0]]))


@pytest.mark.parametrize("name", ["class", "1abc", "two words", "x" * 65, "__init__", "numpy",
                                  "math"])
def test_a_module_name_must_be_an_identifier(name):
    with pytest.raises(derive.DeriveError, match="module name"):
        derive.numpy_module("-log(q[c])", name=name)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_derive_code_prints_a_module_that_compiles(capsys):
    code, out, err = run(capsys, "-q", "code", "--loss", FOCAL, "--name", "focal")
    assert code == 0 and err == ""
    space = {}
    exec(compile(out, "focal.py", "exec"), space)
    loss = space["loss"](np.array([[0.0, 1.0]]), np.array([1]), gamma=2.0)
    q = 1 / (1 + math.exp(-1))
    np.testing.assert_allclose(loss, [-(1 - q) ** 2 * math.log(q)])


def test_derive_build_writes_the_module_and_its_derivation(capsys, tmp_path):
    out_dir = tmp_path / "out"
    code, out, _ = run(capsys, "-q", "build", "--loss", FOCAL, "--name", "focal",
                       "--output", str(out_dir))
    assert code == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["focal.md", "focal.py", "focal.tex"]
    assert r"\begin{align*}" in (out_dir / "focal.tex").read_text()
    code, out, _ = run(capsys, "-q", "build", "--loss", FOCAL, "--name", "focal",
                       "--output", str(out_dir), "--check")
    assert code == 0 and "up to date" in out
    (out_dir / "focal.py").write_text("stale\n")
    code, out, _ = run(capsys, "-q", "build", "--loss", FOCAL, "--name", "focal",
                       "--output", str(out_dir), "--check")
    assert code == 1 and "focal.py" in out


@pytest.mark.parametrize("argv, message", [
    (["code", "--loss", "-log(q[c])", "--name", "bad name"], "module name"),
    (["code", "--name", "x"], "goes with --loss"),
    (["build", "--assume", "any"], "goes with --loss"),
])
def test_bad_module_options_get_one_line(capsys, argv, message):
    code, out, err = run(capsys, "-q", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err


def central_differences(f, z, h=1e-6):
    grad = np.zeros_like(z)
    for index in np.ndindex(*z.shape):
        up, down = z.copy(), z.copy()
        up[index] += h
        down[index] -= h
        grad[index] = (f(up)[index[:-1]] - f(down)[index[:-1]]) / (2 * h)
    return grad


@pytest.mark.parametrize("text", [
    "-log(sigma[c])", "exp(-z[c])", "(1 - sigma[c])**2", "log(sigma[c])**2",
    "sum(y[i]*z[i]**2, i)", "-sum(y[i]*log(1 - sigma[i]), i)", "sum(y[i]*sigma[i], i)",
    "sum(y[i]*z[i]**2, i) + sum(z[i], i)", "log(sum(exp(z[c]), i))",
])
def test_gradients_that_are_zero_or_one_value_a_row_away_from_the_label(text):
    m = derive.numpy_module(text)
    z = np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]])
    for labels in (np.array([0, 0]), np.array([2, 1])):
        grad = m.grad(z, labels)
        np.testing.assert_allclose(grad, central_differences(lambda v: m.loss(v, labels), z),
                                   atol=1e-7)
    one_row = m.grad(z[0], np.array(0))
    np.testing.assert_allclose(one_row, m.grad(z, np.array([0, 0]))[0])


def test_a_sum_of_a_constant_is_k_times_it():
    m = derive.numpy_module("log(sum(exp(z[c]), i))")
    z = np.array([[0.5, -1.0, 2.0, 0.0]])
    np.testing.assert_allclose(m.loss(z, np.array([2])), [2.0 + math.log(4)])


def test_the_gradient_is_never_the_callers_logits():
    m = derive.numpy_module("sum(z[i]**2, i)/2")
    z = np.array([[1.0, 2.0, 3.0]])
    grad = m.grad(z, np.array([0]))
    assert not np.shares_memory(grad, z)
    grad += 100
    assert z.tolist() == [[1.0, 2.0, 3.0]]
    loss = m.loss(z, np.array([0]))
    loss += 1  # the loss is an array of our own, and writable
    np.testing.assert_allclose(loss, [8.0])


@pytest.mark.parametrize("text, z, expected", [
    ("-log(sigma[c])", [[-800.0, 0.0]], [800.0]),
    ("-log(1 - sigma[c])", [[1000.0, 0.0]], [1000.0]),
    ("-log(exp(z[c])/sum(exp(z[j]), j))", [[1000.0, 0.0, -500.0], [-800.0, 10.0, 0.0]],
     [0.0, 810.0]),
])
def test_the_rewrites_apply_to_the_entries_at_the_labels(text, z, expected):
    m = derive.numpy_module(text)
    z = np.array(z)
    loss, grad = m.loss_with_grad(z, np.zeros(len(z), dtype=int))
    np.testing.assert_allclose(loss, expected, atol=1e-12)
    assert np.isfinite(grad).all()


def test_a_parameter_too_big_for_a_float_is_a_value_error():
    m = derive.numpy_module(FOCAL)
    with pytest.raises(ValueError, match="gamma"):
        m.loss(np.zeros((1, 2)), np.array([0]), gamma=10 ** 400)


def test_build_check_of_an_own_loss_refuses_a_file_for_a_folder(capsys, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    code, _, err = run(capsys, "-q", "build", "--loss", "-log(q[c])", "--output", str(afile),
                       "--check")
    assert code == 1 and "it is a file" in err


def test_verify_accepts_the_generated_module_and_rejects_a_wrong_one(focal_spec):
    m = lossmodule.load(focal_spec)
    module.verify_own(m, focal_spec)
    right = m.loss_with_grad
    m.loss_with_grad = lambda *a, **v: (right(*a, **v)[0], 1.001 * right(*a, **v)[1])
    with pytest.raises(derive.CheckError, match="does not agree"):
        module.verify_own(m, focal_spec)


def test_verify_rejects_a_module_for_another_derivation(focal_spec):
    import dataclasses
    m = lossmodule.load(focal_spec)
    wrong = dataclasses.replace(focal_spec, loss=focal_spec.loss * 2)
    with pytest.raises(derive.CheckError, match="loss"):
        module.verify_own(m, wrong)
