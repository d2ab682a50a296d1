"""Speed and memory of the generated `cross_entropy_with_grad` against peers, in one process.

Mean reduction, float32, N = 4096 rows, K = 1000 classes, integer labels and probability
targets; the runs of all contestants are interleaved so that each sees the same machine.
Peers: (a) the best NumPy written by hand (max-shift, exp, sum, log, in place), (b) one built
on scipy.special.log_softmax, (c) SymPy's plain lambdify of the same formula (per element, on a
smaller problem), (d) PyTorch's cross_entropy + backward on the CPU, if torch is installed.
Peak extra memory is measured with tracemalloc, in units of one N x K float32 array.

    python benchmarks/bench_codegen.py [--repeat R] [--rows N] [--classes K]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
import tracemalloc

import numpy as np

import derive


def hand_written(logits, target):
    """The best plain NumPy: max-shift, exp, sum, log, in place, gather for labels."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(shifted)
    total = probs.sum(axis=-1, keepdims=True)
    probs /= total
    shifted -= np.log(total)                       # now log-softmax
    if target.ndim == logits.ndim:
        loss = -np.einsum("nk,nk->n", target, shifted).mean()
        probs *= target.sum(axis=-1, keepdims=True)
        probs -= target
    else:
        rows = np.arange(n)
        loss = -shifted[rows, target].mean()
        probs[rows, target] -= 1
    probs /= n
    return loss, probs


def scipy_based(logits, target):
    from scipy.special import log_softmax
    n = logits.shape[0]
    log_probs = log_softmax(logits, axis=-1)
    probs = np.exp(log_probs)
    if target.ndim == logits.ndim:
        loss = -(target * log_probs).sum(axis=-1).mean()
        grad = probs * target.sum(axis=-1, keepdims=True) - target
    else:
        rows = np.arange(n)
        loss = -log_probs[rows, target].mean()
        grad = probs.copy()
        grad[rows, target] -= 1
    return loss, grad / n


def sympy_lambdify(size):
    """SymPy's lambdify of the derived gradient (Σ_i y_i) q_k - y_k and of E, one row at a time."""
    import sympy
    from derive.model import E, K, k, z, y, expand_abbreviations
    zs, ys = sympy.symbols(f"z0:{size}"), sympy.symbols(f"y0:{size}")
    grad_expr = derive.derivation("logsumexp").steps[-2].expr
    def concrete(expr, kk=None):
        expr = expand_abbreviations(expr).subs({K: size} | ({k: kk + 1} if kk is not None else {}))
        expr = expr.doit()
        return expr.xreplace({z[n + 1]: zs[n] for n in range(size)} | {y[n + 1]: ys[n] for n in range(size)})
    loss_f = sympy.lambdify(zs + ys, concrete(E), "numpy")
    grad_f = [sympy.lambdify(zs + ys, concrete(grad_expr, kk), "numpy") for kk in range(size)]

    def run(logits, target):
        n = logits.shape[0]
        loss = np.mean([loss_f(*row, *t) for row, t in zip(logits, target)])
        grad = np.array([[g(*row, *t) for g in grad_f] for row, t in zip(logits, target)]) / n
        return loss, grad
    return run


def torch_peer():
    try:
        import torch
    except ImportError:
        return None

    def run(logits, target):
        z = torch.from_numpy(logits).requires_grad_(True)
        t = torch.from_numpy(target if target.ndim == logits.ndim else target.astype(np.int64))
        loss = torch.nn.functional.cross_entropy(z, t, reduction="mean")
        loss.backward()
        return loss.item(), z.grad.numpy()
    return run


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def peak_extra(fn, *args) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = fn(*args)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del out
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=1000)
    args = parser.parse_args()
    n, size = args.rows, args.classes
    m = derive.numpy_module()
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3, size=(n, size)).astype(np.float32)
    labels = rng.integers(0, size, size=n)
    probs = rng.dirichlet(np.ones(size), size=n).astype(np.float32)
    ours = lambda z, t: m.cross_entropy_with_grad(z, t, "mean")  # noqa: E731
    contestants = {"generated": ours, "(a) hand-written NumPy": hand_written,
                   "(b) scipy log_softmax": scipy_based}
    torch_run = torch_peer()
    if torch_run is not None:
        contestants["(d) PyTorch CPU"] = torch_run
    array_bytes = n * size * 4

    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print(f"cross_entropy_with_grad, mean, float32, N={n}, K={size}, median of {args.repeat}")
    for kind, target in (("labels", labels), ("probabilities", probs)):
        for name, fn in contestants.items():  # warm up, and check they agree
            loss, grad = fn(logits, target)
            ref_loss, ref_grad = hand_written(logits, target)
            assert abs(float(loss) - float(ref_loss)) < 1e-3 * max(1, abs(float(ref_loss))), name
            assert np.allclose(grad, ref_grad, atol=1e-6), name
        times = {name: [] for name in contestants}
        for _ in range(args.repeat):
            for name, fn in contestants.items():
                times[name].append(timed(fn, logits, target))
        base = statistics.median(times["(a) hand-written NumPy"])
        print(f"\ntarget: {kind}")
        print(f"{'contestant':<26}{'ms':>9}{'vs (a)':>9}{'peak extra (N x K arrays)':>28}")
        for name, fn in contestants.items():
            t = statistics.median(times[name])
            mem = peak_extra(fn, logits, target) / array_bytes
            print(f"{name:<26}{t * 1e3:>9.2f}{t / base:>8.2f}x{mem:>28.2f}")
    rows, classes = 64, 10
    z_small = logits[:rows, :classes].astype(np.float64)
    y_small = np.eye(classes)[labels[:rows] % classes]
    lam = sympy_lambdify(classes)
    t_lam = statistics.median(timed(lam, z_small, y_small) for _ in range(3))
    t_ours = statistics.median(timed(ours, z_small, y_small) for _ in range(3))
    print(f"\n(c) SymPy lambdify, per element, N={rows}, K={classes}: {t_lam * 1e3:.2f} ms, "
          f"generated: {t_ours * 1e3:.3f} ms ({t_lam / t_ours:.0f}x slower)")


if __name__ == "__main__":
    main()
