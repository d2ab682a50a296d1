"""One deadline and one memory budget for everything a call of the library does.

A call such as :func:`derive.gradient` opens a :func:`deadline`; the stages it runs (parsing,
the strategy, the checker, the code generator) call :func:`check` between units of work, and
the first call past the deadline raises :class:`OutOfTime`, naming what was being done.  The
deadline is cooperative: no signal, no timer, nothing process-wide.  It lives in a context
variable, so each thread (and each asyncio task) has its own, and it is gone when the call
returns.  Work that cannot be interrupted is kept short by bounding its input instead (the
symbolic attempts of the checker are tried only on expressions of bounded size, the checker's
sample arrays are sized in advance to :data:`ELEMENTS`).
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar

from .errors import DeriveError

#: The deadline of a call that gives none, in seconds (``timeout=`` in the API, ``--timeout``).
DEFAULT_SECONDS = 60.0
#: The most entries one array of the checker holds (8 bytes each: 32 MiB).
ELEMENTS = 1 << 22
#: The most entries the checker computes for one step at one K, summed over its samples.
WORK = 1 << 23


class OutOfTime(DeriveError, TimeoutError):
    """The call did not finish before its deadline."""


class _Deadline:
    __slots__ = ("seconds", "end")

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds


_current: ContextVar[_Deadline | None] = ContextVar("derive_deadline", default=None)


def seconds_valid(seconds) -> float:
    """``seconds`` as a positive, finite float, or a :class:`DeriveError` naming it."""
    if isinstance(seconds, (bool, str, bytes)):
        raise DeriveError(f"timeout must be a number of seconds, not {seconds!r}")
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise DeriveError(f"timeout must be a number of seconds, not {seconds!r}") from None
    if not 0 < value < float("inf"):
        raise DeriveError(f"timeout must be a positive, finite number of seconds, not {value:g}")
    return value


@contextmanager
def deadline(seconds: float | None = None):
    """Run the block under a deadline ``seconds`` from now (:data:`DEFAULT_SECONDS` when None).

    Inside a block that already has one, the earlier of the two deadlines holds.
    """
    outer = _current.get()
    new = _Deadline(DEFAULT_SECONDS if seconds is None else seconds_valid(seconds))
    if outer is not None and outer.end <= new.end:
        yield
        return
    token = _current.set(new)
    try:
        yield
    finally:
        _current.reset(token)


def check(doing: str) -> None:
    """Raise :class:`OutOfTime` if the current deadline has passed; ``doing`` says what the
    call was doing, as in "checking step 3"."""
    current = _current.get()
    if current is not None and time.monotonic() > current.end:
        raise OutOfTime(f"out of time after {current.seconds:g} s while {doing} "
                        "(give a longer --timeout, or timeout= in the API)")


def remaining() -> float:
    """Seconds left before the current deadline (infinity where there is none)."""
    current = _current.get()
    return float("inf") if current is None else current.end - time.monotonic()
