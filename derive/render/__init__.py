"""Stage 5 of the pipeline: renderers.

Each renderer is a module with ``render(derivation, **settings) -> str`` that reads only the
records.  They are chosen by name from :data:`RENDERERS` and imported only when used.
"""
from __future__ import annotations

from importlib import import_module

from ..errors import DeriveError

RENDERERS = ("latex", "markdown", "text")


def _text(derivation) -> str:
    return import_module(".text", __name__).render(derivation)


def _latex(derivation) -> str:
    return import_module(".latex", __name__).render_body(derivation, "aligned")


def register() -> None:
    """Let a derivation print itself (``print(d)``, and ``d`` in a notebook) through these
    renderers; the records import nothing of them."""
    from .. import records
    records.DISPLAY.update(text=_text, latex=_latex)


def render(fmt: str, derivations, **settings) -> str:
    """Render one derivation or several in format ``fmt``."""
    if fmt not in RENDERERS:
        raise DeriveError(f"unknown format {fmt!r}; choose one of: {', '.join(RENDERERS)}")
    module = import_module(f".{fmt}", __name__)
    return module.render_many(list(derivations), **settings)
