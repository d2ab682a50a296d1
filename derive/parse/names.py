"""What a name in a loss may be, and what each name of the model means.

A name can reach generated Python code, so it must be an ASCII identifier that is not a Python
keyword or builtin, not a name the generated module uses itself, and not a name that means
something else in the model (``p`` is the tempered softmax, ``E`` the cross-entropy).  It must
also read back from the LaTeX derive prints for it: ``gamma`` prints as ``\\gamma``, ``T2`` as
``T_{2}``, but ``xhat`` would print as ``\\hat{x}``, so it is refused.
"""
from __future__ import annotations

import builtins
import keyword
import re
from functools import lru_cache

#: Names the generated NumPy module uses for itself.
GENERATED = frozenset({
    "numpy", "np", "math", "logits", "target", "labels", "reduction", "loss", "grad", "probs",
    "log_probs", "shift", "values", "out", "axis", "weight", "bias", "inputs", "temperature",
    "epsilon"})
#: What to write instead of some generated-code names.
GENERATED_INSTEAD = {"epsilon": "write eps", "temperature": "write T",
                     "weight": "write w[i] for class weights", "target": "write y[i]",
                     "labels": "write c for the class of a one-hot target",
                     "logits": "write z[i]", "probs": "write q[i]",
                     "log_probs": "write log(q[i])"}

#: Names of the model that mean something else: what each is, and what to write instead.
MODEL_RESERVED = {
    "E": ("the cross-entropy", "use another name"),
    "L": ("the mean loss of a batch", "use another name"),
    "N": ("the number of examples in a batch", "use K for the number of classes"),
    "D": ("the number of inputs of a linear layer", "use K for the number of classes"),
    "p": ("the tempered softmax softmax(z/T)", "write q[i] for the softmax, or another name "
          "for an array of your own"),
    "Q": ("the softmax of a batch", "write q[i] for the softmax"),
    "Y": ("the targets of a batch", "write y[i] for the target"),
    "Z": ("the logits of a batch", "write z[i] for the logits"),
    "W": ("the weights of a linear layer", "use another name"),
    "x": ("the inputs of a linear layer", "write z[i] for the logits, or use another name"),
    "b": ("the biases of a linear layer", "use another name"),
    "ell": ("the loss of one example of a batch", "use another name"),
    "diag_q": ("the matrix diag(q) of the Hessian", "write q[i]"),
    "outer_q": ("the matrix q q^T of the Hessian", "write q[i]*q[j]"),
    "outer_grad": ("the matrix (q - y) x^T of a linear layer", "use another name"),
    "e": ("Euler's number", "write exp(x) for e**x, or another name for a parameter"),
    "sig": ("an abbreviation of sigma", "write sigma[i] for the sigmoid of z[i]"),
}

#: The model's arrays a loss may index, by the name a user writes.
MODEL_ARRAYS = {"z": "the logits", "y": "the target", "q": "the softmax of z",
                "sigma": "the sigmoid of z", "w": "the class weights"}
#: Letters the model uses for indices in 1..K; a scalar parameter may not be named so.
INDEX_LETTERS = ("i", "j", "k", "l", "c", "r")
#: The smooth functions of the text form.
FUNCTIONS = ("log", "exp", "sqrt", "sum")
#: Functions that are not differentiable everywhere.
NOT_SMOOTH = frozenset({"abs", "Abs", "max", "Max", "min", "Min", "floor", "ceil", "ceiling",
                        "sign", "sgn", "round", "relu", "clip", "clamp", "maximum", "minimum",
                        "heaviside", "Heaviside", "fabs", "trunc", "argmax", "argmin", "hinge"})
#: Hints for functions people reach for.
FUNCTION_HINTS = {"ln": "write log", "softmax": "write q[i] for the softmax of z",
                  "sigmoid": "write sigma[i] for the sigmoid of z[i]",
                  "logsumexp": "write log(sum(exp(z[i]), i))",
                  "softplus": "write log(1 + exp(x))", "log1p": "write log(1 + x)",
                  "expm1": "write exp(x) - 1", "pow": "write x**y", "power": "write x**y",
                  "Sum": "write sum(EXPR, i)", "exponential": "write exp(x)"}

#: Greek letters a name may be, as LaTeX commands: ``gamma`` is ``\\gamma``, ``lambda`` is
#: ``\\lambda`` (a parameter passed to a generated module as ``**{"lambda": 0.1}``); capitals
#: that look Latin are not here.
GREEK = frozenset((
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau "
    "upsilon phi chi psi omega varepsilon vartheta varkappa varpi varrho varsigma varphi "
    "Gamma Delta Lambda Theta Xi Pi Sigma Upsilon Phi Psi Omega").split())
#: LaTeX commands that stand for a name other than the command's own.
COMMAND_NAMES = {r"\epsilon": "eps"}
#: Other spellings of a name in the text form: SymPy's ``lamda`` is the parameter ``lambda``.
ALIASES = {"lamda": "lambda", "Lamda": "Lambda"}

_LETTERS_DIGITS = re.compile(r"([A-Za-z]+)(\d*)\Z")


@lru_cache(maxsize=512)
def printed(name: str) -> str:
    """How SymPy's LaTeX printer sets the symbol ``name`` (derive's printer agrees for names
    without an underscore)."""
    from sympy import Symbol, latex
    return latex(Symbol(name))


@lru_cache(maxsize=512)
def command_name(command: str) -> str | None:
    """The name a LaTeX command such as ``\\gamma`` stands for, or None if it stands for no
    name (``\\hat``, ``\\foo``)."""
    if command in COMMAND_NAMES:
        return COMMAND_NAMES[command]
    name = command[1:]
    return name if name in GREEK and printed(name) == command else None


def reads_back(name: str) -> bool:
    """Whether the LaTeX printed for ``name`` reads back as ``name``: ``gamma`` (``\\gamma``),
    ``eps``, ``T2`` (``T_{2}``), ``lambda`` (``\\lambda``), but not ``xhat`` (``\\hat{x}``)."""
    match = _LETTERS_DIGITS.match(name)
    if match is None:
        return False
    letters, digits = match.groups()
    tex = printed(name)
    head = tex if not digits else tex[:-len("_{%s}" % digits)] if tex.endswith(
        "_{%s}" % digits) else None
    if head is None:
        return False
    return head == letters or (head.startswith("\\") and command_name(head) == letters)


def problem(name: str, array: bool = False) -> str | None:
    """Why ``name`` cannot be a parameter (or, with ``array``, a per-class array) of a loss;
    None if it can."""
    if name in MODEL_RESERVED:
        meaning, instead = MODEL_RESERVED[name]
        return f"the name '{name}' is reserved: it is {meaning} in derive's model; {instead}"
    if name.startswith("_"):
        return f"names starting with '_' are not allowed ('{name}')"
    if name in GENERATED:
        instead = GENERATED_INSTEAD.get(name, "use another name")
        return f"the name '{name}' is reserved: the generated code uses it; {instead}"
    if (keyword.iskeyword(name) or keyword.issoftkeyword(name)) and name not in GREEK:
        return f"'{name}' is a Python keyword and cannot be a name; use another name"
    if name in dir(builtins):
        return f"'{name}' is a Python builtin and cannot be a name; use another name"
    if not name.isascii() or not (name.isalpha() or (name.isalnum() and not array)):
        if array:
            return f"'{name}' cannot be an array name: use letters only (no digits or '_')"
        return f"'{name}' cannot be a name: use letters, then digits (no '_')"
    if not name[0].isalpha():
        return f"'{name}' cannot be a name: start it with a letter"
    match = _LETTERS_DIGITS.match(name)
    if match and match.group(2) and match.group(1) in ("z", "y", "q", "sigma", "w", "K", "e"):
        return (f"the name '{name}' would print as {printed(name)} in LaTeX, which reads as "
                f"an index of {match.group(1)}; use another name")
    if not reads_back(name):
        return (f"the name '{name}' would print as {printed(name)} in LaTeX and not read back; "
                "use another name")
    return None
