"""The page: the LaTeX fits a standard article, a derivation stays on one page where it fits, and
the prose around the steps sets its mathematics as mathematics."""
import dataclasses
import re
import subprocess

import pytest

from derive.cli import main
from derive.render import render
from derive.render.latex import plain, prose
from latex_tools import pdflatex_or_skip
from test_render import step_rows

BARE_ARTICLE = "\\documentclass{article}\n\\usepackage{amsmath}\n\\usepackage{amssymb}\n" \
               "\\begin{document}\n%s\n\\end{document}\n"


def _compile(tmp_path, source: str, name: str = "page") -> str:
    """Compile ``source`` with pdflatex; the log, once it is known to hold no error."""
    pdflatex = pdflatex_or_skip()
    (tmp_path / f"{name}.tex").write_text(source, encoding="utf-8")
    done = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    log = (tmp_path / f"{name}.log").read_text(errors="replace")
    assert done.returncode == 0, log[-3000:]
    assert "! " not in log and "Undefined control sequence" not in log, log[-3000:]
    return log


def _overfull(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("Overfull")]


def _cli(capsys, *args) -> str:
    capsys.readouterr()
    assert main(["--quiet", *args]) == 0
    return capsys.readouterr().out


# -- what `derive latex` prints fits a standard article ---------------------------------------

def test_latex_blocks_fit_a_bare_article(reports, capsys, tmp_path):
    blocks = _cli(capsys, "latex")
    log = _compile(tmp_path, BARE_ARTICLE % blocks)
    assert [line for line in _overfull(log) if "hbox" in line] == []


def test_document_fits_the_article_width(reports, capsys, tmp_path):
    document = _cli(capsys, "latex", "--document")
    assert r"\documentclass[10pt]{article}" in document
    for change in (r"\textwidth", r"\addtolength", r"\setlength", "geometry"):
        assert change not in document  # the class's own width and margins
    packages = [line for line in document.splitlines() if line.startswith(r"\usepackage")]
    assert packages == [r"\usepackage{amsmath}", r"\usepackage{amssymb}"]
    log = _compile(tmp_path, document)
    assert _overfull(log) == []
    assert "Underfull" not in log


# -- the shape of a block ----------------------------------------------------------------------

def test_each_step_has_its_rule_as_a_tag_at_the_right_margin(derivations):
    for d in derivations.values():
        body = render("latex", [d])
        rows = step_rows(body)
        assert len(rows) == len(d.steps)
        assert all(row.count(r"\tag*{\small\quad ") == 1 for row in rows)
        assert "&&" not in body  # no column of rules to widen the block


def test_page_breaks_only_between_steps_and_never_after_the_first_or_before_the_last(derivations):
    for d in derivations.values():
        rows = step_rows(render("latex", [d]))
        steps = len(d.steps)
        for row in rows:  # a step broken over several lines does not break across pages
            assert all(line.endswith("\\\\*") for line in row.split("\n")[:-1])
        assert [row[-3:] for row in rows[:steps - 1]] == [
            "\\\\*" if n in (0, steps - 2) else " \\\\" for n in range(steps - 1)]


def test_markdown_keeps_the_rule_beside_the_step(derivations):
    # MathJax and KaTeX allow no \tag inside aligned
    out = render("markdown", [derivations["chain"]])
    assert r"\tag" not in out and out.count("&&") == len(derivations["chain"].steps)


def test_a_subscript_that_is_a_word_is_upright(derivations):
    out = render("latex", [derivations["linear-layer"]])
    assert r"E_{\mathrm{lin}}" in out and "E_{lin}" not in out
    assert "E_{w}" in render("latex", [derivations["class-weights"]])  # a variable stays italic


# -- each derivation on one page where it fits --------------------------------------------------

_LABEL = re.compile(r"\\newlabel\{([^}]*)\}\{\{.*\}\{(\d+)\}\}\s*$")


def _labelled(document: str) -> str:
    """``document`` with labels that record the page of each derivation's heading (a-NAME)
    and of each of its steps (r-NAME-N, from 0)."""
    out, name, step = [], None, 0
    for line in document.split("\n"):
        if re.fullmatch(r"% [a-z0-9-]+", line):
            name, step = line[2:], 0
        elif line.startswith(r"\derivation{"):
            line = r"\derivation{\label{a-%s}" % name + line[len(r"\derivation{"):]
        elif r"\tag*{" in line:  # amsmath takes one label a line
            line, step = r"\label{r-%s-%d}" % (name, step) + line, step + 1
        out.append(line)
    return "\n".join(out)


def _pages(tmp_path, document: str) -> dict[str, int]:
    log = _compile(tmp_path, _labelled(document))
    assert _overfull(log) == []
    aux = (tmp_path / "page.aux").read_text()
    return {m[1]: int(m[2]) for m in map(_LABEL.match, aux.splitlines()) if m}


def _heights(tmp_path, document: str) -> tuple[dict[str, float], float]:
    """The height of each derivation (heading, description and steps) in points, and the
    height of the text of a page; the heading's space above, which a page drops, counts."""
    preamble, body = document.split("\\begin{document}\n")
    blocks = re.split(r"^% ([a-z0-9-]+)$", body.split("\n\\end{document}")[0], flags=re.M)[1:]
    measure = "".join(
        "\\setbox0=\\vbox{\\hsize=\\textwidth \\linewidth=\\textwidth %s}\n"
        "\\typeout{HEIGHT %s \\the\\dimexpr\\ht0+\\dp0\\relax}\n" % (block, name)
        for name, block in zip(blocks[::2], blocks[1::2]))
    log = _compile(tmp_path, preamble + "\\begin{document}\n\\typeout{HEIGHT page "
                   "\\the\\textheight}\n" + measure + "\\end{document}\n", "heights")
    heights = {m[1]: float(m[2]) for m in re.finditer(r"^HEIGHT (\S+) ([\d.]+)pt$", log, re.M)}
    return heights, heights.pop("page")


def test_each_derivation_on_one_page_where_it_fits(derivations, tmp_path):
    document = render("latex", derivations.values(), document=True)
    pages = _pages(tmp_path, document)
    heights, page = _heights(tmp_path, document)
    assert set(heights) == set(derivations)
    previous_end = 0
    for name in derivations:
        steps = len(derivations[name].steps)
        start, first, end = (pages[label] for label in
                             (f"a-{name}", f"r-{name}-0", f"r-{name}-{steps - 1}"))
        assert start == first, f"{name}: its heading is alone at the foot of page {start}"
        if heights[name] <= page:
            assert start == end, f"{name} fits a page but is on pages {start}-{end}"
        else:  # taller than a page: it starts a page of its own
            assert start > previous_end, f"{name} starts on page {start} after another"
        previous_end = end
    assert len(set(pages[f"a-{name}"] for name in derivations)) < len(derivations)  # pages shared


def test_a_derivation_taller_than_a_page_breaks_between_steps(derivations, tmp_path):
    chain = derivations["chain"]
    tall = dataclasses.replace(chain, name="tall", steps=chain.steps * 5)
    document = render("latex", [derivations["shift-invariance"], tall], document=True)
    pages = _pages(tmp_path, document)
    rows = [pages[f"r-tall-{n}"] for n in range(len(tall.steps))]
    assert rows == sorted(rows) and rows[-1] > rows[0]
    assert rows[0] == rows[1] and rows[-2] == rows[-1]  # no step alone on a page
    shift = len(derivations["shift-invariance"].steps)
    assert pages["a-tall"] > pages[f"r-shift-invariance-{shift - 1}"]  # a page of its own


# -- mathematics in the prose -------------------------------------------------------------------

@pytest.mark.parametrize("source, tex, txt", [
    ("a linear layer $z = W x + b$;", "a linear layer $z = W x + b$;",
     "a linear layer z = W x + b;"),
    (r"with $\log(1 + e^{u})$, which", r"with $\log(1 + e^{u})$, which",
     "with log(1 + e^u), which"),
    (r"at class $c$ by $\epsilon$", r"at class $c$ by $\epsilon$", "at class c by ε"),
    (r"$E_{\mathrm{lin}}$ and $\textstyle\sum_i y_i = 1$",
     r"$E_{\mathrm{lin}}$ and $\textstyle\sum_i y_i = 1$", "E_lin and Σ_i y_i = 1"),
    ("log(1 + e^u), 50% & a_b {x}", r"log(1 + e\^{}u), 50\% \& a\_b \{x\}",
     "log(1 + e^u), 50% & a_b {x}"),
    (r"costs \$5 or a lone $ sign", r"costs \$5 or a lone \$ sign", "costs $5 or a lone $ sign"),
    (r"$a\,b \cdot c$", r"$a\,b \cdot c$", "a b · c"),
    ("ε-smoothing, softmax(z − a)", r"$\epsilon$-smoothing, softmax(z $-$ a)",
     "ε-smoothing, softmax(z − a)"),
])
def test_prose(source, tex, txt):
    assert prose(source) == tex
    assert plain(source) == txt


def test_document_sets_the_mathematics_of_titles_and_descriptions(derivations, tmp_path):
    d = dataclasses.replace(derivations["temperature"], title="Gradient at temperature $T$",
                            description=r"Divide the logits by $T$; 100% of $\log(1 + e^u)$ & so.")
    document = render("latex", [d], document=True)
    assert "\\derivation{Gradient at temperature $T$}\n" in document
    assert r"Divide the logits by $T$; 100\% of $\log(1 + e^u)$ \& so." in document
    assert render("latex", [d]).startswith("% Gradient at temperature T (temperature)\n")
    _compile(tmp_path, document)
