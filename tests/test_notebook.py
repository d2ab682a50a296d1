"""The notebook: committed with outputs, current with its generator, and it runs without error."""
import importlib.util
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATH = NOTEBOOKS / "softmax_cross_entropy.ipynb"


def _generator():
    spec = importlib.util.spec_from_file_location("make_notebook", NOTEBOOKS / "make_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_notebook_has_outputs_and_current_cells():
    committed = nbformat.read(PATH, as_version=4)
    fresh = _generator().build()
    assert [c.source for c in committed.cells] == [c.source for c in fresh.cells]
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.outputs for c in code)
    kinds = {kind for c in code for o in c.outputs for kind in o.get("data", {})}
    assert {"text/latex", "image/png"} <= kinds
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]


def test_notebook_executes_with_a_real_kernel():
    nb = nbformat.read(PATH, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError on the first cell that fails
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "largest difference from central differences" in printed
