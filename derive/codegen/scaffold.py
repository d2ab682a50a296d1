"""The fixed parts of generated functions, as real Python with declared holes.

A backend writes each public function once, as a real function of a module of its own (for
NumPy, :mod:`.backends.numpy_functions` and :mod:`.backends.numpy_own`), with a line
``...  # hole: NAME`` where generated lines go.  :func:`fill` takes the function's source,
checks that its holes are exactly the ones declared for it, and puts each hole's lines at the
hole's indentation.  :func:`names` reads off a source the names it uses, so that a module
includes the runtime helpers and the other public functions it calls, found from the code.
"""
from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Callable

MARK = "...  # hole: "


def holes(function: Callable) -> tuple[str, ...]:
    """The holes of ``function``, in the order they appear."""
    return tuple(line.strip()[len(MARK):] for line in inspect.getsource(function).splitlines()
                 if line.strip().startswith(MARK))


def fill(function: Callable, declared: tuple[str, ...], lines: dict[str, list[str]]) -> str:
    """The source of ``function`` with each hole replaced by its ``lines``, indented as the
    hole is; the holes must be ``declared``, and every one filled."""
    found = holes(function)
    if found != tuple(declared):
        raise ValueError(f"{function.__name__} has the holes {found}, not the declared "
                         f"{tuple(declared)}")
    if set(lines) != set(declared):
        raise ValueError(f"{function.__name__}: holes {sorted(set(declared) ^ set(lines))} "
                         "are not both declared and filled")
    out = []
    for line in inspect.getsource(function).splitlines():
        if line.strip().startswith(MARK):
            indent = line[:len(line) - len(line.lstrip())]
            out.extend(indent + row for row in lines[line.strip()[len(MARK):]])
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def names(source: str) -> set[str]:
    """The names that ``source`` reads."""
    tree = ast.parse(textwrap.dedent(source))
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
