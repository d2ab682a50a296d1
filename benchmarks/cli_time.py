"""How long `derive latex` takes, against `python -c "import sympy"` measured in the same run.

Target: at most 3x.  The first run of `derive latex` checks every step and records the pass
in the cache of checked derivations; the runs timed here are the ones a user makes after it.

    python benchmarks/cli_time.py [--repeat N]
"""
from __future__ import annotations

import argparse
import sys

from peers import medians, timed  # benchmarks/ is on the path of a script run from it

PEER = [sys.executable, "-c", "import sympy"]
OURS = [sys.executable, "-m", "derive", "latex"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    repeat = parser.parse_args().repeat
    first = timed(OURS, cold=False)  # checks the derivations unless a previous run already did
    p, o = medians(PEER, OURS, repeat, cold=False)
    print(f"first `derive latex` (may include checking): {first:.3f} s")
    print(f"python -c 'import sympy'  median of {repeat}: {p:.3f} s")
    print(f"derive latex              median of {repeat}: {o:.3f} s")
    print(f"ratio: {o / p:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
