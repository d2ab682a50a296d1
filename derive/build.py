"""The files in ``output/``: every rendering of every derivation, and the generated module.

``artifacts()`` computes them in memory; ``write`` puts them on disk atomically and ``stale``
lists the ones on disk that differ from what would be written today.  A folder that cannot be
written raises :class:`~derive.errors.OutputError` naming the path.
"""
from __future__ import annotations

from pathlib import Path

from .codegen import MODULE_NAME, source
from .files import write_atomically
from .derivations import names
from .errors import OutputError


#: The backends whose catalogue modules ``output/`` holds, and each one's file.
BACKENDS = ("numpy", "torch", "jax")
FILES = {"numpy": f"{MODULE_NAME}.py", "torch": f"{MODULE_NAME}_torch.py",
         "jax": f"{MODULE_NAME}_jax.py"}


def artifacts(backends: tuple[str, ...] = BACKENDS) -> dict[str, str]:
    """File name -> content, in a fixed order; the same bytes on every run: the renderings,
    and the catalogue's module for each of ``backends`` (generating one needs no library)."""
    from .check import checked
    from .codegen.backends import get
    from .render import render
    derivations = [checked(n) for n in names()]
    files = {FILES[b]: source(backend=get(b)) for b in BACKENDS if b in backends}
    files["derivations.tex"] = render("latex", derivations, document=True)
    for d in derivations:
        files[f"{d.name}.tex"] = render("latex", [d])
        files[f"{d.name}.md"] = render("markdown", [d])
    return files


def make_folder(directory: Path, create: bool = True) -> bool:
    """Make sure ``directory`` is a folder: if it is missing but its parent folder exists,
    create it (unless ``create`` is false: then only say whether it would be) and return True.
    A missing path of several folders is never created: :class:`OutputError`."""
    directory = Path(directory)
    if directory.is_dir():
        return False
    if directory.exists():
        raise OutputError(f"cannot write to {directory}: it is a file, not a folder")
    if not directory.parent.is_dir():
        raise OutputError(f"cannot create {directory}: " + (
            f"{directory.parent} is not a folder" if directory.parent.exists()
            else f"folder {directory.parent} does not exist"))
    if create:
        try:
            directory.mkdir()
        except OSError as e:
            raise OutputError(f"cannot create {directory}: {e.strerror or e}") from None
    return True


def write(directory: Path, backends: tuple[str, ...] = BACKENDS) -> list[Path]:
    """Write every artifact into ``directory`` (see :func:`make_folder`), each atomically."""
    files = artifacts(backends)
    make_folder(directory)
    return write_files(directory, files)


def write_files(directory: Path, files: dict[str, str]) -> list[Path]:
    """Write ``files`` (name -> text) into the folder ``directory``, each atomically."""
    written = []
    for name, text in files.items():
        try:
            write_atomically(directory / name, text)
        except OSError as e:
            raise OutputError(f"cannot write {directory / name}: {e.strerror or e}") from None
        written.append(directory / name)
    return written


def stale(directory: Path, files: dict[str, str] | None = None,
          backends: tuple[str, ...] = BACKENDS) -> list[Path]:
    """Files that are missing from ``directory`` or differ from what ``write`` would put there
    (or from ``files``, name -> text, when given)."""
    if Path(directory).exists() and not Path(directory).is_dir():
        raise OutputError(f"cannot check {directory}: it is a file, not a folder")
    out = []
    for name, text in (artifacts(backends) if files is None else files).items():
        path = directory / name
        if not path.exists() or path.read_bytes() != text.encode("utf-8"):
            out.append(path)
    return out
