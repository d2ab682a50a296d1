"""Front end: the ``derive`` command.

``main(argv) -> int`` never lets a traceback out for a user's mistake: a :class:`DeriveError`
or bad argument becomes one line on stderr and exit status 2; a failed ``check`` exits 1.
Each command imports only what it uses.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from . import __version__
from .derivations import CATALOGUE, names
from .errors import CheckError, DeriveError, InputError


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, raised instead of printed with usage."""

    def error(self, message):
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="derive", description="Derive the gradient of softmax cross-entropy for "
                "any number of classes K, step by step, checked, and generate NumPy code.")
    p.add_argument("--version", action="version", version=f"derive {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    for fmt, what in (("latex", "LaTeX (align* blocks)"), ("markdown", "Markdown with $$ blocks"),
                      ("text", "Unicode text for the terminal")):
        s = sub.add_parser(fmt, help=f"print derivations as {what}",
                           description=f"Print checked derivations as {what}.")
        s.add_argument("--route", choices=names(), metavar="NAME",
                       help=f"only this derivation ({', '.join(names())}); default: all")
        if fmt == "latex":
            s.add_argument("--document", action="store_true",
                           help="a standalone document that compiles with pdflatex")

    s = sub.add_parser("check", help="prove every step of the derivations",
                       description="Check every step symbolically where SymPy can and numerically "
                       "for K = 2..6; exit 1 if any step fails.")
    s.add_argument("--route", choices=names(), metavar="NAME", help="only this derivation")

    sub.add_parser("list", help="list the derivations", description="List the derivations.")

    s = sub.add_parser("eval", help="softmax, loss and gradient at given numbers",
                       description="Evaluate softmax, cross-entropy and its gradient. Give logits "
                       "(or softmax outputs with --probs) and a label or a target vector.")
    given = s.add_mutually_exclusive_group(required=True)
    given.add_argument("--logits", nargs="+", type=float, metavar="Z", help="logits z_1..z_K")
    given.add_argument("--probs", nargs="+", type=float, metavar="P",
                       help="softmax outputs q_1..q_K (non-negative, summing to 1) instead of logits")
    target = s.add_mutually_exclusive_group(required=True)
    target.add_argument("--label", type=int, metavar="C", help="true class, 0-based")
    target.add_argument("--target", nargs="+", type=float, metavar="Y",
                        help="target probabilities y_1..y_K")
    s.add_argument("--digits", type=int, default=4, help="decimals to print (default 4)")

    sub.add_parser("code", help="print the generated NumPy module",
                   description="Print the NumPy module generated from the derived results.")
    s = sub.add_parser("build", help="write every generated file to output/",
                       description="Write the renderings and the generated module to a folder.")
    s.add_argument("--output", type=Path, default=Path("output"), help="folder (default: output)")
    s.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 listing the files that are missing or stale")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except _UsageError as e:
        print(f"derive: error: {e}", file=sys.stderr)
        return 2
    except CheckError as e:
        print(f"derive: check failed: {e}", file=sys.stderr)
        return 1
    except DeriveError as e:
        print(f"derive: error: {e}", file=sys.stderr)
        return 2


def _selected(args) -> list[str]:
    return [args.route] if args.route else names()


def _render(args) -> int:
    from . import derivation
    from .render import render
    settings = {"document": True} if getattr(args, "document", False) else {}
    sys.stdout.write(render(args.command, [derivation(n) for n in _selected(args)], **settings))
    return 0


def _check(args) -> int:
    from .check import check
    from .derivations import build
    from .render.printers import text
    for name in _selected(args):
        report = check(build(name))
        print(f"{name}: {len(report.steps)} steps checked ({report.symbolic} also symbolically), "
              f"numerically at K=2..6; result = {text(report.goal)}")
    return 0


def _list(args) -> int:
    width = max(map(len, CATALOGUE))
    for name, (_, description) in CATALOGUE.items():
        print(f"{name:<{width}}  {description}")
    return 0


def _vector(values, what: str, allow_minus_inf: bool = False) -> list[float]:
    for v in values:
        if math.isnan(v) or (math.isinf(v) and not (allow_minus_inf and v < 0)):
            raise InputError(f"{what}: {v} is not allowed (must be finite"
                             f"{' or -inf' if allow_minus_inf else ''})")
    return list(values)


def _eval(args) -> int:
    import numpy as np

    from . import numpy_module
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
    if args.label is not None:
        if not 0 <= args.label < size:
            raise InputError(f"--label: {args.label} is out of range 0..{size - 1}")
        target = np.asarray(args.label)
    else:
        target = np.asarray(_vector(args.target, "--target"))
        if target.size != size:
            raise InputError(f"--target has {target.size} values but there are {size} classes")
        if target.min() < 0:
            raise InputError("--target: probabilities must not be negative")
    m = numpy_module()
    loss, grad = m.cross_entropy_with_grad(logits, target)
    fmt = lambda v: f"{v:.{args.digits}f}"  # noqa: E731
    print("softmax  ", " ".join(map(fmt, m.softmax(logits))))
    print("loss     ", fmt(float(loss)))
    print("gradient ", " ".join(map(fmt, grad)))
    return 0


def _code(args) -> int:
    from .codegen import source
    sys.stdout.write(source())
    return 0


def _build(args) -> int:
    from . import build
    if args.check:
        stale = build.stale(args.output)
        for path in stale:
            print(f"stale: {path}")
        if stale:
            print(f"{len(stale)} file(s) in {args.output} are stale; run `derive build`",
                  file=sys.stderr)
            return 1
        print(f"{args.output}: up to date")
        return 0
    for path in build.write(args.output):
        print(f"wrote {path}")
    return 0


_COMMANDS = {"latex": _render, "markdown": _render, "text": _render, "check": _check,
             "list": _list, "eval": _eval, "code": _code, "build": _build}
