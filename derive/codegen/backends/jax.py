"""The JAX backend: how each operation of the lines is spelled with ``jax.numpy``, as pure
functions (no operation writes over an operand), and the runtime helpers the lines call
(:mod:`.jax_runtime`, with the argument checks and the ``jax.custom_jvp`` of
:mod:`.jax_checks`).  A loss is a ``jax.custom_jvp`` whose rule is the gradient computed with
the loss (:mod:`.jax_functions`, :mod:`.jax_own`)."""
from __future__ import annotations

from sympy.printing.numpy import JaxPrinter

from ..ir import CLASSES, EYE, Line, Ref
from ..ir import SHIFTED as SHIFTED_LOGITS
from . import emit, jax_checks, jax_runtime
from . import jax_functions as CATALOGUE  # noqa: F401, N812 (the templates, as data)
from . import jax_own as OWN  # noqa: F401, N812
from .jax_functions import HEADER  # noqa: F401 (the catalogue's module header)

NAME = "jax"
#: Each operation as (call, keyword arguments after the operands).
OPS: dict[str, tuple[str, str]] = {
    "exp": ("jnp.exp", ""), "log": ("jnp.log", ""), "log1p": ("jnp.log1p", ""),
    "sum": ("jnp.sum", "axis=-1, keepdims=True"),
    "reciprocal": ("jnp.reciprocal", ""), "square": ("jnp.square", ""),
    "sqrt": ("jnp.sqrt", ""), "power": ("jnp.power", ""),
    "add": ("jnp.add", ""), "subtract": ("jnp.subtract", ""),
    "multiply": ("jnp.multiply", ""), "divide": ("jnp.divide", ""),
    "take": ("_take", ""), "class_at": ("_class_at", ""), "one_hot": ("_one_hot", ""),
    "set_at_label": ("_set_at_label", ""), "logsumexp": ("_logsumexp", ""),
    "sum_off_top": ("_sum_off_top", "logits, shift"), "sum_off_label": ("_sum_off_label", ""),
    "sum_xlogq": ("_sum_xlogq", ""), "softmax": ("_softmax", ""),
    "log_softmax": ("_log_softmax", ""), "softplus": ("_softplus", ""),
    "sigmoid": ("_sigmoid", ""), "one_minus_exp": ("_one_minus_exp", ""),
    "log_one_minus_exp": ("_log_one_minus_exp", ""), "log_ratio": ("_log_ratio", ""),
    "xlogy": ("_xlogy", ""), "einsum": ("jnp.einsum", ""),
    "logaddexp": ("jnp.logaddexp", ""), "balance_top": ("_balance_top", ""),
    "log_one_minus_softmax": ("_log_one_minus_softmax", ""),
    "weighted_sum_off_top": ("_weighted_sum_off_top", ""),
}
#: JAX arrays are immutable: no line writes over an operand.
IN_PLACE: frozenset[str] = frozenset()
#: How an array is seen along the axes of a (..., K, K) array.
VIEWS = {"column": "[..., :, None]", "row": "[..., None, :]", "pair": "[..., None]"}


class _Printer(JaxPrinter):
    def _print_Symbol(self, expr):
        # K as a number of the logits' dtype: float32 stays float32
        return "logits.dtype.type(logits.shape[-1])" if expr == CLASSES else expr.name


def operand(arg) -> str:
    if isinstance(arg, Ref):
        return arg.name + VIEWS.get(arg.view, "")
    if arg.value == EYE:
        return "jnp.eye(logits.shape[-1], dtype=logits.dtype)"
    return _Printer().doprint(arg.value)


def _spelling(code: Line) -> tuple[str, list[str]]:
    """The call of a line and its arguments.  The shifted logits' entry at the label is
    z_c - a read from the logits (:func:`.jax_runtime._take_shifted`)."""
    if code.op == "take" and code.args[0] == Ref(SHIFTED_LOGITS.name):
        return "_take_shifted", ["logits", "shift", operand(code.args[1])]
    call, extra = OPS[code.op] if code.op else ("", "")
    return call, ([f'"{p}"' for p in code.params] + [operand(a) for a in code.args]
                  + ([extra] if extra else []))


def line(code: Line, comment: str) -> str:
    """``code`` as a line of Python, with its comment."""
    call, args = _spelling(code)
    return f"{code.name} = {call}({', '.join(args)})  # {comment}" if call else \
        f"{code.name} = {', '.join(args)}  # {comment}"


def calls(code: list[Line]) -> set[str]:
    """The functions that the lines ``code`` call."""
    return {_spelling(c)[0] for c in code if c.op}


#: The helpers a module may include, the argument checks and the custom JVP first.
HELPERS = emit.helpers(jax_checks, jax_runtime)


def runtime(called: set[str]) -> str:
    """The helpers that a module whose lines call ``called`` defines."""
    return emit.sources(HELPERS, called)


#: The line that makes the shifted logits, for functions whose lines read them.
SHIFT_CODE = "shifted = jnp.subtract(logits, shift)"
SHIFTED = SHIFT_CODE + "  # z - a, where a = max_j z_j"
#: JAX warns of no floating-point exception: a body's lines need no block around them.
QUIET = None
#: No number scales a gradient in the lines: the gradient of each example is returned.
SCALE = None
