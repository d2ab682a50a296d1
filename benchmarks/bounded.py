"""What the expensive inputs cost: time, exit status and peak memory of `derive check --loss`
for inputs that once ran for minutes or ran out of memory, each in a new process, against
`python -c "import sympy"` run the same way (the ratio is the input's cost in units of a start).

Each command runs under a small parent that reports the peak resident memory of its one child
(``RUSAGE_CHILDREN``), so no other process is counted.  ``--timeout`` is the deadline given
to derive (60 s, the default, shows what the whole derivation takes; 5 s shows the deadline).

    python benchmarks/bounded.py [--timeout SECONDS]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

INPUTS = {
    "power of a sum": "sum((q[i] + y[i] + z[i])**64, i)",
    "5 nested sums": "sum(sum(sum(sum(sum(q[a]*q[d]*q[f]*q[g]*q[h], a), d), f), g), h)",
    "6 nested sums": "sum(sum(sum(sum(sum(sum(q[a]*q[d]*q[f]*q[g]*q[h]*q[j], a), d), f), g), "
                     "h), j)",
    "8 nested sums": "sum(sum(sum(sum(sum(sum(sum(sum(q[a]*q[d]*q[f]*q[g]*q[h]*q[i]*q[j]*q[m], "
                     "a), d), f), g), h), i), j), m)",
    "continued fraction, 20 levels": "1/(1 + " * 20 + "q[c]" + ")" * 20,
}

MEASURE = """
import json, resource, subprocess, sys, time
start = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"seconds": time.monotonic() - start, "code": done.returncode,
                  "err": done.stderr.strip()[:70],
                  "mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def measured(argv: list[str], env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, *argv], capture_output=True,
                         text=True, env=env, check=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    env = dict(os.environ, DERIVE_CACHE_DIR=tempfile.mkdtemp(prefix="derive-bench-"))
    peer = measured([sys.executable, "-c", "import sympy"], env)
    print(f"peer: import sympy {peer['seconds']:.2f} s, {peer['mb']:.0f} MB")
    print(f"{'input':<31} {'s':>6} {'x peer':>7} {'MB':>6} exit  message")
    for name, loss in INPUTS.items():
        run = measured([sys.executable, "-m", "derive", "check", "--timeout",
                        f"{args.timeout:g}", "--loss", loss], env)
        print(f"{name:<31} {run['seconds']:6.2f} {run['seconds'] / peer['seconds']:7.1f} "
              f"{run['mb']:6.0f} {run['code']:>4}  {run['err']}")


if __name__ == "__main__":
    main()
