"""Backends: how generated code is spelled.

A backend is a module with an operation table (``OPS``: each neutral operation of the lines as
a call), the operations that may write over an operand (``IN_PLACE``; empty where arrays are
immutable, and the buffer-reuse pass is then not run), how an operand is seen along two axes
(``VIEWS``), ``line()``, ``calls()`` and ``runtime()``, the lines that make the shifted logits
(``SHIFTED``, ``SHIFT_CODE``) and that quiet a function's floating-point warnings (``QUIET``),
and its runtime and templates as real Python beside it: the catalogue's public functions
(``CATALOGUE``) and header (``HEADER``), and a user's loss's (``OWN``).  :mod:`.numpy` is the one
there is.
"""

#: The backends, by the name ``--backend`` gives.
NAMES = ("numpy", "torch", "jax")
#: What each backend's generated modules need installed, and the extra that installs it.
NEEDS = {"torch": ("torch", "PyTorch", "derive[torch]"), "jax": ("jax", "JAX", "derive[jax]")}


def get(name: str):
    """The backend module called ``name`` (one of :data:`NAMES`)."""
    import importlib
    if name not in NAMES:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}")


def require(name: str):
    """The array library that running a ``name`` module needs, imported, or a
    :class:`~derive.errors.DeriveError` saying how to install it."""
    import importlib
    from ...errors import DeriveError
    if name not in NEEDS:
        return None
    module, title, extra = NEEDS[name]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DeriveError(f"the {title} backend needs {title} to run and check its modules: "
                          f"pip install '{extra}'") from None
