"""Generated modules, loaded and run against their derivations before they are delivered.

:func:`load` is the one place generated source is compiled.  :func:`verify_catalogue` and
:func:`verify_own` run a module at random logits, labels and probability targets and compare
what it returns with the derivation steps its formulas come from, evaluated by the checker's
own evaluator (:func:`derive.evaluation.evaluate`); a disagreement is a
:class:`~derive.errors.CheckError`.
"""
from __future__ import annotations

import functools
import sys
import types
from typing import Callable

import numpy as np
from sympy import Derivative, Expr

from .. import budget
from ..errors import CheckError
from ..evaluation import evaluate
from ..model import POSITIVE, k, z

ROWS, CLASSES = 3, 4


def load(name: str, text: str) -> types.ModuleType:
    """``text`` compiled into a module called ``name``, in memory.  A module of custom
    operators (PyTorch's, which name their ``_NAMESPACE``) is called by that name and can be
    imported by it, as ``torch.compile`` imports the module of each function it traces: one
    entry of ``sys.modules`` for each distinct module, as there is one namespace of operators."""
    code = compile(text, f"<derive:{name}>", "exec")
    module = types.ModuleType(name)
    module.__file__ = f"<derive:{name}>"
    exec(code, module.__dict__)
    namespace = module.__dict__.get("_NAMESPACE")
    if namespace is not None:
        if isinstance(sys.modules.get(namespace), types.ModuleType) and \
                getattr(sys.modules[namespace], "__file__", None) == module.__file__:
            return sys.modules[namespace]  # the same code, loaded before
        module = types.ModuleType(namespace)
        module.__file__ = f"<derive:{name}>"
        exec(code, module.__dict__)
        sys.modules[namespace] = module
    return module


def agree(generated, derived) -> bool:
    """Whether the generated values equal the derived ones to 1e-7 (relative to 1 and to the
    largest derived entry), an overflow to the same infinity included."""
    generated, derived = np.atleast_1d(generated), np.atleast_1d(derived)
    with np.errstate(all="ignore"):
        finite = np.isfinite(derived)
        scale = max(1.0, float(np.max(np.abs(derived[finite]), initial=0.0)))
        close = np.abs(generated - derived) <= 1e-7 * scale
    return bool(np.all(close | (generated == derived)))


def _disagree(what: str, logits, generated, derived) -> CheckError:
    return CheckError(f"the generated code does not agree with the derivation {what} at logits "
                      f"{np.round(logits, 4).tolist()}: {np.round(generated, 6).tolist()} "
                      f"(derived {np.round(derived, 6).tolist()})")


def _samples():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(ROWS, CLASSES)) * 2
    labels = rng.integers(0, CLASSES, ROWS)
    probs = rng.dirichlet(np.ones(CLASSES), ROWS)
    return rng, logits, labels, probs


# -- the catalogue ------------------------------------------------------------------------------

def _entries(formula: Expr, z, y, free: tuple[str, ...], **values) -> np.ndarray:
    """``formula`` at one row, for every value of its free indices (none, one or two)."""
    if not free:
        return np.array(evaluate(formula, z, y, **values))
    if len(free) == 1:
        return np.array([evaluate(formula, z, y, **{free[0]: j}, **values)
                         for j in range(len(z))])
    return np.array([[evaluate(formula, z, y, **{free[0]: r, free[1]: j}, **values)
                      for j in range(len(z))] for r in range(len(z))])


def verify_catalogue(module: types.ModuleType, formula: Callable[[str], Expr]) -> None:
    """Run each public function of the catalogue's ``module`` against the formulas it
    implements (``formula``: a key of the catalogue's formulas to its checked step); the
    linear layer's function is run by its tests, on top of ``cross_entropy_with_grad``."""
    formula = functools.lru_cache(maxsize=None)(formula)
    rng, logits, labels, probs = _samples()
    eye = np.eye(CLASSES)
    weight, temperature, epsilon = rng.uniform(0.5, 2.0, CLASSES), 1.7, 0.1
    multi = rng.uniform(0, 1, (ROWS, CLASSES))
    both = (("labels", labels, eye[labels]), ("probabilities", probs, probs))
    # function -> the targets it takes, its extra arguments and values, what it returns
    checks = {
        "softmax": ((), {}, {}, (("probs", ("k",)),)),
        "log_softmax": ((), {}, {}, (("log_probs", ("k",)),)),
        "cross_entropy": (both, {}, {}, (("loss", ()),)),
        "cross_entropy_grad": (both, {}, {}, (("grad", ("k",)),)),
        "cross_entropy_with_grad": (both, {}, {}, (("loss", ()), ("grad", ("k",)))),
        "cross_entropy_hessian": (both, {}, {}, (("hessian", ("k", "l")),)),
        "tempered_cross_entropy_with_grad": (both, {"temperature": temperature}, {"T": temperature},
                                             (("tempered loss", ()), ("tempered grad", ("k",)))),
        "weighted_cross_entropy_with_grad": (both, {"weight": weight}, {"w": weight},
                                             (("weighted loss", ()), ("weighted grad", ("k",)))),
        "sigmoid_binary_cross_entropy_with_grad": ((("multi-label targets", multi, multi),), {},
                                                   {}, (("bce loss", ()), ("bce grad", ("k",)))),
        "softmax_jacobian": ((), {}, {}, (("jacobian", ("i", "k")),)),
    }
    for name, (targets, arguments, values, outputs) in checks.items():
        if not hasattr(module, name):
            continue
        budget.check(f"running {name} against its derivation")
        for kind, given, rows_of in targets or ((None, None, None),):
            with np.errstate(all="ignore"):
                returned = getattr(module, name)(logits, *([] if kind is None else [given]),
                                                 **arguments)
            returned = returned if isinstance(returned, tuple) else (returned,)
            for (key, free), got in zip(outputs, returned):
                for n in range(ROWS):
                    y = None if rows_of is None else list(rows_of[n])
                    extra = {"a": float(np.max(logits[n]))} if key in ("probs", "log_probs") else {}
                    expected = _entries(formula(key), list(logits[n]), y, free, **values, **extra)
                    if not agree(got[n], expected):
                        raise _disagree(f"({name}, {key}, {kind or 'logits'})", logits[n],
                                        got[n], expected)
    if hasattr(module, "smoothed_cross_entropy_with_grad"):
        _verify_smoothed(module, formula, logits, labels, epsilon)


def _verify_smoothed(module, formula, logits, labels, epsilon) -> None:
    loss, grad = module.smoothed_cross_entropy_with_grad(logits, labels, epsilon)
    for n in range(ROWS):
        where = {"c": int(labels[n]), "epsilon": epsilon}
        target = _entries(formula("smoothed target"), list(logits[n]), None, ("i",), **where)
        expected = _entries(formula("loss"), list(logits[n]), list(target), ())
        expected_grad = _entries(formula("smoothed grad"), list(logits[n]), None, ("k",),
                                 **where)
        if not (agree(loss[n], expected) and agree(grad[n], expected_grad)):
            raise _disagree("(smoothed_cross_entropy_with_grad)", logits[n], grad[n],
                            expected_grad)


# -- a user's own loss --------------------------------------------------------------------------

def verify_own(module: types.ModuleType, s) -> None:
    """Check the module of a user's loss (``s``, its :class:`~.own.LossSpec`): its loss and
    gradient at random logits, labels and (where the loss takes them) probability targets
    against the loss and the gradient's step of the derivation."""
    rng, logits, labels, probs = _samples()
    names = [v.name for v in s.scalars] + [b.label.name for b in s.arrays]
    values = {name: float(d.draw(rng)) if n < len(s.scalars) else d.draw(rng, CLASSES)
              for n, (name, d) in enumerate(zip(names, s.domains))}
    # a loss defined for positive targets only is not defined at the zeros of a label's one-hot
    targets = [] if POSITIVE in s.derivation.steps[0].facts else \
        [("labels", labels, np.eye(CLASSES)[labels])]
    if not s.labels_only:
        targets.append(("probabilities", probs, probs))
    if not targets:
        raise CheckError("the generated code cannot be run against its derivation: the loss "
                         "takes class labels, and is defined for positive targets only")
    for kind, target, rows_of in targets:
        budget.check("running the generated module against its derivation")
        with np.errstate(all="ignore"):  # a loss that overflows here is compared, not warned of
            loss, grad = module.loss_with_grad(logits, target, **values)
        for n in range(ROWS):
            where = {"c": int(labels[n])} if s.labels_only else {}
            args = (list(logits[n]), list(rows_of[n]))
            expected_loss = evaluate(s.loss, *args, **where, **values)
            expected_grad = np.array([evaluate(s.grad, *args, k=j, **where, **values)
                                      for j in range(CLASSES)])
            if not (agree(loss[n], expected_loss) and agree(grad[n], expected_grad)):
                raise CheckError(f"the generated code does not agree with the derivation with "
                                 f"{kind} at logits {np.round(logits[n], 4).tolist()}: loss "
                                 f"{loss[n]:.6g} (derived {expected_loss:.6g}), gradient "
                                 f"{np.round(grad[n], 6).tolist()} (derived "
                                 f"{np.round(expected_grad, 6).tolist()})")
        _verify_edges(module, s, names, values, logits, target, rows_of, labels)


def _verify_edges(module, s, names, values, logits, target, rows_of, labels) -> None:
    """Run the module where a value lies outside (0, ∞), at the edges of its domain
    (:meth:`~derive.domains.Domain.edges`), where the derivation was not checked: its loss and
    gradient against the loss and its derivative ∂ℒ/∂z_k by forward-mode differentiation
    (the checker's evaluator), independent of the derivation's steps."""
    derivative = Derivative(s.loss, z[k])
    for n, (name, d) in enumerate(zip(names, s.domains)):
        for edge in d.edges():
            at = {**values, name: edge if n < len(s.scalars) else np.full(CLASSES, edge)}
            with np.errstate(all="ignore"):
                loss, grad = module.loss_with_grad(logits, target, **at)
            for row in range(ROWS):
                where = {"c": int(labels[row])} if s.labels_only else {}
                args = (list(logits[row]), list(rows_of[row]))
                expected_loss = evaluate(s.loss, *args, **where, **at)
                expected_grad = np.array([evaluate(derivative, *args, k=j, **where, **at)
                                          for j in range(CLASSES)])
                finite = np.isfinite(expected_grad)
                if not (agree(loss[row], expected_loss) if np.isfinite(expected_loss) else True) \
                        or not agree(grad[row][finite], expected_grad[finite]):
                    raise CheckError(f"the generated code does not agree with the loss at {name} "
                                     f"= {edge:g}, outside where the derivation was checked: "
                                     f"gradient {np.round(grad[row], 6).tolist()}, ∂ℒ/∂z_k "
                                     f"{np.round(expected_grad, 6).tolist()}")


# -- the PyTorch and JAX modules, seen as the NumPy ones ------------------------------------------

#: The functions the verification calls, and whether each takes a reduction (PyTorch's do).
_CALLS = {"softmax": False, "log_softmax": False, "cross_entropy": True,
          "cross_entropy_with_grad": True, "tempered_cross_entropy_with_grad": True,
          "weighted_cross_entropy_with_grad": True, "smoothed_cross_entropy_with_grad": True,
          "sigmoid_binary_cross_entropy_with_grad": True, "loss_with_grad": True}


class Proxy:
    """A PyTorch or JAX module seen with the NumPy modules' conventions, so that the same
    verification runs it: NumPy arrays in (float64), NumPy arrays out, one loss a row."""

    def __init__(self, module: types.ModuleType, backend: str):
        self._module, self._backend = module, backend

    def __getattr__(self, name: str):
        if name not in _CALLS or not hasattr(self._module, name):
            raise AttributeError(name)
        function = getattr(self._module, name)

        def call(*args, **kwargs):
            if self._backend == "torch":
                import torch

                def put(a):
                    return torch.from_numpy(np.array(a)) if isinstance(a, np.ndarray) else a
                args = [put(a) for a in args]
                kwargs = {key: put(value) for key, value in kwargs.items()}
                if _CALLS[name]:
                    kwargs["reduction"] = "none"
                out = function(*args, **kwargs)
                return tuple(o.numpy() for o in out) if isinstance(out, tuple) else out.numpy()
            import jax
            with jax.enable_x64(True):
                out = function(*args, **kwargs)
                return tuple(np.asarray(o) for o in out) if isinstance(out, tuple) \
                    else np.asarray(out)
        return call


def seen_as_numpy(module: types.ModuleType, backend: str):
    """``module`` itself for NumPy; a :class:`Proxy` for the other backends."""
    return module if backend == "numpy" else Proxy(module, backend)
