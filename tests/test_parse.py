"""The input language for users' own losses: text and LaTeX into SymPy (derive.parse)."""
from __future__ import annotations

import ast
import importlib
import pathlib
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sympy import Indexed, IndexedBase, Rational, Sum, Symbol, exp, log, sqrt

from derive import model
from derive.errors import DeriveError, ParseError
from derive.model import K, c, i, j, q, sig, w, y, z
from derive.parse import arrays, form, parameters, parse, uses_class
from derive.parse.grammar import conflicts
from derive.render.printers import latex

gamma, alpha, beta, eps, T, s, m = (Symbol(name, positive=True)
                                    for name in ("gamma", "alpha", "beta", "eps", "T", "s", "m"))
pi = IndexedBase("pi", positive=True)


def canonical(expr):
    """``expr`` with every sum in SymPy's own order: a parsed sum keeps the order it was
    written in, which is the same expression."""
    return expr if expr.is_Atom else expr.func(*map(canonical, expr.args))


def S(f, index=i):
    return Sum(f, (index, 1, K))


#: Losses from the literature in the text form, and the expression each must parse to.
LOSSES = {
    "focal": ("-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)",
              -S(y[i] * (1 - q[i]) ** gamma * log(q[i]))),
    "brier": ("sum((q[i] - y[i])**2, i)", S((q[i] - y[i]) ** 2)),
    "entropy": ("-sum(q[i]*log(q[i]), i)", -S(q[i] * log(q[i]))),
    "cross-entropy of a label": ("-log(q[c])", -log(q[c])),
    "poly-1": ("-sum(y[i]*log(q[i]), i) + eps*(1 - sum(y[i]*q[i], i))",
               -S(y[i] * log(q[i])) + eps * (1 - S(y[i] * q[i]))),
    "poly-1 of a label": ("-log(q[c]) + 1e-3*(1 - q[c])",
                          -log(q[c]) + Rational(1, 1000) * (1 - q[c])),
    "z-loss": ("beta*log(sum(exp(z[i]), i))**2", beta * log(S(exp(z[i]))) ** 2),
    "label smoothing": ("-sum(((1 - eps)*y[i] + eps/K)*log(q[i]), i)",
                        -S(((1 - eps) * y[i] + eps / K) * log(q[i]))),
    "generalized cross-entropy": ("(1 - sum(y[i]*q[i], i)**alpha)/alpha",
                                  (1 - S(y[i] * q[i]) ** alpha) / alpha),
    "generalized cross-entropy per class": ("sum(y[i]*(1 - q[i]**alpha)/alpha, i)",
                                            S(y[i] * (1 - q[i] ** alpha) / alpha)),
    "distillation": ("T**2*sum(pi[i]*(log(pi[i]) - log(q[i])), i)",
                     T ** 2 * S(pi[i] * (log(pi[i]) - log(q[i])))),
    "class-weighted": ("-sum(w[i]*y[i]*log(q[i]), i)", -S(w[i] * y[i] * log(q[i]))),
    "sigmoid bce": ("-sum(y[i]*log(sigma[i]) + (1 - y[i])*log(1 - sigma[i]), i)",
                    -S(y[i] * log(sig[i]) + (1 - y[i]) * log(1 - sig[i]))),
    "sigmoid focal": ("-sum(alpha*y[i]*(1 - sigma[i])**gamma*log(sigma[i])"
                      " + (1 - alpha)*(1 - y[i])*sigma[i]**gamma*log(1 - sigma[i]), i)",
                      -S(alpha * y[i] * (1 - sig[i]) ** gamma * log(sig[i])
                         + (1 - alpha) * (1 - y[i]) * sig[i] ** gamma * log(1 - sig[i]))),
    "mse on logits": ("sum((z[i] - y[i])**2, i)/K", S((z[i] - y[i]) ** 2) / K),
    "entropy-regularised": ("-sum(y[i]*log(q[i]), i) - beta*sum(q[i]*log(q[i]), i)",
                            -S(y[i] * log(q[i])) - beta * S(q[i] * log(q[i]))),
    "gini impurity (Tsallis 2)": ("1 - sum(q[i]^2, i)", 1 - S(q[i] ** 2)),
    "focal of a label": ("-(1 - q[c])**gamma*log(q[c])", -(1 - q[c]) ** gamma * log(q[c])),
    "additive margin": ("-log(exp(s*(z[c] - m))/(exp(s*(z[c] - m)) + sum(exp(s*z[j]), j)"
                        " - exp(s*z[c])))",
                        -log(exp(s * (z[c] - m)) / (exp(s * (z[c] - m)) + S(exp(s * z[j]), j)
                                                    - exp(s * z[c])))),
    "reverse cross-entropy": ("-sum(q[i]*log(y[i] + 0.0001), i)",
                              -S(q[i] * log(y[i] + Rational(1, 10000)))),
    "mean absolute error of a label": ("2*(1 - q[c])", 2 * (1 - q[c])),
    "euclidean": ("sqrt(sum((q[i] - y[i])**2, i))", sqrt(S((q[i] - y[i]) ** 2))),
    "pairwise (nested sums)": ("sum(sum((q[i] - q[j])**2, j), i)/2",
                               S(S((q[i] - q[j]) ** 2, j)) / 2),
}


# -- the language ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", LOSSES)
def test_losses_parse_to_the_expected_expression(name):
    text, expected = LOSSES[name]
    assert form(text) == "text"
    assert canonical(parse(text)) == expected


@pytest.mark.parametrize("name", LOSSES)
def test_latex_round_trip(name):
    text, _ = LOSSES[name]
    expr = parse(text)
    tex = latex(expr)
    assert form(tex) == "latex"
    assert canonical(parse(tex)) == canonical(expr), tex


def test_the_model_objects():
    expr = parse("sum(w[i]*y[i]*z[i]*q[i]*sigma[i], i)*K")
    assert expr.has(model.w, model.y, model.z, model.q, model.sig, model.K)
    (summed,) = expr.atoms(Sum)
    assert summed.limits == ((model.i, 1, model.K),)
    assert summed.function == model.w[model.i] * model.y[model.i] * model.z[model.i] * \
        model.q[model.i] * model.sig[model.i]
    assert parse("q[c]").indices == (model.c,)
    assert parse("gamma") == Symbol("gamma", positive=True)
    assert parse("pi[c]").base == IndexedBase("pi", positive=True)
    assert parse("sum(q[j], j)").limits[0][0] == model.j


def test_the_printed_latex_family():
    assert latex(parse(LOSSES["focal"][0])) == \
        r"- \sum_{i=1}^{K} y_{i} \left(1 - q_{i}\right)^{\gamma} \log q_{i}"
    focal = LOSSES["focal"][1]
    assert parse(r"-\sum_{i=1}^{K} y_{i} \left(1 - q_{i}\right)^{\gamma} \log q_{i}") == focal
    assert parse(r"$-\sum_{i=1}^K y_i (1 - q_i)^\gamma \log(q_i)$") == focal
    assert parse(r"\frac{1}{K} \sum_{i=1}^{K} \left(z_{i} - y_{i}\right)^{2}") == \
        LOSSES["mse on logits"][1]
    assert parse(r"\sum_{i=1}^{K} - q_{i}") == S(-q[i])
    assert parse(r"e^{- z_{c} / T s}") == exp(-z[c] / (T * s))
    assert parse(r"\epsilon q_{c} \cdot \mathrm{eps}") == eps ** 2 * q[c]
    assert parse(r"\sqrt[3]{q_{c}} + \exp\left(z_{c}\right) + e") == \
        q[c] ** Rational(1, 3) + exp(z[c]) + exp(1)
    assert parse(r"\lambda \Gamma T_{2} \alpha_{1}") == parse("lamda*Gamma*T2*alpha1")
    assert parse(r"\sum_{\substack{1 \leq j \leq K\\1 \leq i \leq K}} q_{i} q_{j}") == \
        parse("sum(sum(q[i]*q[j], j), i)")


def test_precedence_and_numbers():
    x = Symbol("beta", positive=True)
    assert parse("-beta**2") == -(x ** 2)
    assert parse("beta**2**3") == x ** 8
    assert parse("beta^-2") == x ** -2
    assert parse("2*-beta") == -2 * x
    assert parse("1/2/beta") == 1 / (2 * x)
    assert parse("0.25") == Rational(1, 4)
    assert parse("1e-3") == Rational(1, 1000)
    assert parse("2.5E2") == 250
    assert parse(".5 + 5.") == Rational(11, 2)


def test_helpers():
    expr = parse("-sum(w[i]*pi[i]*y[i]*(1 - q[i])**gamma*log(q[i]), i) + eps*T2")
    assert parameters(expr) == [Symbol("T2", positive=True), eps, gamma]
    assert arrays(expr) == [pi, w]
    assert not uses_class(expr)
    assert uses_class(parse("-log(q[c])"))
    assert all(isinstance(e, Indexed) for e in parse("q[c]*y[c]").atoms(Indexed))


def test_grammars_have_no_conflicts():
    assert conflicts("text") == []
    assert conflicts("latex") == []
    # and those of a person's working (derive verify), derive's printed text among them
    assert conflicts("text", working=True) == []
    assert conflicts("latex", working=True) == []
    assert conflicts("printed", working=True) == []


# -- bad input -------------------------------------------------------------------------------

def error(text: str) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse(text)
    assert isinstance(info.value, DeriveError)
    return info.value


def test_syntax_error_names_the_column_and_shows_a_caret():
    text = "-sum(y[i]*log(q[i])), i)"
    e = error(text)
    first, shown, caret = str(e).split("\n")
    assert first.startswith("syntax error") and "column 21" in first and e.column == 21
    assert shown == "  " + text
    assert caret == "  " + " " * 20 + "^"
    assert "ends too early" in str(error("-sum(y[i]*log(q[i]), i"))
    e = error(r"\frac{q_{c}}{2} q_{c}}")
    assert str(e).startswith("syntax error: unexpected '}' (") and e.column == 22


@pytest.mark.parametrize("text, message", [
    ("foo(x)", "unknown function 'foo'"),
    ("softmax(z[i])", "write q[i]"),
    ("q(i)", "q is an array, not a function"),
    ("log(q[c], 2)", "log takes one argument"),
    ("sum(q[i])", "sum takes two arguments"),
])
def test_unknown_functions(text, message):
    assert message in str(error(text)).split("\n")[0]


@pytest.mark.parametrize("name", ["abs", "max", "min", "floor", "sign", "ceil", "round"])
def test_functions_not_differentiable_everywhere(name):
    first = str(error(f"{name}(z[c])")).split("\n")[0]
    assert first.startswith(f"{name} is not allowed: it is not differentiable everywhere")


@pytest.mark.parametrize("text, message", [
    ("q[k]", "k is the index of the gradient"),
    ("q[j]", "the index j is not bound by a sum"),
    ("sum(q[i], i) + q[i]", "the index i is not bound by a sum"),
    ("sum(q[i], j)", "the index i is not bound by a sum"),
    (r"q_{j}", r"write \sum_{j=1}^{K}"),
    ("k*q[c]", "k is the index of the gradient"),
    ("sum(i*q[i], i)", "the index i can only be used in brackets"),
    ("c*q[c]", "c (the class of a one-hot target) can only be used as an index"),
])
def test_free_indices(text, message):
    assert message in str(error(text)).split("\n")[0]


@pytest.mark.parametrize("text, message", [
    ("sum(q[i], ii)", "the index of a sum must be a single lower-case letter"),
    ("sum(q[i], 2)", "the index of a sum must be a single lower-case letter"),
    ("sum(q[I], I)", "the index of a sum must be a single lower-case letter"),
    ("sum(q[k], k)", "k cannot be the index of a sum"),
    ("sum(q[c], c)", "c cannot be the index of a sum"),
    ("sum(sum(q[i], i), i)", "the index i is already bound by an enclosing sum"),
    (r"\sum_{i=0}^{K} q_{i}", "a sum must run from 1 to K"),
    (r"\sum_{i=1}^{N} q_{i}", "a sum must run from 1 to K"),
])
def test_bad_sums(text, message):
    assert message in str(error(text)).split("\n")[0]


@pytest.mark.parametrize("text, message", [
    ("K[i]", "K is the number of classes and takes no index"),
    ("sum(i[i], i)", "'i' is an index and cannot have an index of its own"),
    ("q[1]", "an index must be a single lower-case letter"),
    ("q[i+1]", "an index must be a single lower-case letter"),
    ("sum(sum(w[i, j], j), i)", "w takes one index"),
    ("q", "q is an array (the softmax of z): give it an index"),
    ("sigma*2", "sigma is an array"),
    ("s*sum(q[s], s)", "'s' is used both as a parameter and as an index"),
    ("gamma*sum(gamma[i], i)", "'gamma' is used both as a parameter and as an array"),
    (r"e_{i}", "e is Euler's number and takes no index"),
])
def test_indices_where_they_do_not_belong(text, message):
    assert message in str(error(text)).split("\n")[0]


@pytest.mark.parametrize("text, message", [
    ("q.T", "attribute access is not allowed"),
    ("sum.__class__", "attribute access is not allowed"),
    ("__import__('os')", "names starting with '_' are not allowed"),
    ("q[c] + 'os'", "strings are not allowed"),
    ("__import__(os)", "names starting with '_' are not allowed"),
    ('"loss"', "strings are not allowed"),
    ("lambda x: x", "syntax error: unexpected 'x'"),  # lambda is the Greek letter
    ("[q[i] for i in K]", "comprehensions are not allowed"),
    ("q[c]; import os", "imports are not allowed"),
    ("{1: 2}", "braces are not allowed"),
    ("q[c] if K else 0", "'if' is a Python keyword"),
    ("eval(q)", "unknown function 'eval'"),
    ("γ*q[c]", "only ASCII characters are allowed, not 'γ': write gamma"),
])
def test_python_is_refused(text, message):
    assert message in str(error(text)).split("\n")[0]


@pytest.mark.parametrize("text, message", [
    ("p[i]", "the name 'p' is reserved: it is the tempered softmax"),
    ("E + q[c]", "the name 'E' is reserved"),
    ("x*q[c]", "the name 'x' is reserved"),
    ("ell", "the name 'ell' is reserved"),
    ("diag_q", "the name 'diag_q' is reserved"),
    ("e*q[c]", "the name 'e' is reserved: it is Euler's number"),
    ("epsilon*q[c]", "the name 'epsilon' is reserved: the generated code uses it; write eps"),
    ("temperature*q[c]", "write T"),
    ("logits*2", "the name 'logits' is reserved"),
    ("numpy*2", "the name 'numpy' is reserved"),
    ("len*2", "'len' is a Python builtin"),
    ("sum*2", "sum is a function"),
    ("pi*q[c]", "pi without an index would read as the number"),
    ("j*q[c]", "'j' is one of the model's index letters"),
    ("xhat*q[c]", r"would print as \hat{x}"),
    ("foo_bar", "cannot be a name: use letters, then digits"),
    ("w2[c]", "cannot be an array name"),
    ("q1*q[c]", "would print as q_{1} in LaTeX, which reads as an index of q"),
    (r"\pi", r"write \pi_{i}"),
    (r"\foo q_{c}", r"unknown LaTeX command \foo"),
    (r"\infty", "infinity is not allowed"),
])
def test_names(text, message):
    assert message in str(error(text)).split("\n")[0]


@pytest.mark.parametrize("text, message", [
    ("1/0", "division by zero"),
    ("log(0)", "the log of 0"),
    ("sqrt(-1)", "not a real number"),
    ("log(1 - 2)", "not a real number"),
    ("(-8)**(1/3)", "not a real number"),
    ("(-2)**gamma", "not a real number"),
    ("q[c]**65", "the exponent 65 is too large"),
    ("q[c]**(-100)", "the exponent -100 is too large"),
    ("2**2**2**2**2", "the exponent 65536 is too large"),
    ("(z[c]**64)**2", "the exponent 128 is too large"),
    ("q[c]**64*q[c]**64", "the exponent 128 is too large"),
    ("sqrt(z[c]**2)", "not differentiable everywhere"),
    ("(2**60)**60", "more than 100 digits"),
    ("1" * 31, "more than 30 digits"),
    ("1e31", "the exponent of the number is too large"),
    ("1e-99999999999", "the exponent of the number is too large"),
    ("q[c]+" * 500 + "q[c]", "the loss is too long"),
    ("(" * 41 + "q[c]" + ")" * 41, "brackets are nested too deeply"),
    ("-" * 41 + "q[c]", "nested too deeply"),
    ("exp(" * 41 + "q[c]" + ")" * 41, "nested too deeply"),
    ("", "the loss is empty"),
    (" \n ", "the loss is empty"),
])
def test_limits(text, message):
    assert message in str(error(text)).split("\n")[0]


def test_at_most_eight_sums():
    letters = "adfghjlm"
    text = "q[c]"
    for letter in letters:
        text = f"sum(q[{letter}]*{text}, {letter})"
    assert parse(text).has(q[c])
    assert "too many sums" in str(error(f"sum(q[n]*{text}, n)")).split("\n")[0]
    assert "too many sums" in str(error(" + ".join(["sum(q[i], i)"] * 9))).split("\n")[0]


def test_every_message_is_one_line_then_a_caret():
    for text in ("q[j]", "foo(1)", "q[c] $", "sum(q[i], k)", "-log(q[c]) +", "x.y"):
        lines = str(error(text)).split("\n")
        assert len(lines) in (1, 3)
        if len(lines) == 3:
            assert lines[2].strip() == "^" and lines[1].startswith("  ")


def test_long_lines_are_shown_around_the_place():
    text = "q[c] + " * 100 + "q[j]" + " + q[c]" * 100
    first, shown, caret = str(error(text)).split("\n")
    assert "not bound" in first and len(shown) < 90
    assert shown[caret.index("^")] == "j"


@pytest.mark.parametrize("text", [
    "(q[c] + 1)**64",
    "(" * 40 + "q[c]" + ")" * 40,
    "+".join(["sum(exp(z[i])*q[i], i)"] * 80),
    "*".join(["(1 - q[c])**64"] * 120),
    "(2**60)**(1/3)*2**(99/100)*3**(1/1000000000000000000000000000)",
    "exp(" * 20 + "log(" * 20 + "q[c]" + ")" * 40,
    r"\frac{1}{" * 13 + "q_{c}" + "}" * 13,
])
def test_large_legal_inputs_are_quick(text):
    start = time.perf_counter()
    try:
        parse(text)
    except ParseError:
        pass
    assert time.perf_counter() - start < 1.0


# -- anything at all ---------------------------------------------------------------------------

_TOKENS = [
    # the text form
    "sum", "log", "exp", "sqrt", "(", ")", "[", "]", ",", "+", "-", "*", "/", "**", "^",
    "q", "y", "z", "w", "sigma", "pi", "i", "j", "k", "c", "K", "gamma", "alpha", "T", "s",
    "2", "0", "0.25", "1e-3", "1e30", "64", "65", "-1", " ",
    # the LaTeX form
    r"\sum_{i=1}^{K}", r"\sum_{\substack{1 \leq i \leq K}}", r"\frac{", "}{", "{", "}",
    r"\left(", r"\right)", r"\log", "e^{", r"\sqrt{", r"\sqrt[", "_{i}", "_{c}", "_{i,j}",
    "_", r"\gamma", r"\sigma_{i}", r"\pi", r"\cdot", r"\mathrm{", r"\,", "$", r"\\",
    # hostile
    "__import__", ".", "'", '"', "lambda", "for", "abs", "max", "eval", "exec", ":", ";", "=",
    "@", "\x00", "\n", "γ", r"\infty", "(" * 30, ")" * 30, "**64", "9" * 30, "os", "__class__",
    "#", "!", "&", "|", "`", "%", "<", "~", "\\x", "1j", "None", "True",
]


def _parse_quickly(text: str) -> None:
    start = time.perf_counter()
    try:
        parse(text)
    except DeriveError as e:
        first = str(e).split("\n")[0]
        assert first and not first.startswith("cannot build"), str(e)
    assert time.perf_counter() - start < 1.0, text


_FUZZ = settings(max_examples=300, deadline=1000, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.lists(st.sampled_from(_TOKENS), max_size=40))
def test_token_sequences_fail_only_with_derive_errors(tokens):
    _parse_quickly("".join(tokens))


@_FUZZ
@given(st.lists(st.sampled_from(_TOKENS), max_size=40))
def test_spaced_token_sequences_fail_only_with_derive_errors(tokens):
    _parse_quickly(" ".join(tokens))


@_FUZZ
@given(st.text(max_size=80))
def test_random_text_fails_only_with_derive_errors(text):
    _parse_quickly(text)


@_FUZZ
@given(st.text(alphabet=st.sampled_from("qyzcijK()[]+-*/^,.01e2 sumlogexp\\_{}"), max_size=60))
def test_random_near_text_fails_only_with_derive_errors(text):
    _parse_quickly(text)


_LEAVES = st.sampled_from(["q[i]", "y[j]", "z[c]", "sigma[i]", "w[k]", "pi[i]", "q[c]", "K",
                           "gamma", "T", "2", "0", "64", "1e-30", "0.5", "e", "p[i]", "i"])


def _combine(parts):
    unary = st.sampled_from(["-(%s)", "log(%s)", "exp(%s)", "sqrt(%s)", "sum(%s, i)",
                             "sum(%s, j)", "(%s)**2", "(%s)**64", "(%s)**-1", "abs(%s)"])
    binary = st.sampled_from(["(%s) + (%s)", "(%s) - (%s)", "(%s)*(%s)", "(%s)/(%s)",
                              "(%s)**(%s)", "(%s)^(%s)"])
    return st.one_of(st.tuples(unary, parts).map(lambda t: t[0] % t[1]),
                     st.tuples(binary, parts, parts).map(lambda t: t[0] % (t[1], t[2])))


@settings(_FUZZ, max_examples=150)
@given(st.recursive(_LEAVES, _combine, max_leaves=20))
def test_random_expressions_build_quickly_or_fail_with_derive_errors(text):
    _parse_quickly(text)
    try:
        expr = parse(text)
    except DeriveError:
        return
    assert parse(latex(expr)) == expr, latex(expr)


def test_non_strings_are_refused():
    with pytest.raises(ParseError, match="a loss is text"):
        parse(None)  # type: ignore[arg-type]


# -- nothing is evaluated ----------------------------------------------------------------------

#: calls that would evaluate or parse text with Python or SymPy (as a method or a function)
_FORBIDDEN_CALLS = {"eval", "exec", "sympify", "parse_expr", "__import__"}
#: functions that would do so when called by their bare name (re.compile is fine)
_FORBIDDEN_FUNCTIONS = _FORBIDDEN_CALLS | {"compile", "S", "Float"}


def test_the_parser_never_evaluates_text():
    package = importlib.import_module("derive.parse")  # the package, whatever derive.parse is
    sources = sorted(pathlib.Path(package.__file__).parent.glob("*.py"))
    assert len(sources) >= 3
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else \
                func.attr if isinstance(func, ast.Attribute) else None
            forbidden = _FORBIDDEN_FUNCTIONS if isinstance(func, ast.Name) else _FORBIDDEN_CALLS
            assert name not in forbidden, f"{path.name}:{node.lineno} calls {name}"
            if name in ("Rational", "Integer"):  # numbers are made from ints, never from text
                assert not any(isinstance(a, ast.Constant) and isinstance(a.value, str)
                               for a in node.args), f"{path.name}:{node.lineno}"
                assert not any(isinstance(a, ast.Attribute) and a.attr == "value"
                               for a in node.args), f"{path.name}:{node.lineno}"


def test_a_sum_keeps_the_order_its_terms_were_written_in():
    written = parse("-sum(y[i]*log(sigma[i]) + (1 - y[i])*log(1 - sigma[i]), i)")
    assert written.args[1].function.args == (y[i] * log(sig[i]), (1 - y[i]) * log(1 - sig[i]))
    assert parse("1 - q[c]") == 1 - q[c]  # a number or a letter: SymPy's order
    assert parse("q[c]*log(q[c]) + q[c]*log(q[c])") == 2 * q[c] * log(q[c])  # collected
