"""What :func:`derive.verify.verify` found, line by line, as text, LaTeX or JSON.

A line *holds* (proved symbolically, or checked numerically at so many samples), *defines* a
name, *fails* (with a counterexample for the first such line, and derive's own next step from
the line before as a hint), *needs* a fact that was not assumed, is *unchecked* (too large to
evaluate, or not finite anywhere), or is *unread* (with the column where reading stopped).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

#: The mark of each status, in the terminal and in LaTeX.
MARKS = {"holds": ("✓", r"\checkmark"), "defines": ("✓", r"\checkmark"),
         "fails": ("✗", r"\times"), "needs": ("✗", r"\times"),
         "unchecked": ("?", "?"), "unread": ("?", "?")}
_DIGITS = 6


@dataclass(frozen=True)
class Counterexample:
    """A sample at which the two sides of a line differ: K, the logits, the target, the free
    indices and the parameters, and the value of each side there."""

    size: int
    logits: tuple[float, ...]
    target: tuple[float, ...]
    indices: tuple[tuple[str, int], ...]
    parameters: tuple[tuple[str, float], ...]
    values: tuple[float, float]

    @classmethod
    def of(cls, point, values, shown=(), parameters=()) -> "Counterexample":
        """The sample of ``point``, with the free indices ``shown`` (those the two sides
        have), and the ``parameters``."""
        from ..model import c, y, z

        def numbers(array):
            return tuple(float(np.round(v, _DIGITS)) for v in np.asarray(array)[0])
        indices = tuple((("c" if s == c else str(s)), int(np.asarray(v)[0]))
                        for s, v in sorted(point.indices.items(), key=lambda kv: str(kv[0]))
                        if s in shown)
        chosen = tuple((str(p), float(np.round(np.asarray(point.parameters[p])[0], _DIGITS)))
                       for p in parameters if p in point.parameters)
        return cls(point.size, numbers(point.arrays[z]), numbers(point.arrays[y]), indices,
                   chosen, (float(values[0]), float(values[1])))

    def text(self, label: str | None = None) -> str:
        """The sample in words; the class of a one-hot target is called ``label`` (c)."""
        where = ", ".join(f"label {label or 'c'}={value}" if name == "c" else f"{name}={value}"
                          for name, value in self.indices)
        params = ", ".join(f"{name}={value:g}" for name, value in self.parameters)
        return ", ".join(part for part in (
            f"K={self.size}", where, params, f"logits z={list(self.logits)}",
            f"target={list(self.target)}") if part)

    def as_json(self) -> dict:
        return {"K": self.size, "logits": list(self.logits), "target": list(self.target),
                "indices": dict(self.indices), "parameters": dict(self.parameters),
                "values": list(self.values)}


@dataclass(frozen=True)
class LineReport:
    """The verdict on one line of the working: ``step`` counts the lines of the working,
    ``number`` is the line of the input it starts on."""

    step: int
    number: int
    source: str
    status: str
    detail: str
    reason: str = ""
    column: int | None = None
    equality: int | None = None       # which '=' of the line, where it has several
    symbolic: bool = False
    samples: int = 0
    counterexample: Counterexample | None = None
    hint: tuple | None = None         # (the rules' titles, what they give)
    fact: str | None = None           # the assumption under which the line would hold
    sides: tuple | None = field(default=None, compare=False, repr=False)  # the two that differ
    # the line's sides as read (None first for a line that starts with '='), for LaTeX
    shown: tuple = field(default=(), compare=False, repr=False)

    @property
    def holds(self) -> bool:
        return self.status in ("holds", "defines")

    def verdict(self) -> str:
        """The verdict in words, with where in the line it applies."""
        where = f" (at the {_ordinal(self.equality)} '=')" if self.equality else ""
        return {"unread": f"could not be read: {self.detail}",  # the detail says where
                "unchecked": f"could not be checked: {self.detail}"}.get(
                    self.status, self.detail + (where if not self.holds else ""))


@dataclass(frozen=True)
class Report:
    """The verdicts on every line, the fact assumed, and the form the working was read in."""

    lines: tuple[LineReport, ...]
    assume: str
    form: str
    label: str | None = None

    @property
    def holds(self) -> bool:
        return all(line.holds for line in self.lines)

    @property
    def first_wrong(self) -> LineReport | None:
        return next((line for line in self.lines if line.status in ("fails", "needs")), None)

    @property
    def exit_status(self) -> int:
        """0 when every line holds, 1 when one does not, 2 when one could not be read."""
        if self.first_wrong is not None:
            return 1
        return 0 if self.holds else 2

    # -- formats -------------------------------------------------------------------------------
    def text(self) -> str:
        from ..render.printers import text as printed
        out = []
        for line in self.lines:
            out.append(f"{line.step:>3}  {MARKS[line.status][0]}  {line.source}"
                       f"   [input line {line.number}]")
            out.append(f"        {line.verdict()}")
            if line.reason:
                out.append(f"        the author's reason: {line.reason}")
            if line.counterexample is not None:
                example = line.counterexample
                out.append(f"        counterexample: {example.text(self.label)}")
                out.append(f"        there the side before the '=' is {example.values[0]:.12g}, "
                           f"the side after it {example.values[1]:.12g}")
            if line.hint is not None:
                out.append(f"        derive's next step from the line before "
                           f"({line.hint[0]}): = {printed(line.hint[1])}")
        held = sum(line.holds for line in self.lines)
        wrong = self.first_wrong
        summary = (f"every line holds ({held} of {len(self.lines)})" if self.holds else
                   f"line {wrong.step} (input line {wrong.number}) is the first that does not "
                   "hold" if wrong else
                   "some lines could not be read or checked")
        out.append(f"{summary}; the target is assumed {_assumed(self.assume)}")
        return "\n".join(out) + "\n"

    def as_json(self) -> list[dict]:
        from ..render.printers import text as printed
        rows = []
        for line in self.lines:
            row = {"step": line.step, "line": line.number, "status": line.status, "detail": line.detail,
                   "source": line.source}
            for name in ("reason", "column", "equality", "fact"):
                if getattr(line, name):
                    row[name] = getattr(line, name)
            if line.status == "holds":
                row["symbolic"], row["samples"] = line.symbolic, line.samples
            if line.counterexample is not None:
                row["counterexample"] = line.counterexample.as_json()
            if line.hint is not None:
                row["hint"] = {"rules": line.hint[0], "gives": printed(line.hint[1])}
            rows.append(row)
        return rows

    def json(self) -> str:
        return json.dumps({"holds": self.holds, "assume": self.assume, "form": self.form,
                           "lines": self.as_json()}, indent=2, ensure_ascii=False) + "\n"

    def latex(self) -> str:
        """A document that compiles: the author's lines, each tagged with its verdict."""
        from .latex import document
        return document(self, _assumed(self.assume))


def _ordinal(n: int) -> str:
    return {1: "first", 2: "second", 3: "third"}.get(n, f"{n}th")


def _assumed(assume: str) -> str:
    return {"any": "to be any real vector", "probability": "to be a probability vector",
            "one-hot": "one-hot at the label"}[assume]
