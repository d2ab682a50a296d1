"""How long deriving a loss of your own takes: a cold `derive latex --loss` of focal loss against
`python -c "import sympy"` in the same run, and `derive.gradient` for each example loss.

Target: the cold command in at most 3 s.  Each run is a new process with an empty cache folder;
the two commands run in turn, so that both see the same load on the machine.  The table times
`derive.gradient` (derive the steps, then check every one) in this process, each loss once.

    python benchmarks/own_loss_time.py [--repeat N]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from peers import medians  # benchmarks/ is on the path of a script run from it

FOCAL = "-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)"
PEER = [sys.executable, "-c", "import sympy"]
OURS = [sys.executable, "-m", "derive", "latex", "--loss", FOCAL]


def table() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import derive
    from test_auto import LOSSES
    print(f"{'loss':<28} {'steps':>5} {'derive.gradient s':>18}")
    for name, text, assume, _, _ in LOSSES:
        start = time.perf_counter()
        d = derive.gradient(text, assume=assume)
        print(f"{name:<28} {len(d.steps):>5} {time.perf_counter() - start:>18.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    p, o = medians(PEER, OURS, repeat)
    print(f"python -c 'import sympy'            median of {repeat}: {p:.3f} s")
    print(f"derive latex --loss FOCAL (cold)    median of {repeat}: {o:.3f} s")
    print(f"ratio: {o / p:.1f}x (target: at most 3 s)")
    print()
    table()


if __name__ == "__main__":
    main()
