"""The files in ``output/``: every rendering of every derivation, and the generated module.

``artifacts()`` computes them in memory; ``write`` puts them on disk atomically and ``stale``
lists the ones on disk that differ from what would be written today.
"""
from __future__ import annotations

from pathlib import Path

from .codegen import MODULE_NAME, source, write_atomically
from .derivations import names


def artifacts() -> dict[str, str]:
    """File name -> content, in a fixed order; the same bytes on every run."""
    from . import derivation
    from .render import render
    derivations = [derivation(n) for n in names()]
    files = {f"{MODULE_NAME}.py": source(),
             "derivations.tex": render("latex", derivations, document=True)}
    for d in derivations:
        files[f"{d.name}.tex"] = render("latex", [d])
        files[f"{d.name}.md"] = render("markdown", [d])
    return files


def write(directory: Path) -> list[Path]:
    written = []
    for name, text in artifacts().items():
        write_atomically(directory / name, text)
        written.append(directory / name)
    return written


def stale(directory: Path) -> list[Path]:
    """Files that are missing from ``directory`` or differ from what ``write`` would put there."""
    out = []
    for name, text in artifacts().items():
        path = directory / name
        if not path.exists() or path.read_bytes() != text.encode("utf-8"):
            out.append(path)
    return out
