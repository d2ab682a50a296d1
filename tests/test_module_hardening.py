"""The generated module at its edges: modules of a few functions, byte order, longdouble, the
axis argument, zero total weight, rows that cannot be normalised, float16 layers, parameters,
and targets that overflow the logits' dtype."""
import numpy as np
import pytest

import derive
import derive.check
import derive.check.cache
import inspect

from derive import codegen
from derive.codegen import scaffold
from derive.codegen.backends import numpy_runtime
from derive.codegen.backends.numpy_functions import HOLES

EVAL = ("softmax", "cross_entropy_with_grad")  # what `derive eval` uses
RNG = np.random.default_rng(23)
LOGITS = RNG.normal(scale=3, size=(5, 4))
LABELS = np.array([0, 3, 1, 1, 2])
PROBS = RNG.dirichlet(np.ones(4), size=5)
WEIGHT = np.array([0.5, 2.0, 1.0, 0.25])


# ---- A: a module of a few functions checks only what they need -------------------------------

@pytest.fixture
def requested(monkeypatch):
    """The names of the derivations asked for, with their lemmas: what is checked, unless it
    was checked before."""
    names = []
    original = derive.check.cache.checked

    def spy(name):
        names.append(name)
        result = original(name)
        for lemma in result.lemmas:  # checked with it (asked for only if not checked before)
            spy(lemma)
        return result

    monkeypatch.setattr(derive.check, "checked", spy)        # what derive.derivation calls
    monkeypatch.setattr(derive.check.cache, "checked", spy)  # and the lemmas, recursively
    return names


# functions of integer labels also ask for class-weights, whose one-hot aside proves the
# one-hot rewrites of the lowering
@pytest.mark.parametrize("functions, needed", [
    (EVAL, {"shift-invariance", "any-target", "softmax-jacobian", "class-weights"}),
    (("softmax",), {"shift-invariance"}),
    (("softmax_jacobian",), {"shift-invariance", "softmax-jacobian"}),
    (("linear_cross_entropy_with_grad",), {"shift-invariance", "any-target", "softmax-jacobian",
                                           "linear-layer", "class-weights"}),
    (("smoothed_cross_entropy_with_grad",), {"shift-invariance", "label-smoothing", "any-target",
                                             "softmax-jacobian", "class-weights"}),
])
def test_a_subset_asks_only_for_the_derivations_it_needs(requested, functions, needed):
    codegen.source(functions=functions)
    assert set(requested) == needed


def test_the_whole_module_asks_for_every_derivation_it_cites(requested):
    codegen.source()
    # the routes of the articles, and the probability-target forms of the temperature and the
    # Hessian, are for reading; the code uses the any-target forms
    assert set(requested) == set(derive.names()) - {"chain", "logsumexp", "temperature", "hessian"}


def test_a_subset_is_the_full_module_cut_down(m):
    full, part = codegen.source(), codegen.source(functions=EVAL)
    assert codegen.source(functions=list(HOLES)) == full
    assert part.startswith(full[:full.index("Where each formula")])
    for name in numpy_runtime.needed(set(numpy_runtime.HELPERS)):  # every helper a module
        defined = f"\n\ndef {name}(" in full  # defines is the runtime's, and is used
        assert defined == (name in scaffold.names(full.replace(f"def {name}(", "def _(")))
        if f"\n\ndef {name}(" in part:
            assert inspect.getsource(numpy_runtime.HELPERS[name]) in part
    for name in EVAL:  # each function is the same text in both
        start = full.index(f"\n\ndef {name}(")
        end = full.find("\n\n\ndef ", start + 1)
        assert full[start:end if end >= 0 else None] in part
    assert "hessian" not in part.split('"""', 2)[1]  # nor cites what it does not use
    sub = codegen.load_module(functions=EVAL)
    assert sub.__all__ == list(EVAL)
    assert not hasattr(sub, "cross_entropy_hessian")
    for target in (LABELS, PROBS):
        for reduction in ("none", "mean", "sum"):
            for ours, theirs in zip(sub.cross_entropy_with_grad(LOGITS, target, reduction),
                                    m.cross_entropy_with_grad(LOGITS, target, reduction)):
                np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(sub.softmax(LOGITS, axis=0), m.softmax(LOGITS, axis=0))


def test_the_eval_module_gives_the_articles_numbers():
    sub = codegen.load_module(functions=EVAL)
    logits = np.array([1.0, 2.0, 0.5])
    loss, grad = sub.cross_entropy_with_grad(logits, np.asarray(1))
    assert np.round(sub.softmax(logits), 4).tolist() == [0.2312, 0.6285, 0.1402]
    assert round(float(loss), 4) == 0.4644
    assert np.round(grad, 4).tolist() == [0.2312, -0.3715, 0.1402]


def test_a_subset_brings_the_functions_it_calls_and_refuses_unknown_names():
    layer = codegen.load_module(functions=["linear_cross_entropy_with_grad"])
    assert layer.__all__ == ["cross_entropy_with_grad", "linear_cross_entropy_with_grad"]
    x, w, b = RNG.normal(size=(5, 3)), RNG.normal(size=(4, 3)), RNG.normal(size=4)
    assert np.isfinite(layer.linear_cross_entropy_with_grad(x, w, b, LABELS)[0])
    with pytest.raises(ValueError, match="unknown function.*softmaks"):
        codegen.source(functions=["softmax", "softmaks"])


# ---- B: byte order ----------------------------------------------------------------------------

@pytest.mark.parametrize("logits_order", ["<", ">"])
@pytest.mark.parametrize("target_order", ["<", ">"])
@pytest.mark.parametrize("width", [4, 8])
def test_a_negative_probability_is_refused_in_either_byte_order(m, logits_order, target_order,
                                                                width):
    logits = np.zeros((2, 3), dtype=f"{logits_order}f{width}")
    bad = np.array([[0.5, -0.5, 1.0]] * 2, dtype=f"{target_order}f{width}")
    with pytest.raises(ValueError, match="^target: probabilities must not be negative"):
        m.cross_entropy_with_grad(logits, bad)
    with pytest.raises(ValueError, match="^target: probabilities must be finite"):
        m.cross_entropy(logits, np.array([[0.5, np.inf, 1.0]] * 2, dtype=bad.dtype))
    loss, grad = m.cross_entropy_with_grad(logits, np.abs(bad))
    assert loss == pytest.approx([2 * np.log(3)] * 2) and grad.dtype.isnative


@pytest.mark.parametrize("dtype", [">f2", ">f4", ">f8", "<f2", "<f4", "<f8"])
def test_the_bit_pattern_check_reads_the_arrays_byte_order(m, dtype):
    for values, expected in (([1.0, 0.0, 2.5], True), ([1.0, -1.0], False), ([-0.0], False),
                             ([np.inf], False), ([np.nan], False), ([-np.inf], False)):
        assert bool(m._finite_and_not_negative(np.array(values, dtype=dtype))) == expected


def test_big_endian_logits_give_the_native_results(m):
    for fn in (m.softmax, m.log_softmax, m.softmax_jacobian):
        np.testing.assert_array_equal(fn(LOGITS.astype(">f8")), fn(LOGITS))
    for ours, native in zip(m.cross_entropy_with_grad(LOGITS.astype(">f8"), PROBS.astype(">f8")),
                            m.cross_entropy_with_grad(LOGITS, PROBS)):
        np.testing.assert_array_equal(ours, native)


# ---- C: longdouble, and the axis argument -------------------------------------------------------

def longdouble_losses(m):
    return {
        "cross_entropy": lambda z, t: (m.cross_entropy(z, t),),
        "cross_entropy_grad": lambda z, t: (m.cross_entropy_grad(z, t, "mean"),),
        "cross_entropy_with_grad": lambda z, t: m.cross_entropy_with_grad(z, t, "sum"),
        "cross_entropy_hessian": lambda z, t: (m.cross_entropy_hessian(z, t),),
        "tempered": lambda z, t: m.tempered_cross_entropy_with_grad(z, t, 2.5),
        "weighted": lambda z, t: m.weighted_cross_entropy_with_grad(z, t, WEIGHT, "mean"),
        "sigmoid": lambda z, t: m.sigmoid_binary_cross_entropy_with_grad(z, t),
        "linear": lambda z, t: m.linear_cross_entropy_with_grad(
            LOGITS.astype(z.dtype), np.eye(4, dtype=z.dtype), np.zeros(4, z.dtype), t),
    }


@pytest.mark.parametrize("name", list(longdouble_losses(None)))
@pytest.mark.parametrize("kind", ["labels", "probabilities"])
def test_longdouble_logits_stay_longdouble(m, name, kind):
    if name == "sigmoid" and kind == "labels":
        pytest.skip("binary cross-entropy takes one target a class")
    fn = longdouble_losses(m)[name]
    long = LOGITS.astype(np.longdouble)
    target = LABELS if kind == "labels" else PROBS.astype(np.longdouble)
    reference = fn(LOGITS, LABELS if kind == "labels" else PROBS)
    for ours, reference in zip(fn(long, target), reference):
        assert np.asarray(ours).dtype == np.longdouble
        assert np.asarray(ours, dtype=np.float64) == pytest.approx(reference, rel=1e-12, abs=1e-15)
    smoothed = m.smoothed_cross_entropy_with_grad(long, LABELS, 0.1)
    assert [a.dtype for a in smoothed] == [np.longdouble] * 2


@pytest.mark.parametrize("bad, message", [(-1e-30, "must not be negative"),
                                          (np.inf, "must be finite"), (np.nan, "must be finite")])
def test_longdouble_probabilities_are_checked(m, bad, message):
    target = PROBS.astype(np.longdouble)
    target[2, 1] = bad
    for logits in (LOGITS.astype(np.longdouble), LOGITS):
        with pytest.raises(ValueError, match=f"^target: probabilities {message}"):
            m.cross_entropy_with_grad(logits, target)
    target[2, 1] = -0.0
    assert np.all(np.isfinite(m.cross_entropy(LOGITS.astype(np.longdouble), target)))


@pytest.mark.parametrize("axis", [None, (0, 1), (1,), 1.5, 1.0, np.float64(0), True,
                                  np.bool_(False), "0", [0]])
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_an_axis_that_is_not_an_integer_is_refused(m, fn, axis):
    with pytest.raises(ValueError, match="^axis must be an integer"):
        getattr(m, fn)(LOGITS, axis=axis)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_numpy_integers_are_axes(m, fn):
    for axis in (np.int64(0), np.int8(-1), np.uint8(1)):
        np.testing.assert_array_equal(getattr(m, fn)(LOGITS, axis=axis),
                                      getattr(m, fn)(LOGITS, axis=int(axis)))


# ---- D: zero total weight -----------------------------------------------------------------------

def test_zero_total_weight_makes_loss_and_gradient_nan(m):
    weight = np.array([0.0, 0.0, 1.0, 0.0])  # no label has class 2
    labels = np.array([0, 3, 1, 1, 0])
    with np.errstate(all="raise"):
        loss, grad = m.weighted_cross_entropy_with_grad(LOGITS, labels, weight, "mean")
    assert np.isnan(loss) and grad.shape == LOGITS.shape and np.isnan(grad).all()
    loss, grad = m.weighted_cross_entropy_with_grad(LOGITS, labels, weight, "sum")
    assert loss == 0 and not grad.any()
    loss, grad = m.weighted_cross_entropy_with_grad(LOGITS, LABELS, weight, "mean")
    assert np.isfinite(loss) and np.isfinite(grad).all()
    loss, grad = m.weighted_cross_entropy_with_grad(LOGITS, PROBS, np.zeros(4), "mean")
    assert loss == 0 and not grad.any()  # probabilities: divided by the number of rows


def test_zero_total_weight_as_pytorch_does(m):
    torch = pytest.importorskip("torch")
    weight, labels = np.array([0.0, 0.0, 1.0, 0.0]), np.array([0, 3, 1, 1, 0])
    z = torch.tensor(LOGITS, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(z, torch.tensor(labels), weight=torch.tensor(weight))
    loss.backward()
    ours = m.weighted_cross_entropy_with_grad(LOGITS, labels, weight, "mean")
    assert np.isnan(loss.item()) and np.isnan(z.grad.numpy()).all()
    assert np.isnan(ours[0]) and np.isnan(ours[1]).all()


# ---- E: a row that cannot be normalised is NaN, whatever its target ----------------------------

def softmax_losses(m):
    return {
        "cross_entropy": lambda z, t: (m.cross_entropy(z, t), None),
        "cross_entropy_with_grad": lambda z, t: m.cross_entropy_with_grad(z, t),
        "tempered": lambda z, t: m.tempered_cross_entropy_with_grad(z, t, 0.5),
        "weighted": lambda z, t: m.weighted_cross_entropy_with_grad(z, t, WEIGHT[:z.shape[-1]]),
    }


@pytest.mark.parametrize("row", [[-np.inf] * 3, [np.inf, 0.0, 1.0], [np.nan, 0.0, 1.0],
                                 [np.inf, -np.inf, np.inf]])
@pytest.mark.parametrize("name", list(softmax_losses(None)))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_row_that_cannot_be_normalised_is_nan_for_a_target_of_zeros(m, row, name, dtype):
    fn = softmax_losses(m)[name]
    logits = np.array([row, [0.0, -np.inf, 1.0], [0.0, 2.0, 1.0]], dtype=dtype)
    target = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    loss, grad = fn(logits, target)
    assert np.isnan(loss[0])
    assert loss[1] == 0 and np.isfinite(loss[2])  # a masked class with no mass: 0 · log 0 = 0
    if grad is not None:
        assert np.isnan(grad[0]).all() and np.isfinite(grad[1:]).all()
    if name == "cross_entropy":
        assert np.isnan(m.cross_entropy(logits, target, "mean"))


def test_a_weightless_label_in_a_row_that_cannot_be_normalised_is_nan(m):
    logits = np.array([[-np.inf] * 4, LOGITS[0]])
    loss, grad = m.weighted_cross_entropy_with_grad(logits, np.array([0, 1]),
                                                    np.array([0.0, 1.0, 1.0, 1.0]))
    assert np.isnan(loss[0]) and np.isnan(grad[0]).all()
    assert np.isfinite(loss[1]) and np.isfinite(grad[1]).all()


# ---- F: a float16 layer is computed in float32 --------------------------------------------------

def test_a_float16_layer_is_computed_in_float32_and_returned_as_float16(m):
    x = RNG.normal(size=(64, 8)).astype(np.float16)
    w = RNG.normal(size=(5, 8)).astype(np.float16)
    b = RNG.normal(size=5).astype(np.float16)
    labels = np.arange(64) % 5
    for target in (labels, np.eye(5)[labels].astype(np.float16)):
        half = m.linear_cross_entropy_with_grad(x, w, b, target)
        single = m.linear_cross_entropy_with_grad(x.astype(np.float32), w.astype(np.float32),
                                                  b.astype(np.float32), target)
        double = m.linear_cross_entropy_with_grad(x.astype(np.float64), w.astype(np.float64),
                                                  b.astype(np.float64), target)
        assert type(half[0]) is np.float16 and [a.dtype for a in half[1:]] == [np.float16] * 2
        for ours, computed, exact in zip(half, single, double):
            np.testing.assert_array_equal(ours, np.asarray(computed).astype(np.float16))
            assert np.asarray(ours, dtype=np.float64) == pytest.approx(exact, rel=1e-3, abs=1e-3)
    ints = m.linear_cross_entropy_with_grad(x.astype(np.int8), w, b, labels)
    assert [np.asarray(a).dtype for a in ints] == [np.float64] * 3


# ---- G: parameters ------------------------------------------------------------------------------

NOT_NUMBERS = ["2", "0.1", b"1", True, False, np.bool_(True), None, 1j, complex(0.5, 0),
               np.complex128(0.5), [0.5], np.array([0.5])]


@pytest.mark.parametrize("value", NOT_NUMBERS, ids=repr)
def test_a_parameter_that_is_not_a_real_number_is_refused(m, value):
    with pytest.raises(ValueError, match="^temperature must be a real number"):
        m.tempered_cross_entropy_with_grad(LOGITS, LABELS, value)
    with pytest.raises(ValueError, match="^epsilon must be a real number"):
        m.smoothed_cross_entropy_with_grad(LOGITS, LABELS, value)


@pytest.mark.parametrize("dtype, value, message", [
    (np.float32, 1e-50, "temperature 1e-50 underflows to 0 in float32"),
    (np.float16, 1e-50, "temperature 1e-50 underflows to 0 in float32"),  # computed in float32
    (np.float32, 1e300, "temperature 1e\\+300 overflows float32"),
    (np.float64, 10 ** 400, "temperature 1000.* overflows float64"),
    (np.float64, np.longdouble("1e-400"), "temperature 1e-400 underflows to 0 in float64"),
    (np.float64, 0.0, r"temperature must lie in \(0, inf\)"),
    (np.float64, np.nan, r"temperature must lie in \(0, inf\), not nan"),
    (np.float64, np.inf, r"temperature must lie in \(0, inf\), not inf"),
    (np.float64, -2, r"temperature must lie in \(0, inf\), not -2"),
])
def test_a_temperature_that_does_not_fit_the_logits_dtype_is_refused(m, dtype, value, message):
    with pytest.raises(ValueError, match="^" + message):
        m.tempered_cross_entropy_with_grad(LOGITS.astype(dtype), LABELS, value)


def test_an_epsilon_that_underflows_is_refused(m):
    with pytest.raises(ValueError, match="^epsilon 1e-50 underflows to 0 in float32"):
        m.smoothed_cross_entropy_with_grad(LOGITS.astype(np.float32), LABELS, 1e-50)
    with pytest.raises(ValueError, match=r"^epsilon must lie in \[0, 1\], not 1.5"):
        m.smoothed_cross_entropy_with_grad(LOGITS, LABELS, np.float32(1.5))
    loss, _ = m.smoothed_cross_entropy_with_grad(LOGITS, LABELS, 1e-50)  # fine in float64
    assert loss == pytest.approx(m.cross_entropy(LOGITS, LABELS), rel=1e-12)


@pytest.mark.parametrize("value", [2, 2.0, np.float32(2), np.float64(2), np.longdouble(2),
                                   np.int64(2), np.uint8(2), np.array(2.0), np.array(2)],
                         ids=repr)
def test_python_and_numpy_numbers_are_parameters(m, value):
    expected = m.tempered_cross_entropy_with_grad(LOGITS, PROBS, 2.0)
    for ours, theirs in zip(m.tempered_cross_entropy_with_grad(LOGITS, PROBS, value), expected):
        np.testing.assert_array_equal(ours, theirs)
    small = m.smoothed_cross_entropy_with_grad(LOGITS, LABELS, value / 4)
    assert small[0] == pytest.approx(m.smoothed_cross_entropy_with_grad(LOGITS, LABELS, 0.5)[0])


# ---- H: a probability that overflows the logits' dtype ------------------------------------------

def test_a_probability_that_overflows_the_logits_dtype_says_so(m):
    target = PROBS.copy()
    target[1, 2] = 1e300
    with pytest.raises(ValueError, match=r"^target: probability 1e\+300 overflows float32"):
        m.cross_entropy_with_grad(LOGITS.astype(np.float32), target)
    with pytest.raises(ValueError, match=r"^target: probability 1e\+300 overflows float32"):
        m.cross_entropy(LOGITS.astype(np.float16), target)  # float16 computes in float32
    assert np.isfinite(m.cross_entropy(LOGITS, target)).all()  # float64 holds it
    huge = PROBS.astype(np.longdouble)
    huge[0, 0] = np.longdouble("1e400")
    with pytest.raises(ValueError, match=r"^target: probability 1e\+400 overflows float64"):
        m.cross_entropy(LOGITS, huge)


def test_the_checks_look_at_the_target_before_the_cast(m):
    for bad, message in ((np.inf, "must be finite"), (np.nan, "must be finite"),
                         (-1e300, "must not be negative"),
                         (-1e-50, "must not be negative")):  # -1e-50 is -0.0 in float32
        target = PROBS.copy()
        target[3, 0] = bad
        with pytest.raises(ValueError, match=f"^target: probabilities {message}$"):
            m.cross_entropy(LOGITS.astype(np.float32), target)
