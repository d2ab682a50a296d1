"""The NumPy backend: how each operation of the lines is spelled, which operations may write
over an operand (``out=``), and the runtime helpers the lines call
(:mod:`.numpy_runtime`).  The fixed parts of the module are :mod:`.numpy_scaffold`."""
from __future__ import annotations

from sympy.printing.numpy import NumPyPrinter

from ..ir import CLASSES, EYE, Const, Line, Ref
from . import numpy_functions as CATALOGUE  # noqa: F401, N812 (the templates, as data)
from . import numpy_own as OWN  # noqa: F401, N812
from . import numpy_runtime
from .numpy_scaffold import HEADER  # noqa: F401 (the catalogue's module header)

NAME = "numpy"
#: Each operation as (call, keyword arguments after the operands).
OPS: dict[str, tuple[str, str]] = {
    "exp": ("numpy.exp", ""), "log": ("numpy.log", ""), "log1p": ("numpy.log1p", ""),
    "sum": ("numpy.sum", "axis=-1, keepdims=True"),
    "reciprocal": ("numpy.reciprocal", ""), "square": ("numpy.square", ""),
    "sqrt": ("numpy.sqrt", ""), "power": ("numpy.power", ""),
    "add": ("numpy.add", ""), "subtract": ("numpy.subtract", ""),
    "multiply": ("numpy.multiply", ""), "divide": ("numpy.divide", ""),
    "take": ("_take", ""), "class_at": ("_class_at", ""), "one_hot": ("_one_hot", ""),
    "set_at_label": ("_set_at_label", ""), "logsumexp": ("_logsumexp", ""),
    "sum_off_top": ("_sum_off_top", ""), "sum_off_label": ("_sum_off_label", ""),
    "sum_xlogq": ("_sum_xlogq", ""), "softmax": ("_softmax", ""),
    "log_softmax": ("_log_softmax", ""), "softplus": ("_softplus", ""),
    "sigmoid": ("_sigmoid", ""), "one_minus_exp": ("_one_minus_exp", ""),
    "log_one_minus_exp": ("_log_one_minus_exp", ""), "log_ratio": ("_log_ratio", ""),
    "xlogy": ("_xlogy", ""), "einsum": ("numpy.einsum", ""),
    "logaddexp": ("numpy.logaddexp", ""), "balance_top": ("_balance_top", ""),
    "log_one_minus_softmax": ("_log_one_minus_softmax", ""),
    "weighted_sum_off_top": ("_weighted_sum_off_top", ""),
}
#: The operations that may write their result over an operand nothing later reads.
IN_PLACE = frozenset({"exp", "log", "log1p", "reciprocal", "square", "sqrt", "power", "add",
                      "subtract", "multiply", "divide", "set_at_label", "softplus", "sigmoid",
                      "one_minus_exp", "logaddexp", "balance_top"})
#: How an array is seen along the axes of a (..., K, K) array.
VIEWS = {"column": "[..., :, None]", "row": "[..., None, :]", "pair": "[..., None]"}


class _Printer(NumPyPrinter):
    def _print_Symbol(self, expr):
        # K as a number of the logits' dtype: 1/K is then not an integer division, and float32
        # stays float32
        return "logits.dtype.type(logits.shape[-1])" if expr == CLASSES else expr.name


def operand(arg) -> str:
    if isinstance(arg, Ref):
        return arg.name + VIEWS.get(arg.view, "")
    if isinstance(arg, Const) and arg.value == EYE:
        return "numpy.eye(logits.shape[-1], dtype=logits.dtype)"
    return _Printer().doprint(arg.value)


def line(code: Line, comment: str) -> str:
    """``code`` as a line of Python, with its comment."""
    call, extra = OPS[code.op] if code.op else ("", "")
    args = ", ".join([f'"{p}"' for p in code.params] + [operand(a) for a in code.args]
                     + ([extra] if extra else [])
                     + ([f"out={code.out}"] if code.out else []))
    return f"{code.name} = {call}({args})  # {comment}" if call else \
        f"{code.name} = {args}  # {comment}"


def calls(code: list[Line]) -> set[str]:
    """The functions that the lines ``code`` call."""
    return {OPS[c.op][0] for c in code if c.op}


def runtime(called: set[str]) -> str:
    """The helpers that a module whose lines call ``called`` defines."""
    return numpy_runtime.sources(called)


#: The line that makes the shifted logits, for functions whose lines read them.
SHIFT_CODE = "shifted = numpy.subtract(logits, shift)"
SHIFTED = SHIFT_CODE + "  # z - a, where a = max_j z_j"
#: The line a function body's lines run under: a log of 0, 0/0 or an overflow gives -inf, NaN or
#: inf silently (a call prints nothing; an entry the stable forms replace may overflow on the way).
QUIET = 'with numpy.errstate(divide="ignore", invalid="ignore", over="ignore"):'
#: No number scales a gradient in the lines: the gradient of each example is returned.
SCALE = None
