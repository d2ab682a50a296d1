"""Front end: the ``derive`` command.

``main(argv) -> int`` never lets a traceback out for a user's mistake or a failing output:

* bad input or a usage error: one line on stderr naming the problem, exit status 2 (``derive``
  alone also prints the usage);
* a failed ``check``: one line, exit status 1;
* a file or folder that cannot be written, a full disk, or output that stdout's encoding
  cannot show: one line, exit status 1, and nothing half-written;
* Ctrl-C: ``derive: interrupted``, exit status 130;
* stdout closed early (``derive list | head -1``): no message, exit status 141 (128 + SIGPIPE,
  what a shell reports for a program that a closed pipe stops).

Output is made whole in memory first, then written (or written to ``--output FILE`` through a
temporary file and a rename).  While derivations are checked, a progress line shows on stderr
when stderr is a terminal (``--quiet`` hides it).  Each command imports only what it uses:
``derive list``, ``--version`` and ``--help`` never import SymPy.
"""
from __future__ import annotations

import os
import sys

from ..errors import CheckError, DeriveError, OutputError
from .commands import _COMMANDS, _formatter, _without_loss
from .output import _STATUS, _StatusLine, _say, _silence_stdout, _status, _unhook
from .parser import _UsageError, _parser

__all__ = ["main", "CLOSED_PIPE", "INTERRUPTED", "INTERNAL_ERROR", "_formatter"]

#: exit status when stdout is closed before the output is written: 128 + SIGPIPE
CLOSED_PIPE = 141
INTERRUPTED = 130
INTERNAL_ERROR = 70  # EX_SOFTWARE


def main(argv: list[str] | None = None) -> int:
    token = _STATUS.set(_StatusLine(enabled=False))
    try:
        try:
            return _run(argv)
        finally:
            _status().clear()
            _unhook()
            _STATUS.reset(token)
    except _UsageError as e:
        _say(f"derive: error: {e}")
        return 2
    except CheckError as e:
        _say(f"derive: check failed: {e}")
        return 1
    except OutputError as e:
        _say(f"derive: error: {e}")
        return 1
    except DeriveError as e:
        _say(f"derive: error: {e}")
        return 2
    except BrokenPipeError:  # the reader went away: nothing more to say to anyone
        _silence_stdout()
        return CLOSED_PIPE
    except OSError as e:
        _say(f"derive: error: {e}")
        return 1
    except KeyboardInterrupt:
        _say("derive: interrupted")
        return INTERRUPTED
    except Exception as e:  # a fault of derive itself: one line, unless asked for the traceback
        if os.environ.get("DERIVE_DEBUG"):
            raise
        _say(f"derive: internal error: {type(e).__name__}: {e} (set DERIVE_DEBUG=1 to see where)")
        return INTERNAL_ERROR


def _glued(argv: list[str]) -> list[str]:
    """``--loss TEXT`` as ``--loss=TEXT``: a loss often starts with a minus sign, which argparse
    would otherwise take for an option (``--loss -log(q[c])``)."""
    out, rest = [], list(argv)
    while rest:
        token = rest.pop(0)
        if token == "--loss" and rest:
            token = f"--loss={rest.pop(0)}"
        out.append(token)
    return out


def _run(argv: list[str] | None) -> int:
    argv = _glued(sys.argv[1:] if argv is None else list(argv))
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help or --version, already printed: flush here, not at exit
        if sys.stdout is not None:
            sys.stdout.flush()
        return stop.code if isinstance(stop.code, int) else 0
    if args.command is None:
        _say(parser.format_usage().rstrip("\n"))
        _say("derive: error: no command given; `derive --help` lists the commands")
        return 2
    _STATUS.set(_StatusLine(enabled=not args.quiet))
    _without_loss(args)
    from .. import budget
    with budget.deadline(getattr(args, "timeout", None)):
        return _COMMANDS[args.command](args)
