"""The PyTorch backend: how each operation of the lines is spelled with torch, which operations
may write over an operand (``out=``), and the runtime helpers the lines call
(:mod:`.torch_runtime`, with the argument checks and the custom operators of
:mod:`.torch_checks`).  A loss is a ``torch.library.custom_op`` whose forward computes the
loss and its gradient in one pass (:mod:`.torch_functions`, :mod:`.torch_own`)."""
from __future__ import annotations

from sympy.printing.pycode import PythonCodePrinter

from ..ir import CLASSES, EYE, Const, Line, Ref
from . import emit, torch_checks, torch_runtime
from . import torch_functions as CATALOGUE  # noqa: F401, N812 (the templates, as data)
from . import torch_own as OWN  # noqa: F401, N812
from .torch_functions import HEADER  # noqa: F401 (the catalogue's module header)

NAME = "torch"
#: Each operation as (call, keyword arguments after the operands).
OPS: dict[str, tuple[str, str]] = {
    "exp": ("_exp", ""), "log": ("torch.log", ""), "log1p": ("torch.log1p", ""),
    "sum": ("torch.sum", "dim=-1, keepdim=True"),
    "reciprocal": ("torch.reciprocal", ""), "square": ("torch.square", ""),
    "sqrt": ("torch.sqrt", ""), "power": ("torch.pow", ""),
    "add": ("torch.add", ""), "subtract": ("torch.sub", ""),
    "multiply": ("torch.mul", ""), "divide": ("torch.div", ""),
    "take": ("_take", ""), "class_at": ("_class_at", ""), "one_hot": ("_one_hot", ""),
    "set_at_label": ("_set_at_label", ""), "logsumexp": ("_logsumexp", ""),
    "sum_off_top": ("_sum_off_top", ""), "sum_off_label": ("_sum_off_label", ""),
    "sum_xlogq": ("_sum_xlogq", ""), "softmax": ("_softmax", ""),
    "log_softmax": ("_log_softmax", ""), "softplus": ("_softplus", ""),
    "sigmoid": ("_sigmoid", ""), "one_minus_exp": ("_one_minus_exp", ""),
    "log_one_minus_exp": ("_log_one_minus_exp", ""), "log_ratio": ("_log_ratio", ""),
    "xlogy": ("_xlogy", ""), "einsum": ("torch.einsum", ""),
    "logaddexp": ("torch.logaddexp", ""), "balance_top": ("_balance_top", ""),
    "log_one_minus_softmax": ("_log_one_minus_softmax", ""),
    "weighted_sum_off_top": ("_weighted_sum_off_top", ""),
}
#: Python's operator for each arithmetic operation, for a first operand that is a number
#: (``torch.sub(0, x)`` takes no number first).
_INFIX = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "power": "**"}
#: The operations that may write their result over an operand nothing later reads (``out=``).
IN_PLACE = frozenset({"exp", "log", "log1p", "reciprocal", "square", "sqrt", "power", "add",
                      "subtract", "multiply", "divide", "set_at_label", "softplus", "sigmoid",
                      "one_minus_exp", "balance_top"})
#: How an array is seen along the axes of a (..., K, K) array.
VIEWS = {"column": "[..., :, None]", "row": "[..., None, :]", "pair": "[..., None]"}


class _Printer(PythonCodePrinter):
    def _print_Symbol(self, expr):
        return "logits.shape[-1]" if expr == CLASSES else expr.name


def operand(arg, number: bool = False) -> str:
    """An operand as torch code; a number as a 0-dimensional tensor unless ``number`` (a torch
    function takes a tensor where a Python operator takes a number)."""
    if isinstance(arg, Ref):
        return arg.name + VIEWS.get(arg.view, "")
    if arg.value == EYE:
        return "torch.eye(logits.shape[-1], dtype=logits.dtype, device=logits.device)"
    text = _Printer().doprint(arg.value)
    return text if number else f"torch.tensor({text}, dtype=torch.float64)"


def line(code: Line, comment: str) -> str:
    """``code`` as a line of Python, with its comment."""
    if not code.op:
        return f"{code.name} = {operand(code.args[0], number=True)}  # {comment}"
    if code.op in _INFIX and isinstance(code.args[0], Const):
        left, right = (operand(a, number=True) for a in code.args)
        return f"{code.name} = {left} {_INFIX[code.op]} ({right})  # {comment}"
    call, extra = OPS[code.op]
    numbers = code.op in _INFIX  # torch.add(x, 2): a number after a tensor
    args = ", ".join([f'"{p}"' for p in code.params]
                     + [operand(a, number=numbers) for a in code.args]
                     + ([extra] if extra else [])
                     + ([f"out={code.out}"] if code.out else []))
    return f"{code.name} = {call}({args})  # {comment}"


def calls(code: list[Line]) -> set[str]:
    """The functions that the lines ``code`` call."""
    return {OPS[c.op][0] for c in code if c.op}


#: The helpers a module may include, the argument checks and operators first.
HELPERS = emit.helpers(torch_checks, torch_runtime)


def runtime(called: set[str]) -> str:
    """The helpers that a module whose lines call ``called`` defines."""
    return emit.sources(HELPERS, called)


#: The line that makes the shifted logits, for functions whose lines read them.
SHIFT_CODE = "shifted = torch.sub(logits, shift)"
SHIFTED = SHIFT_CODE + "  # z - a, where a = max_j z_j"
#: torch warns of no floating-point exception: a body's lines need no block around them.
QUIET = None
#: The name of the number that multiplies a loss operator's gradient (1/N for the mean of N
#: rows, 1 for a sum), which its template defines before the lines: taken into the lines'
#: factors of one value a row, it costs no pass of its own.
SCALE = "scale"
