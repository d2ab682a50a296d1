"""The ``derive`` command's output: stdout whole or not at all, one-line messages and a
progress line on stderr."""
from __future__ import annotations

import os
import sys
from contextvars import ContextVar
from pathlib import Path

from ..errors import OutputError


# -- output: whole or not at all ---------------------------------------------------------------

def _print(text: str) -> None:
    """Write ``text`` to stdout if all of it can be: nothing is written when stdout's encoding
    cannot show it; a failing write (a full disk) becomes an :class:`OutputError`."""
    _status().clear()
    out = sys.stdout
    if out is None:
        raise OutputError("cannot write the output: stdout is closed")
    encoding = getattr(out, "encoding", None) or "utf-8"
    try:
        text.encode(encoding, getattr(out, "errors", None) or "strict")
    except UnicodeEncodeError:
        raise OutputError(f"stdout's encoding ({encoding}) cannot show the output; "
                          "set PYTHONIOENCODING=utf-8") from None
    except LookupError:
        pass
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        _silence_stdout()  # or the interpreter fails again flushing it at exit
        raise OutputError(f"cannot write the output: {e.strerror or e}") from None


def _deliver(text: str, path: Path | None) -> None:
    """Print ``text``, or write it to ``path``, which is then never half-written."""
    if path is None or str(path) == "-":
        _print(text)
        return
    _writable(path)
    _status().clear()
    real = Path(os.path.realpath(path))  # write through a symbolic link, never replace it
    try:
        if real.exists() and not real.is_file():  # a device or a pipe: there is no renaming it
            with open(real, "w", encoding="utf-8", newline="\n") as out:
                out.write(text)
        else:
            from ..files import write_atomically
            write_atomically(real, text)
    except BrokenPipeError:
        raise
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def _writable(path: Path | None) -> None:
    """Refuse, before any work, an --output FILE that cannot be: a folder, or in a missing one."""
    if path is None or str(path) == "-":
        return
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: " + (f"{path.parent} is not a folder"
                          if path.parent.exists() else f"folder {path.parent} does not exist"))


def _silence_stdout() -> None:
    """Point stdout's file descriptor at /dev/null, so that what is left in its buffer goes
    nowhere quietly at exit (instead of an "Exception ignored" message)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass


# -- stderr: one-line messages and the progress line -------------------------------------------

def _say(line: str) -> None:
    """One line on stderr (the progress line cleared first); a closed stderr is not an error."""
    _status().clear()
    if sys.stderr is None:  # closed: print would fall back to stdout
        return
    try:
        print(line, file=sys.stderr, flush=True)
    except (AttributeError, OSError, ValueError):
        pass


class _StatusLine:
    """``checking NAME (n/N)…`` on stderr when it is a terminal, rewritten in place with \\r and
    cleared before anything else is written and at the end."""

    def __init__(self, enabled: bool):
        self.stream = sys.stderr
        try:
            self.enabled = enabled and self.stream is not None and self.stream.isatty()
        except (AttributeError, OSError, ValueError):
            self.enabled = False
        self.width = 0
        self.dots = "…"
        if self.enabled:
            try:
                self.dots.encode(self.stream.encoding or "utf-8")
            except (UnicodeEncodeError, LookupError):
                self.dots = "..."

    def show(self, name: str, n: int, total: int) -> None:
        if self.enabled:
            line = f"checking {name} ({n}/{total}){self.dots}"
            self._put("\r" + line.ljust(self.width))
            self.width = len(line)

    def clear(self) -> None:
        if self.width:
            self._put("\r" + " " * self.width + "\r")
            self.width = 0

    def _put(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (AttributeError, OSError, ValueError):
            self.enabled, self.width = False, 0


#: the progress line of the command running in this thread (each thread has its own)
_STATUS: ContextVar[_StatusLine] = ContextVar("derive_status_line")


def _status() -> _StatusLine:
    line = _STATUS.get(None)
    return line if line is not None else _StatusLine(enabled=False)


def _watch(scope: list[str] | None) -> None:
    """Show the progress of the checks about to run (the derivations ``scope`` and their
    lemmas; None: any), and route the cache's warnings to stderr as one line."""
    from ..check import cache
    line = _status()
    cache.on_progress(line.show if line.enabled else None, scope)
    cache.on_warning(lambda message: _say(f"derive: warning: {message}"))


def _unhook() -> None:
    cache = sys.modules.get("derive.check.cache")
    if cache is not None:
        cache.on_progress(None)
        cache.on_warning(None)
