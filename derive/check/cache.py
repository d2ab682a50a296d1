"""The cache of passed checks, and ``checked``: a derivation built, checked once, remembered.

A pass is remembered under a fingerprint of the derivation's steps, of the checker's source and
of the model, in ``$DERIVE_CACHE_DIR`` (or ``~/.cache/derive``), so printing stays fast.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from sympy import srepr

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
    only means the check runs again next time)."""
    path = _cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        known = path.read_text().split() if path.exists() else []
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".checked-")
        with os.fdopen(fd, "w") as out:
            out.write("\n".join(known[-200:] + [key]) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass


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
        check(derivation)
        _remember(key)
    return derivation


def _sources() -> list[str]:
    """The text of the checker and of the model: a change to either makes every pass stale."""
    here = Path(__file__).parent
    return [path.read_text() for path in sorted(here.glob("*.py"))] + \
        [(here.parent / "model.py").read_text()]
