"""Speed of a generated focal loss against focal loss written by hand in NumPy, in one process.

The focal loss is derived from its text, -sum(y[i]*(1 - q[i])**gamma*log(q[i]), i), by
`derive.numpy_module(text, name="focal")` (built once; the build is not timed), and its
`loss_with_grad(logits, labels, "mean", gamma=2.0)` is timed against the best NumPy a careful
engineer would write for integer labels: max-shift, exp, sum, log-softmax at the label only,
1 - p_t as -expm1(log p_t), one K-wide multiply for the gradient and a scatter at the labels.
For scale, the catalogue's `cross_entropy_with_grad` is timed against two hand-written
cross-entropies: bench_codegen.py's (divides by Σ, subtracts log Σ and divides by N in passes of
their own) and a lean one held to the focal peer's standard (one K-wide multiply by 1/(N·Σ)).
Float32 logits ~ N(0, 1)·3 (seeded), integer labels, mean reduction, N = 4096 rows, K = 1000
classes.  The results are checked to agree before any timing;
the runs are interleaved, generated and hand-written taking turns to go first (the order moves
a 16 MB-array workload by several tenths of a ms), and the table gives medians.

Targets: generated / hand-written at most 1.15x for focal loss, at most 1.05x for cross-entropy.
There is deliberately no PyTorch here: its thread pool disturbs the timings on a 2-core machine.

    python benchmarks/bench_focal.py [--repeat R] [--rows N] [--classes K]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_codegen import hand_written as cross_entropy_by_hand  # noqa: E402

import derive  # noqa: E402

FOCAL = "-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)"
GAMMA = 2.0
FOCAL_TARGET, CROSS_ENTROPY_TARGET = 1.15, 1.05


def focal_by_hand(logits, labels, gamma=GAMMA):
    """Mean focal loss FL = -(1 - p)^γ·log p, p = softmax(z)_c, and ∂FL/∂z, for integer labels c.

    With dp/dz_k = p·(δ_kc - q_k):  ∂FL/∂z_k = g·(q_k - δ_kc),  g = (1 - p)^γ - γ·p·(1 - p)^(γ-1)·log p.
    (1 - p)^(γ-1)·log p is written (1 - p)^γ·r, r = log p / (1 - p) → -1 as p → 1, so that
    g = (1 - p)^γ·(1 - γ·p·r) has no 0·∞ for γ < 1.  Only max, subtract, exp, sum and one
    multiply go over all K columns; everything else is one value a row.
    """
    n = logits.shape[0]
    rows = np.arange(n)
    labels = labels.astype(np.intp, copy=False)
    gamma = logits.dtype.type(gamma)
    grad = np.subtract(logits, logits.max(axis=-1, keepdims=True))  # z - a: the one N x K array
    shifted_at_label = grad[rows, labels]                            # gather before exp overwrites
    np.exp(grad, out=grad)
    total = grad.sum(axis=-1)
    log_p = shifted_at_label - np.log(total)                         # log-softmax at the label
    one_minus_p = -np.expm1(log_p)                                    # exact as p → 1
    ratio = np.full_like(log_p, -1)                                   # log p / (1 - p), limit -1
    np.divide(log_p, one_minus_p, out=ratio, where=one_minus_p != 0)
    weight = one_minus_p ** gamma                                     # (1 - p)^γ
    loss = -(weight * log_p).mean()
    g = weight * (1 - gamma * np.exp(log_p) * ratio)
    g /= n                                                            # mean reduction
    grad *= (g / total)[:, None]                                      # g·q_k / N
    grad[rows, labels] = -g * one_minus_p                             # g·(q_c - 1) / N, no cancellation
    return loss, grad


def cross_entropy_lean(logits, labels):
    """Mean cross-entropy -log q_c and its gradient (q_k - δ_kc) / N, with one N x K array."""
    n = logits.shape[0]
    rows = np.arange(n)
    labels = labels.astype(np.intp, copy=False)
    grad = np.subtract(logits, logits.max(axis=-1, keepdims=True))
    shifted_at_label = grad[rows, labels]
    np.exp(grad, out=grad)
    total = grad.sum(axis=-1)
    loss = (np.log(total) - shifted_at_label).mean()
    grad *= (1 / (n * total))[:, None]                                # q_k / N
    grad[rows, labels] -= 1 / n
    return loss, grad


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def agree(name, got, want, rtol=1e-4):
    """Abort unless ``got`` and ``want`` (loss, grad) agree to ``rtol`` (float32)."""
    (loss, grad), (ref_loss, ref_grad) = got, want
    atol = 1e-6 * float(np.abs(ref_grad).max())  # for entries that are zero in all but rounding
    if grad.shape != ref_grad.shape or grad.dtype != ref_grad.dtype:
        sys.exit(f"{name}: gradient of shape {grad.shape} {grad.dtype}, "
                 f"expected {ref_grad.shape} {ref_grad.dtype}")
    if not np.allclose(float(loss), float(ref_loss), rtol=rtol, atol=0):
        sys.exit(f"{name}: loss {float(loss)!r} disagrees with the hand-written {float(ref_loss)!r}")
    if not np.allclose(grad, ref_grad, rtol=rtol, atol=atol):
        worst = np.abs(grad - ref_grad) / (atol + rtol * np.abs(ref_grad))
        at = np.unravel_index(worst.argmax(), grad.shape)
        sys.exit(f"{name}: gradient disagrees with the hand-written one, worst at {at}: "
                 f"{grad[at]!r} against {ref_grad[at]!r}")
    scale = np.abs(ref_grad) + atol
    return float((np.abs(grad - ref_grad) / scale).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=25)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=1000)
    args = parser.parse_args()
    n, size = args.rows, args.classes

    start = time.perf_counter()
    focal = derive.numpy_module(FOCAL, name="focal")
    build = time.perf_counter() - start
    catalogue = derive.numpy_module()
    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(n, size)) * 3).astype(np.float32)
    labels = rng.integers(0, size, size=n)

    ours_focal = lambda z, c: focal.loss_with_grad(z, c, "mean", gamma=GAMMA)  # noqa: E731
    ours_ce = lambda z, c: catalogue.cross_entropy_with_grad(z, c, "mean")  # noqa: E731
    contests = {  # name: (generated, hand-written, target ratio)
        "focal loss, γ=2": (ours_focal, focal_by_hand, FOCAL_TARGET),
        "cross-entropy vs bench_codegen's": (ours_ce, cross_entropy_by_hand, CROSS_ENTROPY_TARGET),
        "cross-entropy vs lean": (ours_ce, cross_entropy_lean, CROSS_ENTROPY_TARGET),
    }
    errors = {name: agree(name, ours(logits, labels), hand(logits, labels))  # also the warm-up
              for name, (ours, hand, _) in contests.items()}
    runs = {(name, side): [] for name in contests for side in ("generated", "hand")}
    for turn in range(args.repeat):
        for name, (ours, hand, _) in contests.items():
            pair = (("generated", ours), ("hand", hand))
            for side, fn in pair[::-1] if turn % 2 else pair:
                runs[name, side].append(timed(fn, logits, labels))

    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print(f"loss_with_grad, mean, float32, N={n}, K={size}, integer labels, "
          f"median of {args.repeat} interleaved runs; focal module built in {build:.2f} s (not timed)")
    print()
    print("| loss | generated ms | hand-written ms | generated / hand | target | met | max rel. diff |")
    print("|---|---:|---:|---:|---:|:---:|---:|")
    for name, (_, _, target) in contests.items():
        ours = statistics.median(runs[name, "generated"])
        hand = statistics.median(runs[name, "hand"])
        ratio = ours / hand
        print(f"| {name} | {ours * 1e3:.2f} | {hand * 1e3:.2f} | {ratio:.2f}x | ≤ {target:.2f}x "
              f"| {'yes' if ratio <= target else 'no'} | {errors[name]:.1e} |")


if __name__ == "__main__":
    main()
