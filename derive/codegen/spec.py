"""One path for every generated module: a :class:`ModuleSpec` says what a module is, as data
and small functions, and :func:`generate` makes its source for a backend.

The catalogue's module (:mod:`.catalogue`) and a user's own loss (:mod:`.own`) differ only in
their specs: which public functions (the backend's templates, with their declared holes),
what lowers each hole, which derivation steps the header cites, and the header itself.
"""
from __future__ import annotations

import hashlib
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable

from ..records import Derivation
from . import scaffold
from .lower import CITED


def checked(name: str) -> Derivation:
    """The derivation ``name``, checked (on first use) by the checker."""
    from ..check import checked as check
    return check(name)


@dataclass
class Made:
    """What the lowering of a module's holes made: the rewrites it applied, the functions its
    lines call, the names they read, and the formulas it used (by key)."""

    rewrites: set[str] = field(default_factory=set)
    calls: set[str] = field(default_factory=set)
    reads: set[str] = field(default_factory=set)
    formulas: set[str] = field(default_factory=set)
    digest: str = ""  # of the module's code, below its header: a name for what it computes

    def add(self, program) -> list[str]:
        """Record a lowered program; its lines."""
        self.rewrites |= program.rewrites
        self.calls |= program.calls
        self.reads |= program.reads
        return program.lines


@dataclass(frozen=True)
class ModuleSpec:
    """A generated module.

    ``functions``: ``(name, template, holes)`` of each public function, in the module's order;
    ``lower(function, hole, made)``: what fills a hole, lowered (recording into ``made``);
    ``arrange(function, hole, lowered, made)``: its lines, once every hole is lowered;
    ``cite(made)``: the header's lines saying where each formula comes from;
    ``header(sources, made)``: the module's header, with those lines and the rewrites' lines;
    ``derivation``: a derivation by name (checked), for the steps that prove the rewrites.
    """

    functions: tuple[tuple[str, Callable, tuple[str, ...]], ...]
    lower: Callable[[str, str, Made], Any]
    cite: Callable[[Made], list[str]]
    header: Callable[[str, Made], str]
    derivation: Callable[[str], Derivation]
    arrange: Callable[[str, str, Any, Made], list[str]] = lambda f, h, lowered, made: lowered


def generate(spec: ModuleSpec, backend) -> str:
    """The source of the module ``spec`` for ``backend``: the same bytes on every run."""
    made = Made()
    lowered = {(name, hole): spec.lower(name, hole, made)
               for name, _, holes in spec.functions for hole in holes}
    functions = ["\n\n" + scaffold.fill(template, holes, {
        hole: spec.arrange(name, hole, lowered[name, hole], made) for hole in holes})
        for name, template, holes in spec.functions]
    lines = spec.cite(made)
    for rw in CITED:
        if rw.name in made.rewrites:
            step = rw.step(spec.derivation)
            where = f" ({step[0]}, step {step[1]})" if step else ""
            lines.append(f"  {rw.name}: {rw.why}{where}")
    sources = "\n".join(textwrap.fill(line, 95, subsequent_indent="      ",
                                      break_long_words=False, break_on_hyphens=False)
                        for line in lines)
    runtime = backend.runtime(made.calls | scaffold.names("".join(functions)))
    made.digest = hashlib.sha256((runtime + "".join(functions)).encode("utf-8")).hexdigest()
    return spec.header(sources, made) + runtime + "".join(functions)
