"""derive verify: a person's own working, every line checked, the first wrong one shown."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derive import DeriveError
from derive.check.numeric import Point, evaluate
from derive.cli import main
from derive.model import c, y, z
from derive.verify import verify

SEED = Path(__file__).resolve().parents[1].parent / "shared" / "seeds" / "000_62309e1a65c3efe3.txt"


def _article() -> str:
    """The first article's two blocks: the definition line, and the split block."""
    lines = SEED.read_text(encoding="utf-8").splitlines()
    definition = next(line for line in lines if line.startswith("$$Loss = "))
    block = next(line for line in lines if line.startswith("$$\\begin{split} \\nabla_{z_i}"))
    return definition + "\n" + block + "\n"


ARTICLE = _article() if SEED.exists() else None
needs_article = pytest.mark.skipif(ARTICLE is None, reason="the seed articles are not beside")


def _printed(route: str) -> str:
    from derive.render import render
    from derive import derivation
    return render("latex", [derivation(route)])


# -- what holds ---------------------------------------------------------------------------------

@needs_article
def test_the_first_articles_derivation_holds_line_by_line():
    report = verify(ARTICLE, label="y")
    assert [line.status for line in report.lines] == ["holds"] * 7
    assert report.lines[0].detail.startswith("defines Loss")
    assert report.exit_status == 0 and report.holds
    assert report.assume == "one-hot"
    assert "from" in report.lines[3].reason and "\\text" not in report.lines[3].reason


def _routes():
    from derive.derivations import names
    return list(names())


@pytest.mark.parametrize("route", _routes())
@pytest.mark.parametrize("form", ["latex", "text"])
def test_every_derivation_derive_prints_holds_when_fed_back(route, form):
    """What `derive latex` and `derive text` print, read back: every line holds."""
    from derive.render import render
    from derive import derivation
    printed = render(form, [derivation(route)])
    report = verify(printed, assume="one-hot", timeout=120)
    assert report.form == ("latex" if form == "latex" else "printed")
    assert report.holds, [(line.step, line.status, line.detail) for line in report.lines
                          if not line.holds]
    assert len(report.lines) == len(derivation(route).steps)


def test_a_line_made_wrong_in_derives_printed_text_is_reported_at_that_line():
    from derive.render import render
    from derive import derivation
    printed = render("text", [derivation("chain")])
    old = "= -(Σ[i=1..K] y_i·(δ_ik - q_k))"
    assert old in printed
    report = verify(printed.replace(old, "= -(Σ[i≠k] y_i·(δ_ik - q_k))", 1), assume="one-hot")
    wrong = report.first_wrong
    assert wrong is not None and wrong.step == 6, report.text()
    before, after = _at_counterexample(wrong)
    assert abs(before - after) > 1e-6 * (1 + abs(before) + abs(after))


def test_the_text_form_holds_and_defines_names():
    working = ("L := -log(q[c])  # the loss of the label c\n"
               "d(L)/d(z[k]) = -d(log(q[c]))/d(z[k])\n"
               " = -(delta(k, c) - q[k])\n"
               " = q[k] - delta(c, k)\n")
    report = verify(working)
    assert [line.status for line in report.lines] == ["defines", "holds", "holds", "holds"]
    assert report.lines[0].reason == "the loss of the label c"
    assert report.assume == "one-hot"


def test_let_maps_an_authors_names_onto_the_model():
    working = "H = -\\sum_{i=1}^{K} p_i \\log S_i \\\\ &= \\log \\sum_j e^{z_j} - \\sum_i p_i z_i"
    report = verify(working, let=["S=q", "p=y", "H=E"])
    assert report.holds, report.text()
    with pytest.raises(DeriveError, match="the meaning must be one of"):
        verify(working, let=["S=softmax"])


SECOND = r"""\begin{eqnarray}
E &=& -\sum_{i=1}^{H} p_i \ln O_i \\
&=& \ln \sum_{j} \exp(z_j) - \sum_i p_i z_i \\
\frac{\partial E}{\partial z_k} &=& \frac{e^{z_k}}{\sum_{j \in \{1,\dots,H\}} e^{z_j}} - p_k \\
&=& O_k - p_k
\end{eqnarray}"""


def test_an_eqnarray_in_the_second_articles_notation_holds():
    report = verify(SECOND, let=["O=q", "p=y", "H=K"])
    assert [line.status for line in report.lines] == ["holds"] * 4, report.text()


def test_a_line_after_one_that_cannot_be_read_is_not_checked_against_an_earlier_one():
    report = verify(SECOND.replace("\\sum_{j \\in \\{1,\\dots,H\\}}", "\\sum_{j \\foo}"),
                    let=["O=q", "p=y", "H=K"])
    assert [line.status for line in report.lines] == ["holds", "holds", "unread", "unchecked"]
    assert report.exit_status == 2


# -- what does not hold, at exactly that line ---------------------------------------------------

def _at_counterexample(line):
    """Both sides evaluated anew at the reported counterexample."""
    example = line.counterexample
    indices = {name: value for name, value in example.indices}
    from derive.model import INDICES
    symbols = {str(s): s for s in INDICES}
    point = Point(example.size, 1, {z: np.array([example.logits]), y: np.array([example.target])},
                  {}, {(c if name == "c" else symbols[name]): np.array([value])
                       for name, value in indices.items()})
    before, after = line.sides
    return float(evaluate(before, point)[0]), float(evaluate(after, point)[0])


MUTATIONS = [  # (what, the text, its replacement, the step that must be reported)
    ("a sign", "\\nabla_{z_i} (-z_y + \\log", "\\nabla_{z_i} (z_y + \\log", 2),
    ("a dropped term", "&= \\nabla_{z_i} \\log \\sum_j e^{z_j} - \\nabla_{z_i} z_y \\\\",
     "&= \\nabla_{z_i} \\log \\sum_j e^{z_j} \\\\", 3),
    ("a factor", "&= \\frac{1}{\\sum_j e^{z_j}} \\nabla", "&= \\frac{2}{\\sum_j e^{z_j}} \\nabla", 4),
    ("an index", "&= \\frac{e^{z_i}}{\\sum_j e^{z_j}} - \\nabla_{z_i} z_y",
     "&= \\frac{e^{z_y}}{\\sum_j e^{z_j}} - \\nabla_{z_i} z_y", 5),
    ("the indicator", "\\mathbbm{1}(y = i)", "\\mathbbm{1}(y = y)", 7),
]


@needs_article
@pytest.mark.parametrize("what, old, new, step", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_line_made_wrong_in_the_article_is_reported_at_that_line(what, old, new, step):
    assert old in ARTICLE
    report = verify(ARTICLE.replace(old, new, 1), label="y")
    wrong = report.first_wrong
    assert wrong is not None and wrong.step == step, report.text()
    assert all(line.holds for line in report.lines[:step - 1])
    assert report.exit_status == 1
    before, after = _at_counterexample(wrong)
    assert before == pytest.approx(wrong.counterexample.values[0], rel=1e-6, abs=1e-9)
    assert after == pytest.approx(wrong.counterexample.values[1], rel=1e-6, abs=1e-9)
    assert abs(before - after) > 1e-6 * (1 + abs(before) + abs(after))


PRINTED = [  # derive's own derivations with one line changed
    ("logsumexp", "\\delta_{kc}", "\\delta_{ik}", 9),
    ("chain", "- \\sum_{i=1}^{K} y_{i} \\left(\\delta_{ik} - q_{k}\\right) \\tag",
     "- \\sum_{i \\neq k} y_{i} \\left(\\delta_{ik} - q_{k}\\right) \\tag", 6),
    ("logsumexp", "- \\sum_{i=1}^{K} y_{i} \\delta_{ik}", "- \\sum_{i=1}^{K} y_{i} \\delta_{ic}", 6),
]


@pytest.mark.parametrize("route, old, new, step", PRINTED)
def test_a_line_made_wrong_in_a_printed_derivation_is_reported_at_that_line(route, old, new, step):
    text = _printed(route)
    assert old in text
    report = verify(text.replace(old, new, 1), assume="one-hot")
    wrong = report.first_wrong
    assert wrong is not None and wrong.step == step, report.text()
    before, after = _at_counterexample(wrong)
    assert abs(before - after) > 1e-6 * (1 + abs(before) + abs(after))


def test_a_fact_used_too_early_is_reported_as_needed():
    report = verify(_printed("logsumexp"), assume="any")
    wrong = report.first_wrong
    assert wrong.step == 3 and wrong.status == "needs" and wrong.fact == "probability"
    assert "not assumed" in wrong.detail
    assert not np.isclose(sum(wrong.counterexample.target), 1)  # a target that breaks Σy = 1


def test_the_hint_is_derives_own_next_step():
    text = _printed("logsumexp").replace("- y_{k} \\tag", "+ y_{k} \\tag", 1)
    report = verify(text, assume="one-hot")
    wrong = report.first_wrong
    assert wrong.step == 7 and wrong.hint is not None
    title, expr = wrong.hint
    assert title and expr.free_symbols


# -- what cannot be read ------------------------------------------------------------------------

def test_a_line_that_cannot_be_read_says_where_and_the_rest_is_checked():
    report = verify("E = -\\sum_i y_i \\log q_i \\\\ &= \\foo + 1 \\\\ &= q_k")
    assert report.lines[1].status == "unread" and "\\foo" in report.lines[1].detail
    assert report.lines[1].column is not None
    assert report.exit_status in (1, 2)


@pytest.mark.parametrize("text, message", [
    ("no equation here", "no '='"),
    ("", "no equation"),
    ("$$ E = 1", "never closed"),
    ("x" * 300_000, "too long"),
])
def test_input_that_cannot_be_read_is_refused_in_one_line(text, message):
    try:
        report = verify(text)
    except DeriveError as e:
        assert message in str(e)
        return
    assert report.exit_status == 2 and message in report.lines[0].detail


TOKENS = list("=&\\{}_^()[]$+-*/ \nabcdeiklqyzKE012") + [
    "\\frac", "\\sum", "\\nabla", "\\partial", "\\\\", "\\delta", "\\mathbb{1}", "\\log",
    "d(", ")/d(", "\\begin{align*}", "\\end{align*}", "\\text{", "\\neq", ":="]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_random_text_raises_only_derives_own_errors_and_is_refused_within_a_second(text):
    import time
    start = time.monotonic()
    try:
        report = verify(text, timeout=10)
    except DeriveError:
        assert time.monotonic() - start < 1
        return
    assert report.exit_status in (0, 1, 2)
    if all(line.status == "unread" for line in report.lines):
        assert time.monotonic() - start < 1


def _compiles(tex: str, folder) -> None:
    """``tex`` compiles with pdflatex (skipped where there is none)."""
    import shutil
    if shutil.which("pdflatex") is None:
        pytest.skip("no pdflatex")
    (folder / "r.tex").write_text(tex, encoding="utf-8")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "r.tex"],
                          cwd=folder, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]


# -- formats and the command --------------------------------------------------------------------

@needs_article
def test_json_has_one_object_a_line_and_the_counterexample_as_numbers():
    report = verify(ARTICLE.replace("\\mathbbm{1}(y = i)", "\\mathbbm{1}(y = y)"), label="y")
    data = json.loads(report.json())
    assert [row["step"] for row in data["lines"]] == list(range(1, 8))
    assert data["lines"][6]["status"] == "fails" and data["holds"] is False
    example = data["lines"][6]["counterexample"]
    assert isinstance(example["K"], int) and all(isinstance(v, float) for v in example["logits"])
    assert example["values"][0] != example["values"][1]


@needs_article
def test_the_latex_report_compiles(tmp_path):
    report = verify(ARTICLE.replace("(-z_y + \\log", "(z_y + \\log"), label="y")
    tex = report.latex()
    assert tex.count("\\checkmark") >= 1 and "\\times" in tex
    assert "\\nabla_{z_i} Loss &= \\nabla_{z_i} (z_y + \\log \\sum_j e^{z_j})" in tex  # unchanged
    _compiles(tex, tmp_path)


@needs_article
def test_the_command_reads_a_file_or_stdin_and_exits_as_the_report_says(tmp_path, capsys,
                                                                        monkeypatch):
    path = tmp_path / "working.tex"
    path.write_text(ARTICLE, encoding="utf-8")
    assert main(["verify", str(path), "--label", "y"]) == 0
    out = capsys.readouterr().out
    assert "every line holds (7 of 7)" in out
    path.write_text(ARTICLE.replace("\\frac{1}{\\sum_j", "\\frac{2}{\\sum_j"), encoding="utf-8")
    assert main(["verify", str(path), "--label", "y", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["holds"] is False
    import io
    monkeypatch.setattr(sys, "stdin", io.StringIO("E = = \\foo"))
    assert main(["verify", "-"]) == 2
    assert main(["verify", str(tmp_path / "missing.tex")]) == 2
    err = capsys.readouterr().err
    assert "missing.tex: no such file" in err and "Traceback" not in err


def test_the_latex_report_of_working_read_from_text_compiles(tmp_path):
    from derive.render import render
    from derive import derivation
    printed = render("text", [derivation("linear-layer")]).replace("= q_k - y_k", "= q_k + y_k")
    tex = verify(printed, assume="one-hot").latex()
    assert "\\frac{\\partial E_{\\mathrm{lin}}}{\\partial b_{k}}" in tex and "\\times" in tex
    _compiles(tex, tmp_path)


def test_a_chain_of_fifteen_lines_is_checked_in_time():
    """The timing itself is measured by benchmarks/bench_verify.py; here, that it completes."""
    text = _printed("chain") + _printed("logsumexp")
    report = verify(text, assume="one-hot")
    assert len(report.lines) >= 15 and report.holds
    assert re.search(r"every line holds", report.text())


# -- what a first reading by a new user found -----------------------------------------------------

@pytest.mark.parametrize("working, holds", [
    (r"$$\frac{\partial}{\partial z_k} 2 q_k = 2 q_k(1-q_k)$$", True),   # the whole product
    (r"$$\frac{\partial}{\partial z_k} \frac{1}{2} q_k^2 = 0$$", False),
    (r"$$\frac{\partial}{\partial z_k} \frac{1}{2}\sum_i (q_i-y_i)^2 = "
     r"\sum_i (q_i-y_i) q_i(\delta_{ik}-q_k)$$", True),
    (r"$$\nabla_{z_k} y_k \log q_k = y_k(1-q_k)$$", True),
    ("d(d(z[k]^3)/d(z[k]))/d(z[k]) = 6*z[k]", True),                    # twice by one variable
    ("d(d(z[k]^3)/d(z[k]))/d(z[k]) = 3*z[k]^2", False),
    (r"$$E=-\sum_i y_i\log q_i$$ $$\frac{d E}{d z_k} = q_k - y_k$$", True),
    (r"$$E=-\sum_i y_i\log q_i$$ $$\frac{\mathrm{d}}{\mathrm{d}z_k} E = q_k - y_k$$", True),
    (r"$$S = \sum_j e^{z_j}$$ $$q_k = e^{z_k} / S$$", True),              # a one-letter name
    (r"$$S = \sum_j e^{z_j}$$ $$q_k = 2 e^{z_k} / S$$", False),
    (r"$$E = -\sum_i y_i log(q_i) = -\sum_i y_i \ln q_i\,.$$", True),
    (r"$$\frac{\partial q_i}{\partial z_k} = q_i (\delta_{i k} - q_k) = "
     r"q_i(\mathbbm{1}_{i=k} - q_k),$$", True),
])
def test_a_line_means_what_a_reader_takes_it_to_mean(working, holds):
    report = verify(working)
    assert all(line.status in ("holds", "defines", "fails") for line in report.lines), \
        report.text()
    assert report.holds is holds, report.text()


@needs_article
def test_a_condition_the_author_states_restricts_the_line():
    loss = ARTICLE.splitlines()[0]
    others = verify(loss + "\n$$\\nabla_{z_i} Loss = q_i \\quad \\forall i \\neq y$$", label="y")
    assert others.holds, others.text()
    wrong = verify(loss + "\n$$\\nabla_{z_i} Loss = q_i \\quad \\forall i = y$$", label="y")
    assert wrong.first_wrong is not None
    assert dict(wrong.first_wrong.counterexample.indices)["i"] == \
        dict(wrong.first_wrong.counterexample.indices)["c"]


@pytest.mark.parametrize("working, message", [
    (r"$$L = -\sum_i y_i \log q_i$$", "--let L=E"),
    (r"$$E = -\sum_i y_i \log p_i$$", "--let p=y"),
    (r"$$O_k = \frac{e^{z_k}}{\sum_i e^{z_i}}$$", "--let O=q"),
    (r"$$E = -\sum_{i=1}^{C} y_i \log q_i$$", "--let C=K"),
])
def test_a_name_the_model_would_misread_is_refused_with_what_to_write(working, message):
    report = verify(working)
    assert report.lines[0].status == "unread" and message in report.lines[0].detail


def test_let_reaches_the_upper_limit_of_a_sum_that_leaves_a_term_out():
    working = r"$$E = -\sum_{i=1}^{C} y_i \log q_i = -\sum_{i \neq k}^{C} y_i \log q_i - y_k \log q_k$$"
    assert verify(working, let=["C=K"]).holds


@pytest.mark.parametrize("form", ["latex", "text"])
def test_the_derivation_of_a_loss_of_your_own_holds_when_fed_back(form):
    from derive.render import render
    derived = derive_gradient("-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)")
    report = verify(render(form, [derived]), timeout=120)
    assert report.holds, [(line.step, line.detail) for line in report.lines if not line.holds]
    assert report.lines[0].status in ("defines", "holds") and len(report.lines) >= 10


def derive_gradient(loss):
    import derive
    return derive.gradient(loss)


def test_a_line_broken_in_two_is_one_line_with_all_its_text():
    working = "\\begin{multline*}\n\\frac{\\partial E}{\\partial z_k} = -y_k \\\\\n+ q_k\n\\end{multline*}"
    report = verify(working)
    assert report.holds and report.lines[0].source.endswith("+ q_k")


def test_the_command_refuses_to_overwrite_the_working_and_reads_bytes(tmp_path, capsys,
                                                                      monkeypatch):
    path = tmp_path / "w.tex"
    path.write_bytes("\ufeffE = -sum(y[i]*log(q[i]), i)\n".encode("utf-8"))
    assert main(["verify", str(path)]) == 0  # a byte-order mark is left out
    assert main(["verify", str(path), "--output", str(path)]) == 2
    assert "is the working itself" in capsys.readouterr().err
    assert path.read_bytes().startswith("\ufeffE".encode("utf-8"))
    assert main(["verify", str(path), "--let", "a=q", "--let", "a=y"]) == 2
    assert main(["verify", str(path), "--label", "k"]) == 2
    import io

    class Binary:
        buffer = io.BytesIO(b"\xff\xfe")
    monkeypatch.setattr(sys, "stdin", Binary())
    assert main(["verify", "-"]) == 2
    assert "standard input: not UTF-8 text" in capsys.readouterr().err
