"""The cache of passed checks, and ``checked``: a derivation built, checked once, remembered.

A pass is remembered under a fingerprint of the derivation's steps, of the checker's source and
of the model, in ``$DERIVE_CACHE_DIR`` (or ``~/.cache/derive``), so printing stays fast.

Two hooks let a front end show what happens: :func:`on_progress` (which derivation is being
checked, n of N) and :func:`on_warning` (a cache that cannot be written).  They hold in the
thread (or task) that sets them, and a library call with neither says nothing.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

from sympy import srepr

from ..errors import DeriveError
from ..records import Derivation
from .core import check


def fingerprint(derivation: Derivation) -> str:
    """What a passed check depends on: the steps, the goal, the checker and the model."""
    import sympy
    digest = hashlib.sha256()
    for part in (srepr(derivation.goal), repr(derivation.lemmas), sympy.__version__,
                 *_sources()):
        digest.update(part.encode())
    for step in derivation.steps:
        digest.update(srepr((step.lhs, step.expr)).encode())
        digest.update(repr((step.rules, sorted(f.name for f in step.facts), step.aside)).encode())
    return digest.hexdigest()


def _cache_file() -> Path:
    root = os.environ.get("DERIVE_CACHE_DIR") or \
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "derive"
    return Path(root) / "checked.txt"


def _passed_before(key: str) -> bool:
    try:
        return key in _cache_file().read_text().split()
    except OSError:
        return False


def _remember(key: str) -> None:
    """Add ``key`` to the cache of passed checks (atomically; a cache that cannot be written
    only means the check runs again next time, and a warning says so once)."""
    path = _cache_file()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        known = path.read_text().split() if path.exists() else []
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".checked-")
        with os.fdopen(fd, "w") as out:
            out.write("\n".join(known[-200:] + [key]) + "\n")
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        folder = path.parent
        reason = "it is not a folder" if folder.exists() and not folder.is_dir() else \
            (e.strerror or str(e)).lower()
        _warn_once(f"cannot write the cache of passed checks in {folder} ({reason}); "
                   "every run will check again")
    finally:
        if tmp is not None:  # interrupted or failed between the temporary file and the rename
            Path(tmp).unlink(missing_ok=True)


# -- hooks for a front end: progress of the checks, and warnings -------------------------------

class _Hooks:
    """What the front end running in this context asked to be told."""

    def __init__(self):
        self.progress: Callable[[str, int, int], None] | None = None
        self.scope: tuple[str, ...] | None = None  # the derivations about to be asked for
        self.plan: list[str] | None = None         # those of them (and lemmas) not passed before
        self.count = 0                             # checks announced since on_progress
        self.warning: Callable[[str], None] | None = None
        self.warned = False


#: the hooks of the front end of this thread (or task); none by default
_HOOKS: ContextVar[_Hooks | None] = ContextVar("derive_cache_hooks", default=None)
_passed: set[str] = set()  # catalogue derivations checked (or found passed) in this process


def _hooks() -> _Hooks:
    hooks = _HOOKS.get()
    if hooks is None:
        hooks = _Hooks()
        _HOOKS.set(hooks)
    return hooks


def on_progress(callback: Callable[[str, int, int], None] | None,
                names: Iterable[str] | None = None) -> None:
    """Call ``callback(name, n, total)`` just before derivation ``name`` is actually checked,
    never when its pass comes from the cache.  ``total`` is the number of derivations among
    ``names`` (default: all of them) and their lemmas whose pass is not remembered, counted at
    the first check (so it costs nothing when everything is cached); if more are checked, it
    grows with ``n``.  ``None`` stops the calls.  The hook holds in the calling thread only."""
    hooks = _hooks()
    hooks.progress, hooks.plan, hooks.count = callback, None, 0
    hooks.scope = tuple(names) if names is not None else None


def on_warning(callback: Callable[[str], None] | None) -> None:
    """Send the one-line warnings of this module (at most one a front end) to ``callback``;
    ``None`` stops them.  A library call with no such hook says nothing: a cache that cannot
    be written only means that checks run again."""
    hooks = _hooks()
    hooks.warning, hooks.warned = callback, False


def _warn_once(message: str) -> None:
    hooks = _hooks()
    if hooks.warned:
        return
    hooks.warned = True
    if hooks.warning is not None:
        hooks.warning(message)


def _announce(name: str) -> None:
    """Tell the progress callback that ``name`` is about to be checked."""
    hooks = _HOOKS.get()
    if hooks is None or hooks.progress is None:
        return
    if hooks.plan is None:
        hooks.plan = _unpassed(hooks.scope)
    hooks.count += 1
    hooks.progress(name, hooks.count, max(hooks.count, len(hooks.plan)))


def _unpassed(scope: Iterable[str] | None) -> list[str]:
    """The derivations of ``scope`` (default: all) and their lemmas not passed before."""
    from ..derivations import build, names
    out: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name in _passed:
            return
        seen.add(name)
        try:
            derivation = build(name)
        except DeriveError:  # only an estimate: checked() reports the error
            return
        for lemma in derivation.lemmas:
            visit(lemma)
        if not _passed_before(fingerprint(derivation)):
            out.append(name)

    for name in (names() if scope is None else scope):
        visit(name)
    return out


@lru_cache(maxsize=None)
def checked(name: str) -> Derivation:
    """Build derivation ``name`` and its lemmas, check them, and return it.

    A derivation whose fingerprint passed this checker before is not checked again, so
    printing stays fast; ``derive check`` always checks from scratch.
    """
    from ..derivations import build
    derivation = build(name)
    for lemma in derivation.lemmas:
        checked(lemma)
    key = fingerprint(derivation)
    if not _passed_before(key):
        _announce(name)
        check(derivation)
        _remember(key)
    _passed.add(name)
    return derivation


def _sources() -> list[str]:
    """The text of the checker and of the model: a change to either makes every pass stale."""
    here = Path(__file__).parent
    return [path.read_text() for path in sorted(here.glob("*.py"))] + \
        [(here.parent / "model.py").read_text()]
