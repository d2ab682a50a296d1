"""How long `derive check` takes on a cold cache, against `python -c "import sympy"` in the same run.

Target: the whole catalogue checked in at most 5 s, about 10x the import.  Each run of
`derive check` is a new process with an empty cache folder, so it checks every step of every
derivation from scratch (which `derive check` always does anyway).  The two commands are run
in turn, so both see the same load on the machine.  Also prints, for each derivation, the time
of its check in this process, split into the numeric and the symbolic parts.

    python benchmarks/check_time.py [--repeat N]
"""
from __future__ import annotations

import argparse
import sys
import time

from peers import medians  # benchmarks/ is on the path of a script run from it

PEER = [sys.executable, "-c", "import sympy"]
OURS = [sys.executable, "-m", "derive", "check"]


def parts() -> None:
    """Time each derivation's check here, and the share of it spent proving symbolically."""
    import derive
    from derive.check import core
    from derive.derivations import build
    symbolic = 0.0
    original = core.symbolically_equal

    def timed_symbolic(*args, **kwargs):
        nonlocal symbolic
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            symbolic += time.perf_counter() - start
    core.symbolically_equal = timed_symbolic
    print(f"{'derivation':<18} {'steps':>5} {'samples':>8} {'total s':>8} {'symbolic s':>10}  proved")
    for name in derive.names():
        d = build(name)
        symbolic, start = 0.0, time.perf_counter()
        report = core.check(d)
        total = time.perf_counter() - start
        print(f"{name:<18} {len(report.steps):>5} {report.samples:>8} {total:>8.2f} "
              f"{symbolic:>10.2f}  {', '.join(map(str, report.proved)) or '-'}")
    core.symbolically_equal = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    p, o = medians(PEER, OURS, repeat)
    print(f"python -c 'import sympy'        median of {repeat}: {p:.3f} s")
    print(f"derive check (cold cache)       median of {repeat}: {o:.3f} s")
    print(f"ratio: {o / p:.1f}x (target: at most 5 s, about 10x)")
    print()
    parts()


if __name__ == "__main__":
    main()
