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

import argparse
import math
import os
import re
import sys
from contextvars import ContextVar
from pathlib import Path

from . import __version__
from .derivations import CATALOGUE, names
from .errors import CheckError, DeriveError, InputError, OutputError

#: exit status when stdout is closed before the output is written: 128 + SIGPIPE
CLOSED_PIPE = 141
INTERRUPTED = 130
INTERNAL_ERROR = 70  # EX_SOFTWARE

#: what argparse should take for a negative number rather than an option: every float, as typed
#: (-1, -.5, -2e3, -1E+3, -inf, -Infinity; -nan too, so that it gets a message of its own)
_NUMBER = re.compile(r"^-(?:(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|inf(?:inity)?|nan)$", re.IGNORECASE)


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, raised instead of printed with usage, and
    that reads negative numbers in any notation as values."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NUMBER

    def error(self, message):
        raise _UsageError(message)

    def _print_message(self, message, file=None):  # argparse would hide a failing stdout
        if message and file is sys.stdout:
            _print(message)
        elif message:
            (file or sys.stderr).write(message)


def _digits(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not 0 <= value <= 17:
        raise argparse.ArgumentTypeError(f"{value} is out of range 0..17")
    return value


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="derive", description="Derive the gradient of softmax cross-entropy for "
                "any number of classes K, step by step, checked, and generate NumPy code.")
    p.add_argument("--version", action="version", version=f"derive {__version__}")
    quiet_help = "no progress line on stderr while derivations are checked"
    p.add_argument("-q", "--quiet", action="store_true", help=quiet_help)
    # also accepted after the command; SUPPRESS keeps a --quiet given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help=quiet_help)
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    routes = dict(action="extend", nargs="+", metavar="NAME")

    for fmt, what in (("latex", "LaTeX (align* blocks)"), ("markdown", "Markdown with $$ blocks"),
                      ("text", "Unicode text for the terminal")):
        s = sub.add_parser(fmt, parents=[common], help=f"print derivations as {what}",
                           description=f"Print checked derivations as {what}.")
        s.add_argument("--route", **routes,
                       help=f"only these derivations, in this order ({', '.join(names())}); "
                       "default: all")
        if fmt == "latex":
            s.add_argument("--document", action="store_true",
                           help="a standalone document that compiles with pdflatex")
        _loss_options(s)
        s.add_argument("--output", type=Path, metavar="FILE",
                       help="write to FILE (through a temporary file) instead of stdout")

    s = sub.add_parser("check", parents=[common], help="prove every step of the derivations",
                       description="Check every step numerically for K = 2..8 at many random "
                       "samples, and symbolically where SymPy can; exit 1 if any step fails.")
    s.add_argument("--route", **routes, help="only these derivations, in this order")
    _loss_options(s)

    sub.add_parser("list", parents=[common], help="list the derivations",
                   description="List the derivations.")

    s = sub.add_parser("eval", parents=[common], help="softmax, loss and gradient at given numbers",
                       description="Evaluate softmax, cross-entropy and its gradient. Give logits "
                       "(or softmax outputs with --probs) and a label or a target vector. "
                       "Negative numbers (-2e3) and masked logits (-inf) are read as typed.")
    given = s.add_mutually_exclusive_group(required=True)
    given.add_argument("--logits", nargs="+", type=float, metavar="Z",
                       help="logits z_1..z_K (-inf masks a class)")
    given.add_argument("--probs", nargs="+", type=float, metavar="P",
                       help="softmax outputs q_1..q_K (non-negative, summing to 1) instead of logits")
    target = s.add_mutually_exclusive_group()
    target.add_argument("--label", type=int, metavar="C", help="true class, 0-based")
    target.add_argument("--target", nargs="+", type=float, metavar="Y",
                        help="target probabilities y_1..y_K (one of --label and --target is "
                        "needed, except for a --loss that uses neither c nor y)")
    s.add_argument("--digits", type=_digits, default=4,
                   help="decimals to print, 0..17 (default 4)")
    s.add_argument("--loss", metavar="TEXT",
                   help="your own loss instead of the cross-entropy (see `derive text --help`)")
    s.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a scalar parameter of --loss, such as gamma=2")
    s.add_argument("--array", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="a per-class array of --loss, one value a class")
    s.add_argument("--timeout", type=_seconds, default=60.0, metavar="SECONDS",
                   help="time limit of the whole command, in seconds (default 60)")

    s = sub.add_parser("code", parents=[common], help="print the generated NumPy module",
                       description="Print the NumPy module generated from the derived results, "
                       "or, with --loss, the module of your own loss.")
    s.add_argument("--output", type=Path, metavar="FILE",
                   help="write to FILE (through a temporary file) instead of stdout")
    _loss_options(s, module=True)
    s = sub.add_parser("build", parents=[common], help="write every generated file to output/",
                       description="Write the renderings and the generated module to a folder; "
                       "with --loss, NAME.py, NAME.tex and NAME.md of your own loss.")
    s.add_argument("--output", type=Path, default=Path("output"), metavar="DIR",
                   help="folder (default: output); created if missing, but not its parent")
    s.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 listing the files that are missing or stale")
    _loss_options(s, module=True)
    return p


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{value:g} is out of range (0, 3600]")
    return value


def _loss_options(s: argparse.ArgumentParser, module: bool = False) -> None:
    s.add_argument("--loss", metavar="TEXT",
                   help="derive the gradient of your own loss, e.g. "
                   "'-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)' or the LaTeX derive prints")
    s.add_argument("--assume", choices=("any", "probability", "one-hot"), default=None,
                   help="what the target is, for --loss (default: probability, or one-hot when "
                   "the loss uses the class c)")
    s.add_argument("--name", metavar="NAME",
                   help="the module's name (and the files' stem), a Python identifier"
                   if module else "a title for --loss")
    s.add_argument("--timeout", type=_seconds, default=60.0, metavar="SECONDS",
                   help="time limit of the whole command, in seconds (default 60)")


def _own_derivation(args, assume: str | None = None, loss=None):
    """The checked derivation of the loss given with --loss (``loss``, when already parsed)
    and the checker's report on it."""
    if getattr(args, "route", None):
        raise _UsageError("give either --route or --loss, not both")
    import derive
    from .model import c
    loss = derive.parse(args.loss) if loss is None else loss
    assume = assume or args.assume
    if assume not in (None, "one-hot") and loss.has(c):
        raise _UsageError("the loss uses the class c of a one-hot target: give --assume one-hot")
    _status().show("your loss", 1, 1)
    return derive._checked_gradient(loss, assume, getattr(args, "name", None), args.timeout)


def _without_loss(args) -> None:
    """--name, --assume, --param and --array only make sense with --loss."""
    if getattr(args, "loss", None) is not None:
        return
    given = [option for option, attribute in (("--name", "name"), ("--assume", "assume"),
                                              ("--param", "param"), ("--array", "array"))
             if getattr(args, attribute, None)]
    if given:
        raise _UsageError(f"{' and '.join(given)} go{'es' if len(given) == 1 else ''} with --loss")


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
    from . import budget
    with budget.deadline(getattr(args, "timeout", None)):
        return _COMMANDS[args.command](args)


# -- the commands ------------------------------------------------------------------------------

def _selected(args) -> list[str]:
    """The derivations asked for with --route, in the order given (each once), or all."""
    if not args.route:
        return names()
    chosen: list[str] = []
    for name in args.route:
        if name not in CATALOGUE:
            import difflib
            close = difflib.get_close_matches(name, names(), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"choose from {', '.join(names())}"
            raise _UsageError(f"unknown derivation {name!r}; {hint}")
        if name not in chosen:
            chosen.append(name)
    return chosen


def _render(args) -> int:
    settings = {"document": True} if getattr(args, "document", False) else {}
    _writable(args.output)
    from .render import render
    if args.loss is not None:
        _deliver(render(args.command, [_own_derivation(args)[0]], **settings), args.output)
        return 0
    routes = _selected(args)
    _watch(routes)
    from . import derivation
    _deliver(render(args.command, [derivation(n) for n in routes], **settings), args.output)
    return 0


def _check(args) -> int:
    if args.loss is not None:
        d, report = _own_derivation(args)
        from .check.core import SIZES
        proved = ("step " if len(report.proved) == 1 else "steps ") + \
            (", ".join(map(str, report.proved)) or "none")
        from .render.printers import text
        from .rules.tidy import cost
        _print(f"{d.name}: {len(report.steps)} steps, {report.samples:,} samples at "
               f"K={SIZES[0]}..{SIZES[-1]}; proved symbolically: {proved}; "
               f"result = {text(d.result)} (cost {cost(d.result)})\n")
        return 0
    routes = _selected(args)
    _watch(routes)
    from .check import check
    from .check.core import SIZES
    from .derivations import build
    from .render.printers import text
    lines = []
    try:
        for n, name in enumerate(routes, 1):
            _status().show(name, n, len(routes))
            report = check(build(name))
            proved = ("step " if len(report.proved) == 1 else "steps ") + \
                (", ".join(map(str, report.proved)) or "none")
            lines.append(f"{name}: {len(report.steps)} steps, {report.samples:,} samples at "
                         f"K={SIZES[0]}..{SIZES[-1]}; proved symbolically: {proved}; "
                         f"result = {text(report.goal)}\n")
    except CheckError:
        _print("".join(lines))  # the ones that passed, then the failure
        raise
    _print("".join(lines))
    return 0


def _list(args) -> int:
    width = max(map(len, CATALOGUE))
    _print("".join(f"{name:<{width}}  {description}\n"
                   for name, (_, description) in CATALOGUE.items()))
    return 0


def _vector(values, what: str, allow_minus_inf: bool = False) -> list[float]:
    for v in values:
        if math.isnan(v) or (math.isinf(v) and not (allow_minus_inf and v < 0)):
            raise InputError(f"{what}: {v} is not allowed (must be finite"
                             f"{' or -inf' if allow_minus_inf else ''})")
    return list(values)


#: what ``derive eval`` runs of the generated module, and the derivations those functions need
EVAL_FUNCTIONS = ("softmax", "cross_entropy_with_grad")
EVAL_DERIVATIONS = ["shift-invariance", "any-target"]


def _eval(args) -> int:
    import numpy as np

    from .codegen import load_module
    if args.probs is not None:
        probs = _vector(args.probs, "--probs")
        if min(probs) < 0:
            raise InputError("--probs: probabilities must not be negative")
        if abs(sum(probs) - 1) > 1e-6:
            raise InputError(f"--probs: probabilities must sum to 1, not {sum(probs):g}")
        with np.errstate(divide="ignore"):
            logits = np.log(np.asarray(probs))  # softmax(log p) = p when Σp = 1; 0 -> masked
    else:
        logits = np.asarray(_vector(args.logits, "--logits", allow_minus_inf=True))
    size = logits.size
    if args.label is None and args.target is None:
        if args.loss is None:
            raise _UsageError("give the true class with --label, or a target with --target")
        target = None
    elif args.label is not None:
        if not 0 <= args.label < size:
            raise InputError(f"--label: {args.label} is out of range 0..{size - 1}")
        target = np.asarray(args.label)
    else:
        target = np.asarray(_vector(args.target, "--target"))
        if target.size != size:
            raise InputError(f"--target has {target.size} values but there are {size} classes")
        if target.min() < 0:
            raise InputError("--target: probabilities must not be negative")
    if args.loss is not None:
        return _eval_own(args, logits, target)
    _watch(EVAL_DERIVATIONS)
    m = load_module(functions=EVAL_FUNCTIONS)  # checks only what these functions need
    loss, grad = m.cross_entropy_with_grad(logits, target)
    fmt = _formatter(args.digits)
    _print(f"softmax   {' '.join(map(fmt, m.softmax(logits)))}\n"
           f"loss      {fmt(float(loss))}\n"
           f"gradient  {' '.join(map(fmt, grad))}\n")
    return 0


def _formatter(digits: int):
    """Numbers with ``digits`` decimals, zero as 0.0000 (never -0.0000)."""
    def fmt(value) -> str:
        text = f"{float(value):.{digits}f}"
        return text[1:] if text.startswith("-") and float(text) == 0 else text
    return fmt


def _eval_own(args, logits, target) -> int:
    """Loss and gradient of --loss at the numbers given, from its checked derivation."""
    import numpy as np

    import derive
    from .model import c, needs_positive_target, y
    from .parse.names import ALIASES
    values = {}
    for option, items, read in (("--param", args.param, float),
                                ("--array", args.array,
                                 lambda text: [float(v) for v in text.split(",")])):
        for item in items:
            name, _, numbers = item.partition("=")
            name = ALIASES.get(name.strip(), name.strip())
            if name in values:
                raise _UsageError(f"{option} {name}: given more than once")
            try:
                values[name] = read(numbers)
            except ValueError:
                form = "NAME=NUMBER" if option == "--param" else "NAME=V1,V2,... with numbers"
                raise InputError(f"{option} {item!r}: give {form}") from None
    if not np.all(np.isfinite(logits)):
        raise InputError("--loss: give finite logits")
    loss = derive.parse(args.loss)
    one_hot, uses_target = loss.has(c), loss.has(y)
    if one_hot and (target is None or target.ndim != 0):
        raise InputError("the loss uses the class c: give --label")
    if target is None and uses_target:
        raise _UsageError("the loss uses the target y: give --target, or --label for a one-hot "
                          "target")
    if target is not None and not (one_hot or uses_target):
        raise _UsageError(f"{'--target' if args.target is not None else '--label'}: the loss "
                          "uses neither the target y nor the class c; give no target")
    if args.target is not None and not uses_target:
        raise _UsageError("--target: the loss does not use the target y; give --label for the "
                          "class c")
    if target is not None and needs_positive_target(loss) and (target.ndim == 0 or
                                                              target.min() <= 0):
        raise InputError("the loss takes the log or a root of the target, so it is defined for "
                         "positive targets only: give --target with every entry above 0")
    d = _own_derivation(args, assume="one-hot" if one_hot else "any", loss=loss)[0]
    if target is None:
        target = np.zeros(logits.size)
    elif target.ndim == 0:
        values["c"] = int(target)
        target = np.eye(logits.size)[int(target)]
    fmt = _formatter(args.digits)
    symbol = d.steps[0].lhs
    value = derive.evaluate(symbol, list(logits), list(target), **values)
    grad = [derive.evaluate(d.result, list(logits), list(target), k=n, **values)
            for n in range(logits.size)]
    _print(f"loss      {fmt(value)}\ngradient  {' '.join(map(fmt, grad))}\n")
    return 0


def _code(args) -> int:
    _writable(args.output)
    if args.loss is not None:
        _deliver(_own_source(args), args.output)
        return 0
    _watch(None)
    from .codegen import source
    _deliver(source(), args.output)
    return 0


def _own_source(args) -> str:
    """The generated module of --loss, named by --name."""
    from .codegen import own as lossmodule
    lossmodule.module_name(args.name)
    return lossmodule.checked_source(lossmodule.spec(_own_derivation(args)[0], args.name))


def _build(args) -> int:
    if args.loss is not None:
        return _build_own(args)
    _watch(None)
    from . import build
    if args.check:
        return _check_files(args.output, build.stale(args.output), "derive build")
    created = build.make_folder(args.output, create=False)  # refuse a bad folder before checking
    return _wrote(args.output, created, build.write(args.output))


def _build_own(args) -> int:
    """NAME.py, NAME.tex and NAME.md of --loss in the folder --output."""
    from . import build
    from .codegen import own as lossmodule
    from .render import render
    name = lossmodule.module_name(args.name)
    d = _own_derivation(args)[0]
    files = {f"{name}.py": lossmodule.checked_source(lossmodule.spec(d, name)),
             f"{name}.tex": render("latex", [d]), f"{name}.md": render("markdown", [d])}
    if args.check:
        return _check_files(args.output, build.stale(args.output, files), "derive build --loss")
    created = build.make_folder(args.output)
    return _wrote(args.output, created, build.write_files(args.output, files))


def _check_files(folder: Path, stale: list[Path], command: str) -> int:
    """Say which files are stale (exit status 1), or that the folder is up to date."""
    _print("".join(f"stale: {path}\n" for path in stale) if stale else f"{folder}: up to date\n")
    if stale:
        _say(f"{len(stale)} file(s) in {folder} are stale; run `{command}`")
        return 1
    return 0


def _wrote(folder: Path, created: bool, written: list[Path]) -> int:
    _print((f"created {folder}\n" if created else "") + "".join(f"wrote {path}\n"
                                                               for path in written))
    return 0


_COMMANDS = {"latex": _render, "markdown": _render, "text": _render, "check": _check,
             "list": _list, "eval": _eval, "code": _code, "build": _build}


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
            from .files import write_atomically
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
    from .check import cache
    line = _status()
    cache.on_progress(line.show if line.enabled else None, scope)
    cache.on_warning(lambda message: _say(f"derive: warning: {message}"))


def _unhook() -> None:
    cache = sys.modules.get("derive.check.cache")
    if cache is not None:
        cache.on_progress(None)
        cache.on_warning(None)
