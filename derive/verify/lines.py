"""A person's derivation cut into lines, and each line into the sides of its equalities.

LaTeX is read as people write it: the lines of ``align*``, ``aligned``, ``split``,
``eqnarray``, ``equation``, ``gather``, of ``$$ ... $$``, ``\\[ ... \\]`` and ``$ ... $``,
separated by ``\\\\``, with ``&`` for alignment.  Prose outside the mathematics is left out.  An
annotation (``\\tag{...}``, ``\\intertext{...}``, ``\\text{...}`` to the end of its line, with the
spacing before it, and ``\\forall ...``) is kept as the author's reason and is not read as
mathematics.  The text form is one line of the input a line, with ``# ...`` as the reason.

Nothing is removed from the text: what is not read is blanked out, so that every offset, and
so every line and column in a message, is the input's own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ParseError

#: The longest working that is read, and the most lines.
MAX_CHARACTERS = 200_000
MAX_LINES = 400

_ENVIRONMENTS = r"align\*?|aligned|alignat\*?|split|eqnarray\*?|equation\*?|gather\*?|gathered|multline\*?"
_OPEN = re.compile(r"\$\$|(?<!\\)\\\[|\\begin\{(?:%s)\}(?:\{\d+\})?|\$" % _ENVIRONMENTS)
_CLOSE = {"$$": re.compile(r"\$\$"), "\\[": re.compile(r"(?<!\\)\\\]"), "$": re.compile(r"(?<!\\)\$")}
_INNER = re.compile(r"\\(?:begin|end)\{(?:%s)\}(?:\{\d+\})?|\\begingroup|\\endgroup|"
                    r"\\allowdisplaybreaks(?:\[\d\])?|\\nonumber|\\notag|\\label\{[^{}]*\}|"
                    r"\\displaystyle|\\textstyle" % _ENVIRONMENTS)
_BREAK = re.compile(r"\\\\\*?(?:\[[^\]]*\])?")
_TAG = re.compile(r"\\tag\*?\{")
_INTERTEXT = re.compile(r"\\intertext\{|\\shortintertext\{")
_ANNOTATION = re.compile(r"(?:(?:\\q?quad|\\[,;:! ]|\s)*)(?:\\(?:text|textrm|textit|textbf|mbox|"
                         r"mathrm\{\s*(?:for|from|since|by|where|if)\b)|\\forall(?![A-Za-z]))")
_SPACING = re.compile(r"\\q?quad(?![A-Za-z])|\\[,;:! ]")
_TEXT = re.compile(r"\\(?:text|textrm|textit|textbf|mbox)\s*\{([^{}]*)\}")


@dataclass(frozen=True)
class Part:
    """A side of an equality: segments ``(start, end)`` of the input."""

    segments: tuple[tuple[int, int], ...]

    def text(self, source: str) -> str:
        return " ".join(source[a:b].strip() for a, b in self.segments).strip()


@dataclass(frozen=True)
class Line:
    """One line of the working: its number in the input, its sides in order (the first empty
    where the line starts with ``=``), whether its first ``=`` is a definition (``:=``), and
    the author's reason, if any."""

    number: int
    start: int
    end: int
    parts: tuple[Part, ...]
    defines: bool
    reason: str
    raw: str = ""          # the line as written, its annotation included, without a \\tag


def split(text: str) -> tuple[str, list[Line]]:
    """The form of ``text`` ("latex" or "text") and its lines."""
    if not isinstance(text, str):
        raise ParseError(f"working is text, not {type(text).__name__}")
    if len(text) > MAX_CHARACTERS:
        raise ParseError(f"the working is too long: {len(text)} characters, at most "
                         f"{MAX_CHARACTERS}")
    from ..parse import form
    kind = "printed" if _is_printed(text) else form(text)
    lines = {"latex": _latex_lines, "text": _text_lines, "printed": _printed_lines}[kind](text)
    lines = [line for line in lines if line.parts]
    if not lines:
        raise ParseError("there is no equation to check: write one line a step, each with '='")
    if len(lines) > MAX_LINES:
        raise ParseError(f"too many lines: {len(lines)}, at most {MAX_LINES}")
    return kind, lines


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def blanked(text: str, part: Part) -> tuple[str, int]:
    """The input line of ``part`` up to its end, everything outside its segments blanked (so
    that a parser's column is the input's), and the number of that line."""
    first = part.segments[0][0]
    start = text.rfind("\n", 0, first) + 1
    end = part.segments[-1][1]
    keep = bytearray(b"\x00" * (end - start))
    for a, b in part.segments:
        keep[a - start:b - start] = b"\x01" * (b - a)
    shown = "".join(ch if keep[n] or ch == "\n" else " " for n, ch in enumerate(text[start:end]))
    return shown, line_of(text, start)


# -- LaTeX ---------------------------------------------------------------------------------------

def _math_regions(text: str) -> list[tuple[int, int]]:
    """The spans of ``text`` inside math delimiters; the whole text where it has none."""
    regions, pos = [], 0
    while True:
        match = _OPEN.search(text, pos)
        if match is None:
            break
        opener = match.group()
        if opener.startswith("\\begin"):
            name = opener[len("\\begin{"):opener.index("}")]
            closer = re.compile(re.escape("\\end{%s}" % name))
        else:
            closer = _CLOSE[opener]
        end = closer.search(text, match.end())
        if end is None:
            raise ParseError(f"{opener} at line {line_of(text, match.start())} is never closed")
        regions.append((match.end(), end.start()))
        pos = end.end()
    return regions or [(0, len(text))]


def _matching(text: str, open_brace: int) -> int:
    """The offset just past the brace that closes the one at ``open_brace``."""
    level = 0
    for pos in range(open_brace, len(text)):
        if text[pos] == "{" and text[pos - 1] != "\\":
            level += 1
        elif text[pos] == "}" and text[pos - 1] != "\\":
            level -= 1
            if level == 0:
                return pos + 1
    raise ParseError(f"a brace at line {line_of(text, open_brace)} is never closed")


def _latex_lines(text: str) -> list[Line]:
    mask = bytearray(len(text))  # 1 where a character is read as mathematics
    regions = _math_regions(text)
    for a, b in regions:
        mask[a:b] = b"\x01" * (b - a)
    for match in re.finditer(r"(?<!\\)%[^\n]*", text):  # comments
        mask[match.start():match.end()] = bytes(match.end() - match.start())
    for match in _INNER.finditer(text):
        mask[match.start():match.end()] = bytes(match.end() - match.start())
    lines, reasons = [], {}
    for match in _INTERTEXT.finditer(text):  # a reason for the line after it
        close = _matching(text, match.end() - 1)
        mask[match.start():close] = bytes(close - match.start())
        reasons[close] = text[match.end():close - 1].strip()
    depth, level = bytearray(len(text)), 0  # 1 inside braces, where \\\\ is not a line break
    for pos, ch in enumerate(text):
        if ch in "{}" and mask[pos] and text[pos - 1:pos] != "\\":
            level = max(0, level + (1 if ch == "{" else -1))
        depth[pos] = level > 0
    cuts = [m for m in _BREAK.finditer(text) if mask[m.start()] and not depth[m.start()]]
    for m in cuts:
        mask[m.start():m.end()] = bytes(m.end() - m.start())
    bounds = sorted({0, len(text), *(m.end() for m in cuts), *reasons,
                     *(b for _, b in regions)})
    pending = ""
    for a, b in zip(bounds, bounds[1:]):
        pending = reasons.get(a, pending)
        line = _latex_line(text, mask, a, b, pending)
        if line is None:
            continue
        pending = ""
        if lines and line.parts and not line.defines and _continues(text, lines[-1], line):
            last = lines[-1]
            joined = Part(last.parts[-1].segments + line.parts[0].segments)
            line = Line(last.number, last.start, line.end, last.parts[:-1] + (joined,),
                        last.defines, "; ".join(r for r in (last.reason, line.reason) if r),
                        f"{last.raw} {line.raw}")
            lines[-1] = line
            continue
        lines.append(line)
    return lines


def _annotation(text: str, mask, a: int, b: int) -> str:
    """The author's annotation from ``a`` to ``b`` as a reason: what is still read there, with
    the spacing before it left out and ``\\text{...}`` unwrapped."""
    kept = "".join(text[p] for p in range(a, b) if mask[p])
    kept = _SPACING.sub(" ", kept)
    kept = _TEXT.sub(lambda m: " " + m.group(1) + " ", kept)
    return " ".join(kept.split())


def _continues(text: str, previous: Line, line: Line) -> bool:
    """Whether ``line`` goes on with the last side of ``previous``: it has no '=' of its own
    (a step too long for one line, broken after \\\\)."""
    return len(line.parts) == 1


def _latex_line(text: str, mask: bytearray, a: int, b: int, pending: str) -> Line | None:
    reasons = [pending] if pending else []
    written = [p for p in range(a, b) if mask[p] and not text[p].isspace()]
    tags = []
    for match in _TAG.finditer(text, a, b):
        if not mask[match.start()]:
            continue
        close = _matching(text, match.end() - 1)
        reasons.append(text[match.end():close - 1].strip())
        mask[match.start():close] = bytes(close - match.start())
        tags.append((match.start(), close))
    depth = 0
    for pos in range(a, b):  # an annotation runs to the end of the line
        if not mask[pos]:
            continue
        ch = text[pos]
        if ch == "{" and text[pos - 1:pos] != "\\":
            depth += 1
        elif ch == "}" and text[pos - 1:pos] != "\\":
            depth -= 1
        elif depth == 0:
            match = _ANNOTATION.match(text, pos, b)
            if match is not None:
                reasons.append(_annotation(text, mask, pos, b))
                mask[pos:b] = bytes(b - pos)
                break
    for pos in range(a, b):
        if mask[pos] and text[pos] == "&":
            mask[pos] = 0
    start = next((p for p in range(a, b) if mask[p] and not text[p].isspace()), None)
    if start is None:
        return None
    end = max(p for p in range(a, b) if mask[p] and not text[p].isspace()) + 1
    while end > start and text[end - 1] in ",." and mask[end - 1] and \
            text[end - 2:end - 1] != "\\":  # a sentence's full stop, not the spacing \\,
        end -= 1
    parts, defines = _sides(text, mask, start, end)
    raw, at = [], written[0]
    for tag_start, tag_end in tags + [(written[-1] + 1, written[-1] + 1)]:
        raw.append(text[at:max(at, tag_start)])
        at = max(at, tag_end)
    return Line(line_of(text, start), start, end, parts, defines, "; ".join(reasons),
                "".join(raw).strip())


def _sides(text: str, mask, start: int, end: int) -> tuple[tuple[Part, ...], bool]:
    """The sides of the equalities from ``start`` to ``end``: split at each '=' outside
    brackets (``:=`` at the first defines)."""
    cuts, depth, pos, defines = [], 0, start, False
    while pos < end:
        ch = text[pos]
        if not mask[pos]:
            pos += 1
            continue
        if ch in "{([" and text[pos - 1:pos] != "\\":
            depth += 1
        elif ch in "})]" and text[pos - 1:pos] != "\\":
            depth = max(0, depth - 1)
        elif text.startswith("\\left", pos) or text.startswith("\\right", pos):
            pos += 5 if text.startswith("\\left", pos) else 6
            continue
        elif depth == 0 and ch == "=" and not (pos and text[pos - 1] in "<>!=") and \
                text[pos + 1:pos + 2] != "=":
            if text[pos - 1:pos] == ":":  # :=
                defines = defines or not cuts
                cuts.append((pos - 1, pos + 1))
            else:
                cuts.append((pos, pos + 1))
        elif depth == 0 and text.startswith("\\coloneqq", pos):
            defines = defines or not cuts
            cuts.append((pos, pos + len("\\coloneqq")))
        pos += 1
    if not cuts:
        return (_part(text, mask, start, end),), False
    edges = [start] + [x for cut in cuts for x in cut] + [end]
    parts = tuple(_part(text, mask, edges[n], edges[n + 1]) for n in range(0, len(edges), 2))
    return parts, defines


def _part(text: str, mask, a: int, b: int) -> Part:
    segments, run = [], None
    for pos in range(a, b):
        if mask[pos]:
            run = (run[0], pos + 1) if run else (pos, pos + 1)
        elif run:
            segments.append(run)
            run = None
    if run:
        segments.append(run)
    return Part(tuple(segments) or ((a, a),))


# -- the text form -------------------------------------------------------------------------------

def _text_lines(text: str) -> list[Line]:
    lines, offset = [], 0
    for raw in text.split("\n"):
        start, body, reason = offset, raw, ""
        offset += len(raw) + 1
        if "#" in body:
            body, _, reason = body.partition("#")
            reason = reason.strip()
        if not body.strip():
            continue
        mask = bytearray(b"\x01" * len(body))
        parts, defines = _sides(text, _Shifted(mask, start), start, start + len(body.rstrip()))
        lines.append(Line(line_of(text, start), start, start + len(body), parts, defines, reason,
                          body.strip()))
    return lines


class _Shifted:
    """A mask of one line, indexed by offsets of the whole text."""

    def __init__(self, mask: bytearray, start: int):
        self.mask, self.start = mask, start

    def __getitem__(self, pos: int) -> int:
        return self.mask[pos - self.start]


# -- what derive's text renderer prints ------------------------------------------------------------

_NUMBERED = re.compile(r"[ \t]*\d+\.[ \t]+")
_BECAUSE = re.compile(r"[ \t]*\u21b3[ \t]*")


def _is_printed(text: str) -> bool:
    """Whether ``text`` is what ``derive text`` prints: numbered steps in Unicode (a reason
    under a step may hold LaTeX of its own)."""
    steps = [line for line in text.split("\n") if _NUMBERED.match(line)]
    return bool(steps) and any(not line.isascii() for line in steps) and not any(
        mark in line for line in steps for mark in ("$", "\\[", "\\begin", "&"))


def _printed_lines(text: str) -> list[Line]:
    """The numbered steps of ``derive text`` (``  3.   = …``), each with the reason on the
    ``↳`` line under it; the title and description lines are left out."""
    lines, offset = [], 0
    for raw in text.split("\n"):
        start = offset
        offset += len(raw) + 1
        because = _BECAUSE.match(raw)
        if because and lines:
            last = lines[-1]
            reason = raw[because.end():].strip()
            lines[-1] = Line(last.number, last.start, last.end, last.parts, last.defines,
                             "; ".join(r for r in (last.reason, reason) if r), last.raw)
            continue
        numbered = _NUMBERED.match(raw)
        if numbered is None or not raw[numbered.end():].strip():
            continue
        body_start = start + numbered.end()
        body = raw[numbered.end():].rstrip()
        mask = bytearray(b"\x01" * len(body))
        parts, defines = _sides(text, _Shifted(mask, body_start), body_start,
                                body_start + len(body))
        lines.append(Line(line_of(text, start), body_start, body_start + len(body), parts,
                          defines, "", body.strip()))
    return lines
