"""Write notebooks/softmax_cross_entropy.ipynb from the cells below and execute it in place.

    python notebooks/make_notebook.py

The committed notebook keeps its outputs so that it reads well on GitHub; the test suite runs it
again with a real Jupyter kernel, and checks that the committed step tables match the
derivations as they are now: run this again whenever a derivation of the tables changes. Two
runs on an unchanged project write the same bytes.
"""
import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
PATH = HERE / "softmax_cross_entropy.ipynb"

CELLS = [
    ("markdown", r"""# Softmax cross-entropy, derived and checked

This notebook builds the two derivations of $\partial E/\partial z_k$ for
$E = -\sum_i y_i \log q_i$, $q = \mathrm{softmax}(z)$, for a symbolic number of classes $K$;
evaluates every step at the worked example of the articles; plots the loss and the gradient; and
checks the generated NumPy code against central differences.

Classes are numbered $1, \dots, K$ here, as in the derivations. The Python API counts positions
from 0: class $k$ is `k=k - 1` for `derive.evaluate`, column `k - 1` of an array, and label
`k - 1` for the generated code. The cells below convert wherever they call the API."""),
    ("code", """import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

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
    ("markdown", r"""## Every step at the worked example
The articles' example: logits $z = (1, 2, 0.5)$ and true class 2, so $y = (0, 1, 0)$; the loss is
$E = 0.4644$ and the gradient $(0.2312, -0.3715, 0.1402)$. Each step of both routes is evaluated
at every class $k = 1, 2, 3$: a step about the loss itself has one value, $E$; a step about
$\partial E/\partial z_k$ has one a class. The target is one-hot, so it satisfies every fact the
steps use (the one-hot special case takes $c = 2$), and every step gives the same gradient, the
true class's component $-0.3715$ included."""),
    ("code", """z, y = [1.0, 2.0, 0.5], [0.0, 1.0, 0.0]  # the worked example
true_class = 2                            # classes are numbered 1..K
classes = range(1, len(z) + 1)


def at_example(step):
    \"\"\"The step at the worked example: [E] for a step about the loss, else ∂E/∂z_k for k = 1..K.\"\"\"
    if step.lhs == E:
        return [derive.evaluate(step.expr, z, y, c=true_class - 1)]
    return [derive.evaluate(step.expr, z, y, k=k - 1, c=true_class - 1) for k in classes]


def step_table(d):
    sub = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
    number = lambda v: f"{v:.4f}".replace("-", "−")
    heads = ["step", "rule", "E"] + [
        f"∂E/∂z{str(k).translate(sub)}" + (" (true class)" if k == true_class else "") for k in classes]
    lines = [f"**{d.name}** at z = (1, 2, 0.5), true class {true_class}", "",
             "| " + " | ".join(heads) + " |", "| ---: | --- |" + " ---: |" * (1 + len(classes))]
    for n, step in enumerate(d.steps, 1):
        values = [number(v) for v in at_example(step)]
        cells = values + [""] * len(classes) if step.lhs == E else [""] + values
        rule = ("special case: " if step.aside else "") + step.title.replace("|", "\\\\|")
        lines.append(f"| {n} | {rule} | " + " | ".join(cells) + " |")
    return Markdown("\\n".join(lines))


for d in (route, chain):
    display(step_table(d))"""),
    ("code", """m = derive.numpy_module()
loss0, grad0 = m.cross_entropy_with_grad(np.array(z), true_class - 1)  # label 1 is class 2
assert round(float(loss0), 4) == 0.4644 and np.array_equal(grad0.round(4), [0.2312, -0.3715, 0.1402])
for d in (route, chain):  # every step agrees with the generated code, at every class
    for step in d.steps:
        expected = [loss0] if step.lhs == E else grad0
        assert np.allclose(at_example(step), expected, rtol=1e-12, atol=1e-12), (d.name, step.rule)
print(f"E = {loss0:.4f}, ∂E/∂z = {grad0.round(4)}: every step of both routes agrees")"""),
    ("markdown", r"""## Loss and gradient as the true class's logit moves
$z_2$ runs over $[-6, 8]$ with $z_1 = 1$ and $z_3 = 0.5$ held; the dots are the worked example,
$z_2 = 2$."""),
    ("code", r"""z2 = np.linspace(-6, 8, 281)
rows = np.tile(z, (z2.size, 1))
rows[:, true_class - 1] = z2
loss, grad = m.cross_entropy_with_grad(rows, np.full(z2.size, true_class - 1))
at = z[true_class - 1]  # z_2 = 2 at the worked example

fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(11, 4.2))
ax_loss.plot(z2, loss, color="black")
ax_loss.plot([at], [loss0], "o", color="black")
ax_loss.annotate(f"worked example\n$z_2 = 2$, $E = {loss0:.4f}$", (at, loss0), xytext=(20, 25),
                 textcoords="offset points", arrowprops=dict(arrowstyle="-", color="gray"))
ax_loss.set(xlabel=r"$z_2$ (logit of the true class)", ylabel=r"$E = -\log q_2$",
            title=r"Loss $E$ at $z = (1,\, z_2,\, 0.5)$, $y = (0, 1, 0)$")

text_at = {1: (3.0, 0.45, "left"), 2: (1.0, -0.17, "right"), 3: (1.0, 0.06, "right")}  # clear of the curves
for k in classes:
    name = r"$\partial E/\partial z_{%d}$" % k + (" (true class)" if k == true_class else "")
    line, = ax_grad.plot(z2, grad[:, k - 1], label=name)
    ax_grad.plot([at], [grad0[k - 1]], "o", color=line.get_color())
    ax_grad.annotate(f"{grad0[k - 1]:.4f}".replace("-", "−"), (at, grad0[k - 1]), xytext=text_at[k][:2],
                     color=line.get_color(), ha=text_at[k][2], va="center", arrowprops=dict(arrowstyle="-", color="gray"))
ax_grad.axhline(0, color="gray", lw=0.5)
ax_grad.axvline(at, color="gray", lw=0.8, ls=":", label="worked example, $z_2 = 2$")
ax_grad.set(xlabel=r"$z_2$ (logit of the true class)", ylabel=r"$\partial E/\partial z_k = q_k - y_k$",
            title=r"Gradient $q_k - y_k$, one curve a class $k$")
ax_grad.legend(loc="lower right")
plt.tight_layout()"""),
    ("markdown", r"""## The softmax Jacobian $\partial q_i/\partial z_k = q_i(\delta_{ik} - q_k)$ at the worked example
The chain route reads the gradient off the true class's row: $\partial E/\partial z_k =
-(1/q_2)\,\partial q_2/\partial z_k$."""),
    ("code", r"""jac = m.softmax_jacobian(np.array(z))
assert np.allclose(jac.sum(axis=0), 0)  # the columns sum to 0: Σ_i q_i = 1 for every z
q0 = m.softmax(np.array(z))
assert np.allclose(-jac[true_class - 1] / q0[true_class - 1], grad0)  # the chain route's row

fig, ax_jac = plt.subplots(figsize=(5.6, 4.4))
limit = abs(jac).max()
im = ax_jac.imshow(jac, cmap="RdBu_r", vmin=-limit, vmax=limit)
for (i, k), value in np.ndenumerate(jac):
    ax_jac.text(k, i, f"{value:.4f}".replace("-", "−"), ha="center", va="center",
                color="white" if abs(value) > 0.6 * limit else "black")
ax_jac.add_patch(plt.Rectangle((-0.5, true_class - 1.5), len(z), 1, fill=False, lw=2, ls="--"))
ax_jac.set_xticks(range(len(z)), [f"{k}" for k in classes])
ax_jac.set_yticks(range(len(z)), [f"{i} (true class)" if i == true_class else f"{i}" for i in classes])
ax_jac.set(xlabel=r"$k$ (logit $z_k$)", ylabel=r"$i$ (probability $q_i$)",
           title=r"$\partial q_i/\partial z_k$ at $z = (1, 2, 0.5)$")
fig.colorbar(im, label=r"$\partial q_i/\partial z_k = q_i(\delta_{ik} - q_k)$")
plt.tight_layout()"""),
    ("markdown", r"""## Your own loss
Any loss written in derive's input language is derived automatically, one rule a step, and every
step is checked, as for the catalogue. Focal loss, $\mathcal{L} = -\sum_i y_i (1 - q_i)^{\gamma}
\log q_i$, for a target that sums to 1:"""),
    ("code", """focal = derive.gradient("-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)", name="Focal loss")
focal"""),
    ("markdown", r"""Its gradient on the true class, against that class's logit, for
$\gamma \in \{0, 1, 2, 5\}$ ($\gamma = 0$ is the cross-entropy). The larger $\gamma$, the less
a well-classified example (large $z_2$) pushes."""),
    ("code", r"""loss_symbol = focal.steps[0].lhs           # ℒ, which stands for the loss as written
gammas = [0, 1, 2, 5]
z2 = np.linspace(-4, 6, 101)
curves = {g: np.array([derive.evaluate(focal.result, [1.0, v, 0.5], y, k=true_class - 1, gamma=g)
                       for v in z2]) for g in gammas}
fig, ax = plt.subplots(figsize=(6.4, 4.0))
for g in gammas:
    ax.plot(z2, curves[g], label=r"$\gamma = %d$" % g)
ax.axhline(0, color="gray", lw=0.5)
ax.set(xlabel=r"$z_2$ (logit of the true class)",
       ylabel=r"$\partial \mathcal{L}/\partial z_2$",
       title=r"Focal loss: $\partial \mathcal{L}/\partial z_2$ at $z = (1,\, z_2,\, 0.5)$, $y = (0, 1, 0)$")
ax.legend()
plt.tight_layout()"""),
    ("markdown", "The derived gradient against central differences of the loss itself:"),
    ("code", """worst = 0.0
for g in gammas:
    for v in (-2.0, 0.5, 2.0, 4.0):
        exact = derive.evaluate(focal.result, [1.0, v, 0.5], y, k=true_class - 1, gamma=g)
        h = 1e-6
        up = derive.evaluate(loss_symbol, [1.0, v + h, 0.5], y, gamma=g)
        down = derive.evaluate(loss_symbol, [1.0, v - h, 0.5], y, gamma=g)
        worst = max(worst, abs(exact - (up - down) / (2 * h)) / max(1.0, abs(exact)))
assert worst < 1e-6, worst
print(f"largest relative difference from central differences: {worst:.1e}")"""),
    ("markdown", "## The generated code against central differences"),
    ("code", """rng = np.random.default_rng(0)
zs = rng.normal(scale=3, size=(4, 6))
ys = rng.dirichlet(np.ones(6), size=4)
h = 1e-6
numeric = np.zeros_like(zs)
for index in np.ndindex(zs.shape):
    step = np.zeros_like(zs)
    step[index] = h
    numeric[index] = (m.cross_entropy(zs + step, ys, "sum") - m.cross_entropy(zs - step, ys, "sum")) / (2 * h)
error = np.abs(m.cross_entropy_grad(zs, ys, "sum") - numeric).max()
assert error < 1e-7, error
print(f"largest difference from central differences: {error:.1e}")"""),
    ("markdown", """## Check your own working
`derive.verify` reads a derivation written by a person, in LaTeX or in the text form, and checks
each line against the one before, with the checker of derive's own steps. Here is the first
article's derivation, with `y` as the label (`--label y` on the command line); a line
`Loss = ...` whose left side is a new name defines it."""),
    ("code", r'''from derive.verify import verify

working = r"""\begin{align*}
Loss &= -\log q_y = -z_y + \log \sum_j e^{z_j} \\
\nabla_{z_i} Loss &= \nabla_{z_i} \log \sum_j e^{z_j} - \nabla_{z_i} z_y \\
&= \frac{e^{z_i}}{\sum_j e^{z_j}} - \nabla_{z_i} z_y \\
&= q_i - \mathbb{1}(y = i)
\end{align*}"""
report = verify(working, label="y")
print(report.text())'''),
    ("markdown", """The same derivation with one mistake, the indicator written at the wrong index: the first
line that does not hold is named, with a sample at which its two sides differ, and derive's own
next step from the line before."""),
    ("code", r'''wrong = working.replace(r"\mathbb{1}(y = i)", r"\mathbb{1}(y = y)")
report = verify(wrong, label="y")
print(report.text())
assert report.first_wrong.step == 4 and report.exit_status == 1'''),
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
    # The kernel inherits the environment: a fixed hash seed fixes the order in which sets print
    # (a Derivation's plain-text form shows the frozensets of facts), so that running this
    # again on an unchanged project writes the same bytes.  No timestamps, for the same reason.
    os.environ["PYTHONHASHSEED"] = "0"
    nb = build()
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(nb, PATH)
    print(f"wrote {PATH}")


if __name__ == "__main__":
    main()
