"""Check a person's own working: a chain of equalities, each line against the one before.

:func:`verify` reads the working (:mod:`.lines` cuts it into lines and sides, :mod:`.read`
reads each side into the model), then checks each equality by the checker of derive's own
steps (:func:`derive.check.core.compare`): numerically at K = 2..8 with targets that satisfy
the facts assumed, derivatives by forward-mode differentiation, and symbolically where SymPy
manages.  For the first line that does not hold it finds what the line needs (a fact not
assumed), keeps the counterexample, and asks derive's strategy for its own next step from the
line before (:func:`derive.auto.next_step`).  :mod:`.report` prints the result.
"""
from __future__ import annotations

import re

from sympy import Expr, Symbol

from .. import budget
from ..errors import CheckError, DeriveError, ParseError
from .lines import blanked, split
from .read import FREE, MEANINGS, RESERVED, Notation, defined_name, side
from .report import Counterexample, LineReport, Report

ASSUMPTIONS = ("any", "probability", "one-hot")
#: A condition an author states on a line: ``\\forall i \\neq y``, ``for i = k``, ``if i != k``.
_CONDITION = re.compile(r"(?:\\forall|\bfor\b|\bif\b|\bwhen\b)\s*(?:all\s+|every\s+)?\$?\s*"
                        r"([a-z])\s*(\\neq|\\ne|\u2260|!=|=)\s*([a-z])(?![A-Za-z])")
#: How long a whole check may take by default, in seconds.
DEFAULT_SECONDS = 60.0


def _facts(assume: str):
    from ..model import ONE_HOT, PROBABILITY
    return {"any": frozenset(), "probability": frozenset({PROBABILITY}),
            "one-hot": frozenset({PROBABILITY, ONE_HOT})}[assume]  # a one-hot target sums to 1


def _notation(let, label) -> Notation:
    pairs = {}
    for item in let or ():
        name, sep, meaning = (item.partition("=") if isinstance(item, str) else
                              (item[0], "=", item[1]))
        name, meaning = name.strip(), meaning.strip()
        if not sep or not name.isascii() or not name.isalpha() or not meaning:
            raise DeriveError(f"--let takes NAME=MEANING, with a name of letters, not {item!r}")
        if name in pairs and pairs[name] != meaning:
            raise DeriveError(f"--let {name} is given twice: {name}={pairs[name]} and "
                              f"{name}={meaning}")
        if meaning not in MEANINGS:
            raise DeriveError(f"--let {name}={meaning}: the meaning must be one of the model's "
                              f"names ({', '.join(f'{k} for {v}' for k, v in MEANINGS.items())})")
        pairs[name] = meaning
    if label is not None and (not isinstance(label, str) or not label.isascii()
                              or not label.isalpha() or len(label) > 8):
        raise DeriveError(f"--label takes the name of the label, letters only, not {label!r}")
    if label is not None and (label in FREE or label in pairs
                              or label in MEANINGS and label != "y"):  # y: as the articles do
        raise DeriveError(f"--label {label}: {label} already means something (a free index, "
                          "or one of the model's names); name the label with another letter")
    return Notation(pairs, label)


def verify(text: str, *, let=(), label: str | None = None, assume: str | None = None,
           seed: int = 0, timeout: float = DEFAULT_SECONDS) -> Report:
    """Check the working ``text``, line by line, and say which line, if any, does not hold.

    ``let`` maps the author's names onto the model's (``["S=q", "Loss=E"]``); ``label`` is the
    name of the class of a one-hot target (``"y"`` for ``-\\log q_y``); ``assume`` is the fact
    about the target (``"any"``, ``"probability"``, ``"one-hot"``; by default one-hot where
    the working uses the label, else probability).  The whole check ends within ``timeout``
    seconds, or raises :class:`derive.OutOfTime`."""
    if assume is not None and assume not in ASSUMPTIONS:
        raise DeriveError(f"assume must be one of {', '.join(ASSUMPTIONS)}, not {assume!r}")
    with budget.deadline(timeout):
        from ..render import register
        register()
        notation = _notation(let, label)
        kind, lines = split(text)
        return _Chain(text, kind, lines, notation, assume, seed).run()


class _Chain:
    """The lines in order, the side each continues from, and the names defined on the way."""

    def __init__(self, text, kind, lines, notation, assume, seed):
        self.text, self.kind, self.lines, self.notation = text, kind, lines, notation
        self.assume, self.seed = assume, seed
        self.previous: Expr | None = None
        self.failed = False
        self.extra = frozenset()  # facts the working brings: a linear layer's logits

    def run(self) -> Report:
        read = self._unambiguous([self._read(line) for line in self.lines])
        if self.assume is None:
            from ..model import c
            uses_label = any(e is not None and e.has(c) for _, sides, _ in read
                             for e in (sides or ()))
            self.assume = "one-hot" if uses_label else "probability"
        from ..model import LINEAR, E_lin, W, b, x
        if any(e is not None and e.has(W, x, b, E_lin) for _, sides, _ in read
               for e in (sides or ())):  # the working's logits come from a linear layer
            self.extra = frozenset({LINEAR})
        reports = [self._check(step, line, *found)
                   for step, (line, found) in enumerate(zip(self.lines, read), start=1)]
        return Report(tuple(reports), self.assume, self.kind, self.notation.label)

    # -- reading -------------------------------------------------------------------------------
    def _read(self, line):
        """The name ``line`` defines (or None), its sides as expressions (None for the empty
        first side of a line that starts with '=', and for a name being defined), or the
        problem that stops it being read."""
        if len(line.parts) == 1:
            return None, None, (line.number, ParseError(
                "this line has no '=': write each step as '= ...' or 'left = right'"))
        head = defined_name(line.parts[0].text(self.text))
        defined = head if line.defines or self._new_name(head) else None
        if line.defines and not (head.isascii() and head.isalpha()):
            array = re.match(r"([A-Za-z]+)(?:_\{?[a-z]\}?|\[[a-z]\])\Z", head)
            hint = (f": {head} would define an array, which verify does not do; say what "
                    f"{array.group(1)} is with --let {array.group(1)}=q (or y, z)"
                    if array else "")
            return None, None, (line.number, ParseError(
                f"only a name can be defined with :=, not {head!r}{hint}"))
        sides = []
        for n, part in enumerate(line.parts):
            if n == 0 and (not head or defined):
                sides.append(None)
                continue
            source, number = blanked(self.text, part)
            try:
                sides.append(side(source, self.kind, self.notation))
            except ParseError as e:
                return None, None, (number, e)
            if n == 1 and defined:
                self.notation.defined[defined] = sides[1]
        return defined, sides, None

    def _unambiguous(self, read):
        """The lines read, where a name of the model that needs another one the working never
        uses is refused instead: p (the tempered softmax) without T, L (a batch's mean loss)
        without the batch."""
        from .. import model
        every = [e for _, sides, _ in read for e in (sides or ()) if e is not None]
        needs = []
        if not any(e.has(model.T) for e in every):
            needs.append((model.p, "p is the tempered softmax softmax(z/T) in derive's model, "
                          "and the working has no T: say what p is with --let p=y or --let p=q"))
        if not any(e.has(model.ell, model.Z, model.Y, model.Q) for e in every):
            needs.append((model.L, "L is the mean loss of a batch in derive's model, and the "
                          "working has no batch: say what L is with --let L=E, or write "
                          "L := ..."))
        out = []
        for defined, sides, problem in read:
            found = next((message for name, message in needs
                          if any(e is not None and e.has(name) for e in (sides or ()))), None)
            out.append((None, None, (self.lines[len(out)].number, ParseError(found)))
                       if found else (defined, sides, problem))
        return out

    def _new_name(self, name: str) -> bool:
        """Whether a line's left side ``name`` is a name not met before, which it defines: not
        one of the model's names, nor an index letter, nor the label."""
        from ..parse.names import INDEX_LETTERS, MODEL_RESERVED
        return (name.isascii() and name.isalpha() and name not in self.notation.defined
                and name not in self.notation.let and name not in MEANINGS
                and name not in MODEL_RESERVED and name not in RESERVED
                and name not in (*INDEX_LETTERS, *FREE) and name != self.notation.label)

    # -- checking ------------------------------------------------------------------------------
    def _check(self, step, line, defined, sides, problem) -> LineReport:
        source = " ".join(line.raw.split())
        if problem is not None:
            number, error = problem
            self.previous = None  # the next line has nothing to continue from
            return LineReport(step, number, source, "unread", str(error).splitlines()[0],
                              line.reason, column=getattr(error, "column", None))
        shown = (Symbol(defined) if defined else None, *sides[1:]) if sides[0] is None \
            else tuple(sides)
        if sides[0] is None and not defined:
            if self.previous is None and step > 1:
                return LineReport(step, line.number, source, "unchecked", "the line before "
                                  "could not be read", line.reason)
            if self.previous is None:
                return LineReport(step, line.number, source, "unread", "the first line starts "
                                  "with '=': there is nothing before it", line.reason)
            sides = [self.previous] + sides[1:]
        elif defined:
            sides = sides[1:]
        self.previous = sides[-1]
        total, symbolic = 0, True
        pairs = [self._restricted(b, a, line.reason) for b, a in zip(sides, sides[1:])]
        for n, (before, after) in enumerate(pairs):
            verdict = self._compare(before, after, f"line {step}")
            if isinstance(verdict, dict):
                return LineReport(step, line.number, source, reason=line.reason,
                                  equality=n + 1 if len(pairs) > 1 else None, shown=shown,
                                  **verdict)
            total += verdict.samples
            symbolic = symbolic and verdict.symbolic
        if not pairs:
            return LineReport(step, line.number, source, "defines", f"defines {defined}",
                              line.reason, shown=shown)
        detail = "proved symbolically" if symbolic else f"checked numerically at {total} samples"
        if defined:
            detail = f"defines {defined}; " + detail
        return LineReport(step, line.number, source, "holds", detail, line.reason,
                          symbolic=symbolic, samples=total, shown=shown)

    def _restricted(self, before, after, reason: str):
        """``before`` and ``after`` times the indicator of each condition the author's reason
        states on the line's free indices (``\\forall i \\neq y``, ``for i = k``): where a
        condition fails both are 0, so only the samples that meet it can tell them apart."""
        from sympy import KroneckerDelta

        from ..model import c, free_indices
        from ..parse.build import index_symbol
        free = free_indices(before) | free_indices(after) | {c}
        factor = 1
        for first, relation, second in _CONDITION.findall(reason or ""):
            a, b = (c if x in (self.notation.label, "c") else index_symbol(x)
                    for x in (first, second))
            if a in free and b in free and a != b:
                delta = KroneckerDelta(a, b)
                factor *= delta if relation == "=" else 1 - delta
        return (before, after) if factor == 1 else (before * factor, after * factor)

    def _compare(self, before, after, where):
        from ..check.core import Disagreement, compare
        facts = _facts(self.assume) | self.extra
        try:
            return compare(before, after, facts, where, seed=self.seed)
        except Disagreement as e:
            first_failure = not self.failed
            self.failed = True
            fact = self._needs(before, after, where)
            detail = (f"holds only if {fact[1]}, which is not assumed (--assume {fact[0]})"
                      if fact else "does not hold")
            example = hint = None
            if first_failure:
                from ..model import ONE_HOT, c, free_indices, own_symbols
                shown = free_indices(before) | free_indices(after) | (
                    {c} if ONE_HOT in facts else set())
                from ..model import PARAMETERS
                chosen = [v for v in PARAMETERS if before.has(v) or after.has(v)]
                example = Counterexample.of(e.point, e.values, shown,
                                            chosen + own_symbols(before, after)[0])
                hint = _hint(before)
            return dict(status="needs" if fact else "fails", detail=detail,
                        counterexample=example, hint=hint, fact=fact and fact[0],
                        sides=(before, after))
        except budget.OutOfTime:
            raise
        except CheckError as e:
            return dict(status="unchecked", detail=str(e).splitlines()[0].replace(
                f"{where} ", "it ", 1))

    def _needs(self, before, after, where):
        """The weakest fact not assumed under which ``before = after`` holds, as (the name
        --assume takes, its statement), or None."""
        from ..check.core import compare
        order = ASSUMPTIONS[ASSUMPTIONS.index(self.assume) + 1:]
        for stronger in order:
            try:
                compare(before, after, _facts(stronger) | self.extra, where, seed=self.seed,
                        symbolic=False)
            except CheckError:
                continue
            statement = {"probability": "y is a probability vector (its entries sum to 1)",
                         "one-hot": "y is one-hot at the label c"}[stronger]
            return stronger, statement
        return None


def _hint(before: Expr):
    """derive's own next step from ``before``: the rules' titles and what they give."""
    from ..auto import next_step
    try:
        found = next_step(before)
    except budget.OutOfTime:
        raise
    except DeriveError:
        return None
    if found is None:
        return None
    names, expr = found
    from .. import rules
    return "; ".join(dict.fromkeys(rules.get(n).title for n in names)), expr


__all__ = ["verify", "Report", "LineReport", "Counterexample", "ASSUMPTIONS"]
