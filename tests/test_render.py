"""Stage 5: the renderers, against golden strings written out by hand."""
import pytest

import derive
from derive.render import RENDERERS, render
from derive.render.printers import latex, text
from derive.errors import DeriveError
from derive.model import SumExcept, K, i, k, q, y

SHIFT_LATEX = r"""% Shift invariance of the softmax (shift-invariance)
\begingroup\allowdisplaybreaks[1]
\begin{align*}
q_{k} &= \frac{e^{z_{k}}}{\sum_{j=1}^{K} e^{z_{j}}} \tag*{\small\quad definition of softmax} \\*
 &= \frac{e^{z_{k} - a}}{\sum_{j=1}^{K} e^{z_{j} - a}} \tag*{\small\quad multiply above and below by $e^{-a}$} \\
\log q_{k} &= \log\left(\frac{e^{z_{k} - a}}{\sum_{j=1}^{K} e^{z_{j} - a}}\right) \tag*{\small\quad take logarithms} \\*
 &= z_{k} - a - \log \sum_{j=1}^{K} e^{z_{j} - a} \tag*{\small\quad log of a quotient}
\end{align*}
\endgroup
"""

CHAIN_LATEX_END = r""" &= \left(\sum_{\substack{i=1\\ i \neq k}}^{K} y_{i}\right) q_{k} - y_{k} \left(1 - q_{k}\right) \tag*{\small\quad $\delta_{ik} = 0$ for $i \neq k$; linearity of the sum} \\
 &= q_{k} \left(1 - y_{k}\right) - y_{k} \left(1 - q_{k}\right) \tag*{\small\quad $\textstyle\sum_{i \neq k} y_i = 1 - y_k$} \\
 &= q_{k} - y_{k} \tag*{\small\quad algebra} \\*
\frac{\partial E}{\partial z_{k}} &= q_{k} - \delta_{kc} \tag*{\small\quad $y$ one-hot at class $c$}
\end{align*}
\endgroup
"""

CHAIN_LATEX_START = r"""% Gradient of the cross-entropy by the chain rule (chain)
\begingroup\allowdisplaybreaks[1]
\begin{align*}
\frac{\partial E}{\partial z_{k}} &= \frac{\partial}{\partial z_{k}} \left(- \sum_{i=1}^{K} y_{i} \log q_{i}\right) \tag*{\small\quad definition of $E$} \\*
 &= - \sum_{i=1}^{K} y_{i} \frac{\partial \log q_{i}}{\partial z_{k}} \tag*{\small\quad sum rule; constant factor} \\
 &= - \sum_{i=1}^{K} y_{i} \frac{\partial \log q_{i}}{\partial q_{i}} \frac{\partial q_{i}}{\partial z_{k}} \tag*{\small\quad chain rule} \\
"""

JACOBIAN_TEXT_END = """ 6.           = q_i·δ_ik - q_i·q_k
      ↳ definition of softmax (e^{z_i} / Σ_j e^{z_j} is q_i)
 7.           = q_i·(δ_ik - q_k)
      ↳ algebra (take out the common factor)
"""


def step_rows(out: str) -> list[str]:
    """The rows of an align* block, one a step: a step broken over several lines is one."""
    lines = out.split("\\begin{align*}\n")[1].split("\n\\end{align*}")[0].split("\n")
    rows = []
    for line in lines:
        if line.startswith(r"&\quad") and rows:
            rows[-1] += "\n" + line
        else:
            rows.append(line)
    return rows


def test_latex_golden_shift_invariance(derivations):
    assert render("latex", [derivations["shift-invariance"]]) == SHIFT_LATEX


def test_latex_golden_chain(derivations):
    out = render("latex", [derivations["chain"]])
    assert out.startswith(CHAIN_LATEX_START)
    assert out.endswith(CHAIN_LATEX_END)


def test_text_golden_jacobian(derivations):
    assert render("text", [derivations["softmax-jacobian"]]).endswith(JACOBIAN_TEXT_END)


@pytest.mark.parametrize("name", derive.names())
def test_latex_has_one_line_per_step_and_no_artefacts(derivations, name):
    d = derivations[name]
    out = render("latex", [d])
    rows = step_rows(out)
    assert len(rows) == len(d.steps)  # one step a line, its rule a tag at the right margin
    assert all(row.count(r"\tag*{") == 1 for row in rows)
    for artefact in ("Piecewise", r"\frac{d}{d", "K \\geq", "\\geq k", "{z}_", "\\begin{cases}"):
        assert artefact not in out
    assert r"\partial" in out or name in ("shift-invariance", "log-sigmoid")


def test_document_uses_only_amsmath_and_amssymb_and_ascii(derivations):
    out = render("latex", derivations.values(), document=True)
    packages = [line for line in out.splitlines() if line.startswith(r"\usepackage")]
    assert packages == [r"\usepackage{amsmath}", r"\usepackage{amssymb}"]
    assert out.isascii()
    assert out.count(r"\begin{align*}") == len(derivations)


def test_markdown_blocks_and_reasons(derivations):
    out = render("markdown", [derivations["chain"]])
    assert out.startswith("## Gradient of the cross-entropy by the chain rule (`chain`)")
    assert out.count("$$") == 2 and r"\begin{aligned}" in out
    assert "(`softmax-jacobian`)" in out
    assert "y is a probability vector: its entries sum to 1" in out.split("Facts used: ")[1]


def test_text_is_unicode_one_line_per_step(derivations):
    out = render("text", [derivations["logsumexp"]])
    assert "∂E/∂z_k" in out and "Σ[i=1..K]" in out
    assert " 8.         = q_k - y_k" in out
    assert "special case: one-hot target" in out


@pytest.mark.parametrize("expr, tex, txt", [
    (SumExcept(y[i], (i, 1, K), k), r"\sum_{\substack{i=1\\ i \neq k}}^{K} y_{i}", "Σ[i≠k] y_i"),
    (y[i] * q[k], "y_{i} q_{k}", "y_i·q_k"),
    (-y[k] * (1 - q[k]), r"- y_{k} \left(1 - q_{k}\right)", "-y_k·(1 - q_k)"),
    (q[k] - y[k], "q_{k} - y_{k}", "q_k - y_k"),
])
def test_printers(expr, tex, txt):
    assert latex(expr) == tex
    assert text(expr) == txt


def test_unknown_format():
    with pytest.raises(DeriveError, match="unknown format 'html'"):
        render("html", [])


def test_renderers_registry():
    assert RENDERERS == ("latex", "markdown", "text")


def test_document_text_is_escaped_for_latex():
    from derive.render.latex import escape
    assert escape("log(1 + e^u), a_b, 50% & {x}") == r"log(1 + e\^{}u), a\_b, 50\% \& \{x\}"


def _wide_denominator():
    from sympy import Symbol, Sum
    a, b = Symbol("alpha"), Symbol("beta")
    total = Sum(y[i] * q[i], (i, 1, K))
    return a * (1 - total) + b * (1 - total) + total, total


def test_a_quotient_too_wide_for_a_row_is_printed_over_its_denominator():
    from derive.render.rows import latex_rows
    den, total = _wide_denominator()
    expr = q[k] * (y[k] - total) / den ** 2
    assert latex(expr).startswith(r"\frac{1}{")  # (1/den) Σ… where it fits
    rows = latex_rows(expr, 20.0)
    assert rows == [latex(expr, one_fraction=True)] and rows[0].startswith(r"\frac{q_{k}")


def test_a_wide_factor_stands_on_its_own_row_before_a_broken_bracket():
    from sympy import Add
    from derive.render.rows import latex_rows, width
    den, total = _wide_denominator()
    bracket = Add(*(q[n] * y[k] * total for n in range(1, 6)))
    rows = latex_rows(den * bracket, 30.0)
    assert rows[0] == r"\left(%s\right) \Bigl(" % latex(den) and rows[-1].endswith(r"\Bigr)")
    assert all(width(den) > 15 for _ in rows) and len(rows) >= 3
