"""The PyTorch runtime's helpers against the NumPy runtime's, on rows with masked classes, logits
far from 0, infinite and NaN entries, in float64 and float32; and each helper's source, as a
generated module includes it, runs with only torch and math beside it."""
import inspect
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from derive.codegen.backends import emit, numpy_checks, numpy_runtime  # noqa: E402
from derive.codegen.backends import torch_runtime as tr  # noqa: E402

NAMES = ["_shift", "_indices", "_sum_xlogq", "_take", "_sum_off_label", "_class_at", "_one_hot",
         "_set_at_label", "_sum_off_top", "_weighted_sum_off_top", "_balance_top", "_exp",
         "_logsumexp",
         "_log_softmax", "_softmax", "_softplus", "_sigmoid", "_one_minus_exp",
         "_log_one_minus_exp", "_log_one_minus_softmax", "_log_ratio", "_xlogy"]


def rows(dtype, case):
    rng = np.random.default_rng(4)
    z = rng.normal(size=(5, 7))
    if case == "wide":
        z *= 1000
    elif case == "masked":
        z[0, 2] = z[1, :6] = z[3, 0] = -np.inf
    elif case == "ties":
        z[2, :3] = z[2].max() + 1
    return z.astype(dtype)


def same(got, expected, dtype):
    got = got.numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    finite = np.isfinite(expected)
    assert np.array_equal(got[~finite & ~np.isnan(expected)], expected[~finite & ~np.isnan(expected)])
    tolerance = 1e-12 if dtype == np.float64 else 2e-5
    scale = np.maximum(np.abs(expected[finite]), np.finfo(dtype).tiny)
    assert np.all(np.abs(got[finite] - expected[finite]) <= tolerance * np.maximum(scale, 1e-30)
                  + 8 * np.finfo(dtype).eps * np.abs(expected[finite]).max(initial=0))


CASES = [(d, c) for d in (np.float64, np.float32) for c in ("plain", "wide", "masked", "ties")]


@pytest.mark.parametrize("dtype, case", CASES)
def test_softmax_family_as_numpy(dtype, case):
    z = rows(dtype, case)
    t = torch.from_numpy(z)
    for name in ("_logsumexp", "_log_softmax", "_softmax"):
        with np.errstate(all="ignore"):
            expected = getattr(numpy_runtime, name)(z)
        same(getattr(tr, name)(t), expected, dtype)
    shift, top = numpy_checks._shift(z)
    got_shift, got_top = tr._shift(t)
    same(got_shift, shift, dtype)
    if case != "ties":  # with ties, any largest entry is a top
        assert np.array_equal(tr._indices(got_top).numpy(), top)
    with np.errstate(all="ignore"):
        exps = np.exp(z - shift)
        expected = numpy_runtime._sum_off_top(exps.copy(), top)
        same(tr._sum_off_top(torch.from_numpy(exps.copy()), got_top), expected, dtype)
        log_probs = numpy_runtime._log_softmax(z)
        same(tr._log_one_minus_softmax(torch.from_numpy(log_probs), got_top),
             numpy_runtime._log_one_minus_softmax(log_probs, top), dtype)
        same(tr._balance_top(torch.from_numpy(log_probs), got_top),
             numpy_runtime._balance_top(log_probs, top), dtype)
        same(tr._take(torch.from_numpy(z), got_top), numpy_runtime._take(z, top), dtype)


def test_a_tiny_sum_of_the_others_keeps_its_digits():
    z = np.array([[0.0, -700.0, -710.0], [0.0, -30.0, -1e3], [5.0, 5.0, -1.0]])
    exps = np.exp(z - z.max(-1, keepdims=True))
    got = tr._sum_off_top(torch.from_numpy(exps.copy()), None).numpy()[:, 0]
    assert got[0] == math.exp(-700) + math.exp(-710)
    assert got[1] == math.exp(-30)
    assert got[2] == 1 + math.exp(-6)
    assert tr._sum_off_top(torch.zeros(1, 3, dtype=torch.float64), None).item() == -1


@pytest.mark.parametrize("dominated", [5, 60])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sum_off_top_of_few_and_of_most_rows_whose_top_dominates(dtype, dominated):
    """Rows whose top dominates, fewer than half of them (copied out) and most of them (all
    rows taken), among ties, rows of -inf and a NaN: as the NumPy runtime sums them."""
    rng = np.random.default_rng(8)
    z = rng.standard_normal((80, 9))
    z[:dominated, 4] += rng.uniform(20, 60, dominated)
    z[70, :2] = 7.0
    z[71] = -np.inf
    z[72, 3] = np.nan
    z = z.astype(dtype)
    with np.errstate(all="ignore"):
        shift = np.where(np.isfinite(z.max(-1, keepdims=True)), z.max(-1, keepdims=True), 0)
        exps = np.exp(z - shift).astype(dtype)
        top = np.argmax(np.where(np.isnan(z), np.inf, z), -1)[:, None]
        expected = numpy_runtime._sum_off_top(exps.copy(), top)
    plain = exps.sum(-1, keepdims=True) - 1
    assert np.sum(np.abs(plain - expected) > 1e-3 * np.abs(expected)) >= dominated // 2
    got = tr._sum_off_top(torch.from_numpy(exps.copy()), None).numpy()
    assert np.array_equal(np.isnan(got), np.isnan(expected))  # each row to its own digits
    np.testing.assert_allclose(got, expected, rtol=1e-12 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_labels_and_rows_as_numpy(dtype):
    rng = np.random.default_rng(6)
    z, labels = rows(dtype, "masked"), rng.integers(0, 7, (5, 1))
    w = rng.uniform(0, 2, 7).astype(dtype)
    w[3] = 0
    y = rng.dirichlet(np.ones(7), 5).astype(dtype)
    y[0, 2] = 0
    t, lt, wt, yt = (torch.from_numpy(a) for a in (z, labels, w, y))
    with np.errstate(all="ignore"):
        log_probs = numpy_runtime._log_softmax(z)
        shift, top = numpy_checks._shift(z)
        same(tr._sum_xlogq(yt, torch.from_numpy(log_probs)), numpy_runtime._sum_xlogq(y, log_probs),
             dtype)
        same(tr._take(wt, lt), numpy_runtime._take(w, labels), dtype)
        same(tr._take(t, lt), numpy_runtime._take(z, labels), dtype)
        same(tr._sum_off_label(t, lt), numpy_runtime._sum_off_label(z, labels), dtype)
        same(tr._class_at(wt, lt), numpy_runtime._class_at(w, labels), dtype)
        same(tr._class_at(yt, lt), numpy_runtime._class_at(y, labels), dtype)
        same(tr._one_hot(lt, t), numpy_runtime._one_hot(labels, z), dtype)
        row = torch.from_numpy(z[:, :1].copy())
        same(tr._set_at_label(yt, lt, row, t), numpy_runtime._set_at_label(y, labels, z[:, :1], z),
             dtype)
        same(tr._weighted_sum_off_top(wt, t, torch.from_numpy(top)),
             numpy_runtime._weighted_sum_off_top(w, z, top), dtype)
    assert np.array_equal(z, t.numpy()) and np.array_equal(y, yt.numpy())  # inputs unchanged


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_elementwise_as_numpy(dtype):
    u = np.array([-1e4, -50, -1, -1e-9, 0, 1e-9, 1, 50, 1e4, np.inf, -np.inf, np.nan], dtype)
    l = np.array([-np.inf, -800, -20, -1, math.log(0.5), -0.5, -1e-12, -0.0, 0.0], dtype)
    x = np.array([0, 0, 1, 2, 0.5, 0], dtype)
    yv = np.array([0, 1, 0, 2, 3, np.inf], dtype)
    with np.errstate(all="ignore"):
        for name in ("_softplus", "_sigmoid"):
            same(getattr(tr, name)(torch.from_numpy(u)), getattr(numpy_runtime, name)(u), dtype)
        for name in ("_one_minus_exp", "_log_one_minus_exp", "_log_ratio"):
            same(getattr(tr, name)(torch.from_numpy(l)), getattr(numpy_runtime, name)(l), dtype)
        same(tr._xlogy(torch.from_numpy(x), torch.from_numpy(yv)), numpy_runtime._xlogy(x, yv),
             dtype)
    buffer = torch.from_numpy(u.copy())
    assert tr._sigmoid(buffer, out=buffer) is buffer  # written over an operand, as the lines do


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_exp_in_float32_as_a_power_of_two_within_the_rounding_of_its_argument(dtype):
    u = torch.cat([torch.linspace(-103, 88, 200001, dtype=torch.float64),
                   torch.tensor([0.0, -0.0, -math.inf, math.inf, math.nan], dtype=torch.float64)])
    got, exact = tr._exp(u.to(dtype)).double(), torch.exp(u.to(dtype).double())
    assert torch.equal(torch.isnan(got), torch.isnan(exact))
    assert torch.equal(got[torch.isinf(exact)], exact[torch.isinf(exact)])
    normal = (exact > torch.finfo(dtype).tiny) & torch.isfinite(exact)
    error = ((got - exact).abs() / exact)[normal]
    eps = torch.finfo(dtype).eps
    # e^u changes by |u| eps where u changes in its last digit: the bound, with a few roundings
    assert torch.all(error <= (u.abs()[normal] + 4) * eps)
    if dtype == torch.float64:
        torch.testing.assert_close(tr._exp(u), torch.exp(u), rtol=0, atol=0,
                                   equal_nan=True)  # computed as e^u there
    else:
        assert error.max() > 2 * eps  # the power of two, not torch.exp
    buffer = u.to(dtype).clone()
    assert tr._exp(buffer, out=buffer) is buffer


def test_every_helper_runs_from_its_emitted_source():
    assert list(tr.HELPERS) == NAMES
    for name in NAMES:
        namespace = {"torch": torch, "math": math}
        exec(emit.sources(tr.HELPERS, {name}), namespace)
        assert inspect.isfunction(namespace[name])
    namespace = {"torch": torch, "math": math}
    exec(emit.sources(tr.HELPERS, {"_log_softmax"}), namespace)
    same(namespace["_log_softmax"](torch.from_numpy(rows(np.float64, "wide"))),
         numpy_runtime._log_softmax(rows(np.float64, "wide")), np.float64)
