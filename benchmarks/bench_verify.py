"""How long `derive.verify` takes on a chain of equalities, on a warm start.

The working is derive's own printed LaTeX of the chain-rule and the log-sum-exp derivations,
one after the other (20 lines), and the first article's derivation (7 lines).  A first call
warms the process (imports, grammars, SymPy's caches); the median of --repeat further calls is
reported, against the target of 3 s for 15 lines, and per line.  A peer in the same process:
derive's own check of the same two derivations (`derive.check.check`), whose steps are the
same equalities.

    python benchmarks/bench_verify.py [--repeat R]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

from derive import derivation
from derive.check import check
from derive.render import render
from derive.verify import verify

SEED = Path(__file__).resolve().parents[1].parent / "shared" / "seeds" / "000_62309e1a65c3efe3.txt"


def article() -> str | None:
    if not SEED.exists():
        return None
    lines = SEED.read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if line.startswith(("$$Loss = ", "$$\\begin{split}")))


def median_s(call, repeat: int) -> float:
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    routes = ["chain", "logsumexp"]
    printed = render("latex", [derivation(r) for r in routes])
    lines = len(verify(printed, assume="one-hot").lines)
    print(f"{platform.machine()}, {platform.python_version()}, median of {args.repeat} warm calls")
    print("| working | lines | s | s a line | target |")
    print("|---|---|---|---|---|")
    took = median_s(lambda: verify(printed, assume="one-hot"), args.repeat)
    print(f"| derive latex --route chain, logsumexp | {lines} | {took:.2f} | "
          f"{took / lines:.3f} | {3.0 * lines / 15:.1f} s ({lines} lines at 3 s for 15) |")
    text = article()
    if text is not None:
        count = len(verify(text, label="y").lines)
        took = median_s(lambda: verify(text, label="y"), args.repeat)
        print(f"| the first article, --label y | {count} | {took:.2f} | {took / count:.3f} | |")
    peer = median_s(lambda: [check(derivation(r)) for r in routes], args.repeat)
    print(f"| peer: derive's own check of the same derivations | {lines} | {peer:.2f} | "
          f"{peer / lines:.3f} | |")


if __name__ == "__main__":
    main()
