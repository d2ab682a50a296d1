"""The ``derive`` command's commands: each reads its arguments and writes its output whole."""
from __future__ import annotations

import math
from pathlib import Path

from ..derivations import CATALOGUE, names
from ..errors import CheckError, InputError
from .parser import _UsageError
from .output import _print, _deliver, _writable, _say, _status, _watch


def _own_derivation(args, assume: str | None = None, loss=None):
    """The checked derivation of the loss given with --loss (``loss``, when already parsed)
    and the checker's report on it."""
    if getattr(args, "route", None):
        raise _UsageError("give either --route or --loss, not both")
    import derive
    from ..model import c
    loss = derive.parse(args.loss) if loss is None else loss
    assume = assume or args.assume
    if assume not in (None, "one-hot") and loss.has(c):
        raise _UsageError("the loss uses the class c of a one-hot target: give --assume one-hot")
    _status().show("your loss", 1, 1)
    return derive._checked_gradient(loss, assume, getattr(args, "name", None), args.timeout)


def _without_loss(args) -> None:
    """--name, --assume, --param and --array only make sense with --loss."""
    if getattr(args, "loss", None) is not None or args.command == "verify":
        return
    given = [option for option, attribute in (("--name", "name"), ("--assume", "assume"),
                                              ("--param", "param"), ("--array", "array"))
             if getattr(args, attribute, None)]
    if given:
        raise _UsageError(f"{' and '.join(given)} go{'es' if len(given) == 1 else ''} with --loss")


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
    from ..render import render
    if args.loss is not None:
        _deliver(render(args.command, [_own_derivation(args)[0]], **settings), args.output)
        return 0
    routes = _selected(args)
    _watch(routes)
    from .. import derivation
    _deliver(render(args.command, [derivation(n) for n in routes], **settings), args.output)
    return 0


def _check(args) -> int:
    if args.loss is not None:
        d, report = _own_derivation(args)
        from ..check.core import SIZES
        proved = ("step " if len(report.proved) == 1 else "steps ") + \
            (", ".join(map(str, report.proved)) or "none")
        from ..render.printers import text
        from ..rules.tidy import cost
        _print(f"{d.name}: {len(report.steps)} steps, {report.samples:,} samples at "
               f"K={SIZES[0]}..{SIZES[-1]}; proved symbolically: {proved}; "
               f"result = {text(d.result)} (cost {cost(d.result)})\n")
        return 0
    routes = _selected(args)
    _watch(routes)
    from ..check import check
    from ..check.core import SIZES
    from ..derivations import build
    from ..render.printers import text
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

    from ..codegen import load_module
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
    """Loss and gradient of --loss at the numbers given, from the generated module of its
    checked derivation: the stable code, so logits of any size and -inf masks are fine.  The
    values are checked against their domains first (:mod:`derive.domains`)."""
    import numpy as np

    import derive
    from .. import budget
    from ..codegen import own
    from ..model import c, needs_positive_target, y
    from ..parse.names import ALIASES
    values, options = {}, {}
    for option, items, read in (("--param", args.param, float),
                                ("--array", args.array,
                                 lambda text: [float(v) for v in text.split(",")])):
        for item in items:
            name, _, numbers = item.partition("=")
            name = ALIASES.get(name.strip(), name.strip())
            if name in values:
                raise _UsageError(f"{option} {name}: given more than once")
            try:
                values[name], options[name] = read(numbers), option
            except ValueError:
                form = "NAME=NUMBER" if option == "--param" else "NAME=V1,V2,... with numbers"
                raise InputError(f"{option} {item!r}: give {form}") from None
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
    with budget.deadline(args.timeout):
        d = _own_derivation(args, assume="one-hot" if one_hot else "any", loss=loss)[0]
        s = own.spec(d)
        _check_values(s, values, options, logits.size)
        module = own.load(s)
    with np.errstate(all="ignore"):  # a masked class may give 0 · log 0 on the way
        value, grad = module.loss_with_grad(logits, np.zeros(logits.size) if target is None
                                            else target, **values)
    fmt = _formatter(args.digits)
    _print(f"loss      {fmt(value)}\ngradient  {' '.join(map(fmt, grad))}\n")
    return 0


def _check_values(s, values: dict, options: dict, classes: int) -> None:
    """The values given with --param and --array, against the loss's: each one given, with
    the right option and number of entries, and in its domain (the module checks the same)."""
    import numpy as np

    from .. import domains
    scalars = [v.name for v in s.scalars]
    arrays = [b.label.name for b in s.arrays]
    for name in values:
        if name not in scalars + arrays:
            takes = ", ".join(scalars + arrays) or "no values"
            raise InputError(f"{options[name]} {name}: the loss has no value {name!r} "
                             f"(it takes {takes})")
    missing = [name for name in scalars + arrays if name not in values]
    if missing:
        give = ", ".join(f"--param {n}=NUMBER" if n in scalars else f"--array {n}=V1,V2,..."
                         for n in missing)
        raise InputError(f"the loss needs a value for {', '.join(missing)}: give {give}")
    for name, domain in zip(scalars + arrays, s.domains):
        if (name in arrays) != (options[name] == "--array"):
            kind, right = (("a per-class array", "--array") if name in arrays
                           else ("a scalar parameter", "--param"))
            raise InputError(f"{options[name]} {name}: {name} is {kind} of the loss; give it "
                             f"with {right}")
        if name in scalars:
            domains.check(name, values[name], domain)
            continue
        if len(values[name]) != classes:
            raise InputError(f"--array {name}: {len(values[name])} values but there are "
                             f"{classes} classes")
        for entry in values[name]:
            domains.check(name, entry, domain, entry=True)
        values[name] = np.asarray(values[name])


def _code(args) -> int:
    _writable(args.output)
    from ..codegen.backends import get
    backend = get(args.backend)
    if args.loss is not None:
        _deliver(_own_source(args, backend), args.output)
        return 0
    _watch(None)
    from ..codegen import source
    _deliver(source(backend=backend), args.output)
    return 0


def _own_source(args, backend) -> str:
    """The generated module of --loss for ``backend``, named by --name, checked."""
    from ..codegen import own as lossmodule
    from ..codegen.backends import require
    lossmodule.module_name(args.name)
    require(backend.NAME)  # before deriving: the check of the module needs the library
    return lossmodule.checked_source(lossmodule.spec(_own_derivation(args)[0], args.name),
                                     backend)


def _build(args) -> int:
    if args.loss is not None:
        return _build_own(args)
    _watch(None)
    from .. import build
    backends = build.BACKENDS if args.backend is None else (args.backend,)
    if args.check:
        return _check_files(args.output, build.stale(args.output, backends=backends),
                            "derive build")
    created = build.make_folder(args.output, create=False)  # refuse a bad folder before checking
    return _wrote(args.output, created, build.write(args.output, backends))


def _build_own(args) -> int:
    """NAME.py, NAME.tex and NAME.md of --loss in the folder --output."""
    from .. import build
    from ..codegen import own as lossmodule
    from ..codegen.backends import get, require
    from ..render import render
    name = lossmodule.module_name(args.name)
    backend = get(args.backend or "numpy")
    require(backend.NAME)
    d = _own_derivation(args)[0]
    files = {f"{name}.py": lossmodule.checked_source(lossmodule.spec(d, name), backend),
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


def _verify(args) -> int:
    _writable(args.output)
    if args.output is not None and args.file != "-" and Path(args.file).exists() and \
            Path(args.output).resolve() == Path(args.file).resolve():
        raise InputError(f"--output {args.output} is the working itself: write the report "
                         "elsewhere")
    from ..verify import verify
    from ..verify.lines import MAX_CHARACTERS
    text = _read_working(args.file, MAX_CHARACTERS)
    report = verify(text, let=args.let, label=args.label, assume=args.assume,
                    timeout=args.timeout)
    _deliver({"text": report.text, "latex": report.latex, "json": report.json}[args.format](),
             args.output)
    return report.exit_status


def _read_working(name: str, limit: int) -> str:
    """The text of the file ``name`` (or of standard input for -), UTF-8 (a byte-order mark
    left out), at most ``limit`` characters."""
    import sys
    try:
        if name == "-" and not hasattr(sys.stdin, "buffer"):  # a text stream put in its place
            data = sys.stdin.read(limit + 1).encode("utf-8", "surrogateescape")
        elif name == "-":
            data = sys.stdin.buffer.read(4 * limit + 4)
        else:
            with open(name, "rb") as f:
                data = f.read(4 * limit + 4)
        text = data.decode("utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a folder, not a file") from None
    except UnicodeDecodeError:
        raise InputError(f"{'standard input' if name == '-' else name}: not UTF-8 text") from None
    except OSError as e:
        raise InputError(f"{name}: cannot be read ({e.strerror or e})") from None
    if len(text) > limit:
        raise InputError(f"{name}: the working is too long: more than {limit} characters")
    return text


_COMMANDS = {"latex": _render, "markdown": _render, "text": _render, "check": _check,
             "list": _list, "eval": _eval, "code": _code, "build": _build, "verify": _verify}
