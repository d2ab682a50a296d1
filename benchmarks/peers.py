"""Timing a command against a peer command, run in turn in new processes (shared by the scripts
that time whole commands)."""
from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time


def timed(command: list[str], cold: bool = True) -> float:
    """Seconds one run of ``command`` takes; ``cold`` gives it an empty cache of passed checks."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "DERIVE_CACHE_DIR": cache} if cold else None
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
        return time.perf_counter() - start


def medians(peer: list[str], ours: list[str], repeat: int, cold: bool = True) -> tuple[float, float]:
    """The median times of ``peer`` and ``ours``, run in turn so that both see the same load."""
    peers, own = [], []
    for _ in range(repeat):
        peers.append(timed(peer, cold))
        own.append(timed(ours, cold))
    return statistics.median(peers), statistics.median(own)
