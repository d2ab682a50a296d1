"""The ``derive`` command's arguments."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..version import __version__
from ..derivations import names
from .output import _print


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

    s = sub.add_parser("code", parents=[common], help="print a generated module",
                       description="Print the NumPy, PyTorch or JAX module generated from the "
                       "derived results, or, with --loss, the module of your own loss.")
    s.add_argument("--output", type=Path, metavar="FILE",
                   help="write to FILE (through a temporary file) instead of stdout")
    s.add_argument("--backend", choices=("numpy", "torch", "jax"), default="numpy",
                   help="the array library of the module (default numpy)")
    _loss_options(s, module=True)
    s = sub.add_parser("build", parents=[common], help="write every generated file to output/",
                       description="Write the renderings and the generated module to a folder; "
                       "with --loss, NAME.py, NAME.tex and NAME.md of your own loss.")
    s.add_argument("--output", type=Path, default=Path("output"), metavar="DIR",
                   help="folder (default: output); created if missing, but not its parent")
    s.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 listing the files that are missing or stale")
    s.add_argument("--backend", choices=("numpy", "torch", "jax"), default=None,
                   help="only this backend's module (default: the NumPy, PyTorch and JAX "
                   "modules; with --loss, NumPy)")
    _loss_options(s, module=True)

    s = sub.add_parser("verify", parents=[common], help="check your own working, line by line",
                       description="Check a derivation of your own, a chain of equalities in "
                       "LaTeX or in the text form, each line against the one before; say which "
                       "line, if any, does not hold, with a counterexample. Exit status 0 when "
                       "every line holds, 1 when one does not, 2 when one cannot be read.")
    s.add_argument("file", metavar="FILE", help="the working (a .tex, .md or text file), or - "
                   "to read standard input")
    s.add_argument("--let", action="append", default=[], metavar="NAME=MEANING",
                   help="read your name NAME as derive's MEANING: q (softmax), y (target), z "
                   "(logits), sigma, w, K or E (cross-entropy); e.g. --let S=q --let Loss=E")
    s.add_argument("--label", metavar="NAME",
                   help="NAME is the class of a one-hot target (q_y with --label y)")
    s.add_argument("--assume", choices=("any", "probability", "one-hot"), default=None,
                   help="what the target is (default: one-hot where the working uses the "
                   "label, else probability)")
    s.add_argument("--format", choices=("text", "latex", "json"), default="text",
                   help="the report for the terminal (default), as a LaTeX document, or as JSON")
    s.add_argument("--output", type=Path, metavar="FILE",
                   help="write the report to FILE (atomically) instead of stdout")
    s.add_argument("--timeout", type=_seconds, default=60.0, metavar="SECONDS",
                   help="give up after this many seconds (default 60)")
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
