"""Write notebooks/softmax_cross_entropy.ipynb from the cells below and execute it in place.

    python notebooks/make_notebook.py

The committed notebook keeps its outputs so that it reads well on GitHub; the test suite runs it
again with a real Jupyter kernel.
"""
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
PATH = HERE / "softmax_cross_entropy.ipynb"

CELLS = [
    ("markdown", """# Softmax cross-entropy, derived and checked

This notebook builds the two derivations of ∂E/∂z_k for E = −Σᵢ yᵢ log qᵢ, q = softmax(z), for a
symbolic number of classes K; evaluates every step at a worked example; plots the loss and the
gradient; and checks the generated NumPy code against central differences."""),
    ("code", """import matplotlib.pyplot as plt
import numpy as np

import derive
from derive.model import E

print(derive.__version__, derive.names())"""),
    ("markdown", "## The log-sum-exp route\n"
                 "Every step below has been checked by the tool before it is shown."),
    ("code", """route = derive.derivation("logsumexp")
route"""),
    ("markdown", "## The chain-rule route, through the softmax Jacobian"),
    ("code", """chain = derive.derivation("chain")
chain"""),
    ("code", """derive.derivation("softmax-jacobian")"""),
    ("markdown", """## Every step at the worked example
Logits (1, 2, 0.5), true class 1 (0-based). Each step of both routes is evaluated at k = 0; the
target is one-hot, so it satisfies every fact the steps use, and all values agree."""),
    ("code", """logits, target = [1.0, 2.0, 0.5], [0.0, 1.0, 0.0]
for d in (route, chain):
    print(d.name)
    for n, step in enumerate(d.steps, 1):
        value = derive.evaluate(step.expr, logits, target, k=0, c=1)
        print(f"  {n:>2}  {value:+.6f}  {step.rule}")"""),
    ("code", """values = {round(derive.evaluate(s.expr, logits, target, k=0, c=1), 10)
          for d in (route, chain) for s in d.main_steps if s.lhs != E}
assert len(values) == 1, values
values"""),
    ("markdown", "## Loss and gradient as one logit moves"),
    ("code", """m = derive.numpy_module()
z1 = np.linspace(-6, 8, 281)
rows = np.tile([1.0, 2.0, 0.5], (z1.size, 1))
rows[:, 1] = z1
loss, grad = m.cross_entropy_with_grad(rows, np.full(z1.size, 1))
fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
ax[0].plot(z1, loss)
ax[0].set(xlabel="logit of the true class", ylabel="loss", title="E = -log q_1")
for c in range(3):
    ax[1].plot(z1, grad[:, c], label=f"dE/dz_{c}")
ax[1].axhline(0, color="gray", lw=0.5)
ax[1].set(xlabel="logit of the true class", title="gradient q_k - y_k")
ax[1].legend()
plt.tight_layout()"""),
    ("markdown", "## The softmax Jacobian q_i(δ_ik − q_k) as a heat map"),
    ("code", """jac = m.softmax_jacobian(np.array([1.0, 2.0, 0.5, -1.0, 0.0]))
fig, ax = plt.subplots(figsize=(4, 3.5))
im = ax.imshow(jac, cmap="RdBu_r", vmin=-abs(jac).max(), vmax=abs(jac).max())
ax.set(xlabel="k", ylabel="i", title="∂q_i/∂z_k")
fig.colorbar(im)
assert np.allclose(jac.sum(axis=0), 0)  # the columns sum to 0: Σ_i q_i = 1 for every z"""),
    ("markdown", "## The generated code against central differences"),
    ("code", """rng = np.random.default_rng(0)
z = rng.normal(scale=3, size=(4, 6))
y = rng.dirichlet(np.ones(6), size=4)
h = 1e-6
numeric = np.zeros_like(z)
for index in np.ndindex(z.shape):
    step = np.zeros_like(z)
    step[index] = h
    numeric[index] = (m.cross_entropy(z + step, y, "sum") - m.cross_entropy(z - step, y, "sum")) / (2 * h)
error = np.abs(m.cross_entropy_grad(z, y, "sum") - numeric).max()
assert error < 1e-7, error
print(f"largest difference from central differences: {error:.1e}")"""),
]


def build() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, text in CELLS:
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(make(text))
    for n, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{n}"
    return nb


def main() -> None:
    nb = build()
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(nb, PATH)
    print(f"wrote {PATH}")


if __name__ == "__main__":
    main()
