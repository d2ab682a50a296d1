"""The notebook: committed with outputs, current with its generator, and it runs without error.

Its step tables must show every component of the gradient at the articles' worked example, the
true class's −0.3715 included, for every step of the routes they tabulate (read off
``derive.derivation(name).steps``, never hard-coded); its plots must label both axes and the
colour bar in mathtext, number the classes from 1 and mark the worked example.
"""
import importlib.util
import json
import math
import re
from pathlib import Path

import pytest

import derive
from derive.model import E

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATH = NOTEBOOKS / "softmax_cross_entropy.ipynb"

# The articles' worked example, classes numbered from 1: z = (1, 2, 0.5), true class 2.
TRUE_CLASS = 2
LOSS = 0.4644
GRADIENT = (0.2312, -0.3715, 0.1402)
TABULATED = {"logsumexp", "chain"}  # the two routes to q_k - y_k

SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")


def _generator():
    spec = importlib.util.spec_from_file_location("make_notebook", NOTEBOOKS / "make_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def _tables(nb) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The step tables among the notebook's Markdown outputs: route name -> (heads, rows)."""
    tables = {}
    for output in _outputs(nb):
        text = output.get("data", {}).get("text/markdown", "")
        caption = re.match(r"\*\*([\w-]+)\*\* at ", text)
        if not caption:
            continue
        lines = [line for line in text.splitlines() if line.startswith("|")]
        cells = [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
        tables[caption.group(1)] = (cells[0], cells[2:])  # cells[1] is the alignment row
    return tables


def _number(cell: str) -> float:
    return float(cell.replace("−", "-"))


def _check_step_tables(nb) -> None:
    tables = _tables(nb)
    assert TABULATED <= set(tables), f"step tables for {sorted(tables)}, wanted {sorted(TABULATED)}"
    for name, (heads, rows) in tables.items():
        d = derive.derivation(name)
        assert heads[:3] == ["step", "rule", "E"], heads
        classes = [int(re.match(r"∂E/∂z(\d+)", h.translate(SUBSCRIPTS)).group(1)) for h in heads[3:]]
        assert classes == [1, 2, 3], f"{name}: classes numbered {classes}, not from 1 as in the derivations"
        marked = [k for k, h in zip(classes, heads[3:]) if "true class" in h]
        assert marked == [TRUE_CLASS], heads
        assert len(rows) == len(d.steps), (
            f"{name}: the table has {len(rows)} rows, the derivation {len(d.steps)} steps: "
            f"(if the committed notebook: regenerate it with python notebooks/make_notebook.py)")
        for n, (row, step) in enumerate(zip(rows, d.steps), 1):
            assert row[0] == str(n)
            assert row[1].replace("\\|", "|") == ("special case: " if step.aside else "") + step.title
            if step.lhs == E:
                assert _number(row[2]) == LOSS and row[3:] == ["", "", ""], (name, n, row)
            else:
                assert row[2] == "", (name, n, row)
                assert tuple(_number(c) for c in row[3:]) == GRADIENT, (name, n, row)
                assert row[3 + classes.index(TRUE_CLASS)] == "−0.3715", (name, n, row)
        assert any(step.lhs != E for step in d.steps), f"{name} has no gradient step to tabulate"


def test_committed_notebook_has_outputs_and_current_cells():
    committed = nbformat.read(PATH, as_version=4)
    fresh = _generator().build()
    assert [c.source for c in committed.cells] == [c.source for c in fresh.cells]
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.outputs for c in code)
    kinds = {kind for o in _outputs(committed) for kind in o.get("data", {})}
    assert {"text/latex", "text/markdown", "image/png"} <= kinds
    assert not [o for o in _outputs(committed) if o.output_type == "error"]
    # Deterministic: no execution timestamps, so regenerating an unchanged notebook changes nothing.
    assert not [c.id for c in code if "execution" in c.metadata]
    _check_step_tables(committed)


def test_generator_sources_use_mathtext_and_count_classes_from_1():
    plots = "\n".join(source for kind, source in _generator().CELLS
                      if kind == "code" and "plt.subplots" in source)
    assert r"$\partial E/\partial z_" in plots and r"$\partial q_i/\partial z_k" in plots
    assert re.search(r"colorbar\([^)]*label=", plots)
    assert not re.search(r"dE/dz|dq_i|E = -log", plots)


PROBE = r"""
import json
import matplotlib.pyplot as plt
facts = []
for number in plt.get_fignums():
    figure = plt.figure(number)
    figure.canvas.draw()  # a mathtext error raises here
    for a in figure.axes:
        legend = a.get_legend()
        facts.append({
            "colorbar": a.get_label() == "<colorbar>",
            "image": bool(a.images),
            "xlabel": a.get_xlabel(), "ylabel": a.get_ylabel(), "title": a.get_title(),
            "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
            "xticks": [t.get_text() for t in a.get_xticklabels()],
            "yticks": [t.get_text() for t in a.get_yticklabels()],
            "texts": [t.get_text() for t in a.texts],
            "points": [xy for line in a.get_lines() if line.get_marker() not in (None, "None", "", " ")
                       for xy in line.get_xydata().tolist()],
        })
print("PROBE" + json.dumps(facts))
"""


def _check_plots(axes: list[dict]) -> None:
    plots = [a for a in axes if not a["colorbar"]]
    colorbars = [a for a in axes if a["colorbar"]]
    assert len(plots) >= 3 and colorbars, axes
    for a in plots:
        for what in ("xlabel", "ylabel", "title"):
            assert "$" in a[what], f"{what} {a[what]!r} is not in mathtext"
    for a in colorbars:
        label = a["ylabel"] or a["xlabel"]
        assert "$" in label, f"colour bar label {label!r}"
    shown = [s for a in axes for key in ("xlabel", "ylabel", "title", "legend", "texts")
             for s in ([a[key]] if isinstance(a[key], str) else a[key])]
    assert not [s for s in shown if re.search(r"dE/dz|_\{?0\b", s)], shown
    # The gradient panel: one curve a class, numbered 1..K, the true class said.
    legends = [a["legend"] for a in plots if any(r"\partial E/\partial z_" in t for t in a["legend"])]
    assert len(legends) == 1, legends
    curves = [t for t in legends[0] if r"\partial E/\partial z_" in t]
    numbers = [int(re.search(r"z_\{?(\d+)", t).group(1)) for t in curves]
    assert numbers == [1, 2, 3], curves
    assert [n for n, t in zip(numbers, curves) if "true class" in t] == [TRUE_CLASS]
    # The heat map's classes are numbered from 1 too.
    heat = [a for a in plots if a["image"]]
    assert heat and all([int(re.match(r"\d+", t).group()) for t in a[ticks]] == [1, 2, 3]
                        for a in heat for ticks in ("xticks", "yticks")), heat
    # The worked example is marked: the loss at z_2 = 2, and every gradient component there.
    points = [tuple(p) for a in plots for p in a["points"]]
    for value in (LOSS, *GRADIENT):
        assert any(math.isclose(x, 2.0) and abs(y - value) < 5e-5 for x, y in points), (value, points)
    texts = " ".join(t for a in plots for t in a["texts"])
    assert "worked example" in texts and "−0.3715" in texts


def test_notebook_executes_with_a_real_kernel():
    nb = nbformat.read(PATH, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    nb.cells.insert(0, nbformat.v4.new_code_cell("%config InlineBackend.close_figures = False"))
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError on the first cell that fails
    printed = "".join(o.get("text", "") for o in _outputs(nb))
    assert "largest difference from central differences" in printed
    assert "every step of both routes agrees" in printed
    _check_step_tables(nb)
    probe = next(line for line in printed.splitlines() if line.startswith("PROBE"))
    _check_plots(json.loads(probe[len("PROBE"):]))


def test_your_own_loss_section_is_derived_plotted_and_checked():
    """Focal loss derived and shown, its gradient plotted for γ = 0, 1, 2, 5 with mathtext
    labels, and checked against central differences (the cell asserts it; the committed output
    says by how much)."""
    nb = nbformat.read(PATH, as_version=4)
    heads = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown"]
    assert "## Your own loss" in heads
    code = {c.source: c for c in nb.cells if c.cell_type == "code"}
    shown = next(c for s, c in code.items() if s.startswith("focal = derive.gradient("))
    assert any("text/latex" in o.get("data", {}) for o in shown.outputs)  # the steps, rendered
    plot = next(s for s in code if "gammas = [0, 1, 2, 5]" in s)
    assert r'ylabel=r"$\partial \mathcal{L}/\partial z_2$"' in plot
    assert r'label=r"$\gamma = %d$" % g' in plot and 'xlabel=r"$z_2$' in plot
    assert any("image/png" in o.get("data", {}) for o in code[plot].outputs)
    checked = next(c for s, c in code.items() if s.startswith("worst = 0.0"))
    (printed,) = [o["text"] for o in checked.outputs if o.get("name") == "stdout"]
    worst = float(printed.rsplit(":", 1)[1])
    assert worst < 1e-6
