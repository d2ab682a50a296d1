"""Stage 6: the printed steps keep the shape a person writes (golden lines of the key steps)."""
import pytest

from derive.render.printers import latex, text

GOLDEN = [
    # derivation, step, the line's right-hand side as LaTeX
    ("chain", 4, r"- \sum_{i=1}^{K} y_{i} \frac{1}{q_{i}} \frac{\partial q_{i}}{\partial z_{k}}"),
    ("chain", 5, r"- \sum_{i=1}^{K} y_{i} \frac{1}{q_{i}} q_{i} \left(\delta_{ik} - q_{k}\right)"),
    ("chain", 6, r"- \sum_{i=1}^{K} y_{i} \left(\delta_{ik} - q_{k}\right)"),
    ("logsumexp", 6, r"\frac{1}{\sum_{j=1}^{K} e^{z_{j}}} \frac{\partial}{\partial z_{k}} "
                     r"\left(\sum_{j=1}^{K} e^{z_{j}}\right) - \sum_{i=1}^{K} y_{i} \delta_{ik}"),
    ("logsumexp", 8, r"q_{k} - y_{k}"),
    ("logsumexp", 9, r"q_{k} - \delta_{kc}"),
    ("batch-mean", 2, r"\frac{1}{N} \sum_{n=1}^{N} \frac{\partial \ell_{n}}{\partial Z_{m,k}}"),
    ("log-sigmoid", 6, r"- \log\left(1 + e^{z_{k}}\right)"),
    ("label-smoothing", 1, r"\sum_{i=1}^{K} \left(\left(1 - \epsilon\right) \delta_{ic} + "
                           r"\frac{\epsilon}{K}\right)"),
    ("class-weights", 8, r"\left(\sum_{i=1}^{K} w_{i} y_{i}\right) q_{k} - w_{k} y_{k}"),
    ("class-weights", 9, r"w_{c} q_{k} - w_{k} \delta_{kc}"),
    ("class-weights", 11, r"w_{c} \left(q_{k} - \delta_{kc}\right)"),
    ("linear-layer", 11, r"\left(q_{k} - y_{k}\right) x_{d}"),
]


@pytest.mark.parametrize("name, number, expected", GOLDEN, ids=[f"{g[0]}-{g[1]}" for g in GOLDEN])
def test_key_lines(derivations, name, number, expected):
    assert latex(derivations[name].steps[number - 1].expr) == expected


def test_exponents_are_inline(derivations):
    line = latex(derivations["temperature"].steps[2].expr)
    assert r"e^{z_{j} / T}" in line and r"\frac{z" not in line


def test_terms_in_the_order_of_their_definition(derivations):
    first = latex(derivations["sigmoid-bce"].steps[0].expr)
    assert first.index(r"y_{i} \log \sigma_{i}") < first.index(r"\left(1 - y_{i}\right) \log")
    second = text(derivations["sigmoid-bce"].steps[1].expr)
    assert second.index("y_i·∂log(σ_i)") < second.index("(1 - y_i)·∂")


def test_a_subscript_of_several_letters_is_upright(derivations):
    assert latex(derivations["linear-layer"].steps[0].lhs).startswith(
        r"\frac{\partial E_{\mathrm{lin}}}")
    assert latex(derivations["temperature"].steps[0].lhs) == "E_{T}"


def test_results_read_as_listed():
    """`derive list` and the last line of a derivation give its result in the same form."""
    import derive
    from derive.derivations import CATALOGUE
    for name in ("class-weights", "linear-layer"):
        shown = text(derive.derivation(name).result).replace("·", " ").replace("(Σ[i=1..K] ", "(Σ_i ")
        assert shown.replace(" ", "") in CATALOGUE[name][1].replace("−", "-").replace(" ", "")
