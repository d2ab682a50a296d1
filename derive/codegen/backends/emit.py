"""How a backend's runtime reaches a generated module: the source of the helpers its lines call,
found with :mod:`inspect`, with the helpers those call in turn (read from their code with
:mod:`ast`), in the order the runtime defines them.  A runtime module need not have its array
library installed to be emitted: only the module that is generated imports it."""
from __future__ import annotations

import ast
import inspect
import textwrap
from types import ModuleType


def helpers(*modules: ModuleType) -> dict:
    """The helpers (functions whose names start with ``_``) that ``modules`` define, in order."""
    return {name: fn for module in modules for name, fn in vars(module).items()
            if name.startswith("_") and inspect.isfunction(fn)
            and fn.__module__ == module.__name__}


def _calls(table: dict, name: str) -> set[str]:
    """The helpers of ``table`` that helper ``name`` calls, read from its code."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(table[name])))
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)
            and node.id in table and node.id != name}


def needed(table: dict, called: set[str]) -> list[str]:
    """The helpers of ``table`` to define for lines that call ``called``, with those they call,
    in a fixed order."""
    wanted, pending = set(), [name for name in called if name in table]
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending.extend(_calls(table, name))
    return [name for name in table if name in wanted]


def sources(table: dict, called: set[str]) -> str:
    """The source of the helpers :func:`needed` for ``called``, as a module includes it."""
    return "".join("\n\n" + inspect.getsource(table[name]) for name in needed(table, called))
