"""The generated PyTorch and JAX losses against their peers, each contestant in its own process.

Loss and gradient of N = 4096 rows, K = 1000 classes, float32 logits ~ N(0, 1)·3 (seeded;
--scale sets the 3: at 30, as for a model that has learnt, most rows' top dominates),
integer labels, mean over the rows:

- torch: the catalogue's generated `cross_entropy` + `backward()` against
  `torch.nn.functional.cross_entropy` + `backward()`; the generated focal loss (γ = 2, derived
  from its text) against a careful focal loss by hand through autograd (log-softmax, taken at the
  label first, then (1 - p)^γ of one value a row);
- jax: `jit(value_and_grad)` of the generated `cross_entropy` against the same of optax's
  `softmax_cross_entropy_with_integer_labels`.

Each contestant runs in a fresh process (PyTorch's worker threads keep spinning after a call
and would slow whatever ran next in the same process), on modules generated beforehand by this
script into a temporary folder, so that no process holds SymPy.  In each process a plain copy
of the logits (read once, written once: the memory-traffic floor of a fused loss-and-gradient)
is timed too, and every figure is also given as a ratio to it; in the torch processes, so are
torch.exp and 2^(x log2 e) of the shifted logits, the two ways of computing e^x.  Peak extra
memory is the growth of the process's peak resident set (ru_maxrss) over the timed calls,
beyond the logits; on a GPU it would be torch.cuda.max_memory_allocated.  Medians of --repeat calls after warm-up, in
each of --rounds processes a contestant, run in turn with its peer's; each figure is from the
process whose median is the median of those.

Targets: generated/F.cross_entropy ≤ 1.0×, generated/hand-written focal ≤ 0.8×,
generated/optax ≤ 1.1×.

    python benchmarks/bench_backends.py [--repeat R] [--rounds P] [--rows N] [--classes K]
                                        [--scale S]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOCAL = "-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)"
GAMMA = 2.0
PAIRS = [("torch", "generated cross-entropy", "torch-ce", "F.cross_entropy", "torch-F", 1.0),
         ("torch", "generated focal", "torch-focal", "focal by hand", "torch-hand-focal", 0.8),
         ("jax", "generated cross-entropy", "jax-ce", "optax", "jax-optax", 1.1)]


def _median_ms(step, repeat, sync):
    for _ in range(5):
        sync(step())
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        sync(step())
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _middle(runs):
    """The run of a contestant whose time is the median of its processes' (the upper middle of
    an even number): on a shared machine one process can be slowed throughout by another."""
    return sorted(runs, key=lambda r: r["ms"])[len(runs) // 2]


def _peak_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_torch(name, folder, rows, classes, repeat, scale):
    import numpy as np
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, folder)
    rng = np.random.default_rng(0)
    z = torch.tensor(rng.normal(size=(rows, classes)) * scale, dtype=torch.float32)
    labels = torch.tensor(rng.integers(0, classes, rows))
    if name == "torch-ce":
        import softmax_cross_entropy_torch as m

        def loss(x):
            return m.cross_entropy(x, labels)
    elif name == "torch-F":
        def loss(x):
            return F.cross_entropy(x, labels)
    elif name == "torch-focal":
        import focal as m

        def loss(x):
            return m.loss(x, labels, gamma=GAMMA)
    else:
        def loss(x):
            log_p = torch.log_softmax(x, dim=-1).gather(-1, labels[:, None])[:, 0]
            return -((-torch.expm1(log_p)) ** GAMMA * log_p).mean()

    def step():
        x = z.detach().requires_grad_()
        value = loss(x)
        value.backward()
        return value, x.grad

    before = _peak_kib()
    ms = _median_ms(step, repeat, lambda out: None)
    extra = _peak_kib() - before
    copy = _median_ms(lambda: z.clone(), repeat, lambda out: None)
    shifted = z - z.amax(-1, keepdim=True)
    buffer = torch.empty_like(z)
    exp = _median_ms(lambda: torch.exp(shifted, out=buffer), repeat, lambda out: None)
    exp2 = _median_ms(lambda: torch.exp2(torch.mul(shifted, 1 / math.log(2), out=buffer),
                                         out=buffer), repeat, lambda out: None)
    value, grad = step()
    return {"ms": ms, "floor_ms": copy, "extra_mib": extra / 1024, "loss": float(value),
            "grad": grad[:2, :4].tolist(), "threads": torch.get_num_threads(),
            "exp_ms": exp, "exp2_ms": exp2}


def run_jax(name, folder, rows, classes, repeat, scale):
    import jax
    import jax.numpy as jnp
    import numpy as np
    sys.path.insert(0, folder)
    rng = np.random.default_rng(0)
    z = jnp.asarray(rng.normal(size=(rows, classes)) * scale, dtype=jnp.float32)
    labels = jnp.asarray(rng.integers(0, classes, rows))
    if name == "jax-ce":
        import softmax_cross_entropy_jax as m

        def loss(x):
            return m.cross_entropy(x, labels).mean()
    else:
        import optax

        def loss(x):
            return optax.softmax_cross_entropy_with_integer_labels(x, labels).mean()
    step = jax.jit(jax.value_and_grad(loss))
    copy = jax.jit(lambda x: x * 1)

    def sync(out):
        jax.block_until_ready(out)
    before = _peak_kib()
    ms = _median_ms(lambda: step(z), repeat, sync)
    extra = _peak_kib() - before
    floor = _median_ms(lambda: copy(z), repeat, sync)
    value, grad = step(z)
    return {"ms": ms, "floor_ms": floor, "extra_mib": extra / 1024, "loss": float(value),
            "grad": np.asarray(grad[:2, :4]).tolist()}


def _generate(folder):
    """The modules the contestants import: the catalogue's (from output/) and the focal loss's."""
    import derive
    from derive.codegen import own
    for backend in ("torch", "jax"):
        name = f"softmax_cross_entropy_{backend}.py"
        (Path(folder) / name).write_text((ROOT / "output" / name).read_text())
    spec = own.spec(derive.gradient(FOCAL), "focal")
    from derive.codegen.backends import get
    (Path(folder) / "focal.py").write_text(own.checked_source(spec, get("torch")))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--scale", type=float, default=3.0,
                        help="the logits' standard deviation (default 3)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="processes for each contestant, interleaved (default 5)")
    parser.add_argument("--contestant", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.contestant:
        run = run_torch if args.contestant.startswith("torch") else run_jax
        print(json.dumps(run(args.contestant, args.folder, args.rows, args.classes, args.repeat,
                             args.scale)))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        _generate(folder)
        runs = {}
        for _ in range(args.rounds):  # the pairs' processes interleaved, round after round
            for _, _, ours, _, theirs, _ in PAIRS:
                for name in (ours, theirs):
                    time.sleep(1)  # let the last process's threads wind down
                    out = subprocess.run([sys.executable, __file__, "--contestant", name,
                                          "--folder", folder, "--rows", str(args.rows),
                                          "--classes", str(args.classes), "--repeat",
                                          str(args.repeat), "--scale", str(args.scale)],
                                         capture_output=True, text=True, check=True,
                                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
                    runs.setdefault(name, []).append(
                        json.loads(out.stdout.strip().splitlines()[-1]))
        results = {name: _middle(r) for name, r in runs.items()}
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"N = {args.rows}, K = {args.classes}, logits ~ N(0, 1)·{args.scale:g}, float32, integer "
          f"labels, loss and gradient, "
          f"median of {args.repeat} calls in each process, median of {args.rounds} processes")
    print(f"| | ms | × floor | peak extra MiB | peer ms | × floor | peak extra MiB | ratio "
          f"(target) |\n|---|---|---|---|---|---|---|---|")
    failed = False
    for backend, what, ours, peer, theirs, target in PAIRS:
        a, b = results[ours], results[theirs]
        ratio = a["ms"] / b["ms"]
        failed |= ratio > target
        print(f"| {backend}: {what} vs {peer} | {a['ms']:.2f} | {a['ms'] / a['floor_ms']:.1f} | "
              f"{a['extra_mib']:.0f} | {b['ms']:.2f} | {b['ms'] / b['floor_ms']:.1f} | "
              f"{b['extra_mib']:.0f} | {ratio:.2f}× (≤ {target}×) |")
        if abs(a["loss"] - b["loss"]) > 1e-4 * abs(b["loss"]):
            print(f"  losses differ: {a['loss']} and {b['loss']}")
            failed = True
    floors = ", ".join(f"{name} {r['floor_ms']:.2f} ms" for name, r in results.items())
    print(f"copy of the logits (the floor), in each process: {floors}")
    exps = ", ".join(f"{name} {r['exp_ms']:.2f} and {r['exp2_ms']:.2f} ms"
                     for name, r in results.items() if "exp_ms" in r)
    print(f"torch.exp, and 2^(x log2 e) as the generated lines compute e^x in float32 on the "
          f"CPU, of the shifted logits: {exps}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
