"""How much a parent's corrections cost each judged picture: one lookup among N stored pictures.

    python benchmarks/bench_corrections.py

For N = 100 … 100,000 random stored corrections (seven 64-bit views each, as shipped), times
``Corrections.match`` (the state database's version check, then a vectorised Hamming scan of
every view) on random pictures, and the hashing of a judged picture (pHash of the decoder's 32×32
glance). Prints a table for RESULTS.md.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.corrections import Corrections  # noqa: E402
from agent.picture_hash import distances, phash  # noqa: E402
from agent.state import StateDB  # noqa: E402


def _timed(action, repeat: int) -> float:
    began = time.perf_counter()
    for _ in range(repeat):
        action()
    return (time.perf_counter() - began) / repeat


def _lookups(n: int, rng: np.random.Generator) -> tuple[float, float]:
    """µs per lookup among ``n`` corrections of seven views each: the whole match, and the scan alone."""
    with tempfile.TemporaryDirectory() as folder:
        state = StateDB(Path(folder) / "state.sqlite3")
        views = rng.integers(0, 2**63, (n, 7), dtype=np.int64)
        with state._lock:
            state._db.execute("BEGIN")
            state._db.executemany("INSERT INTO corrections VALUES (?, 'block', ?, 'x', 0)",
                                  [(i + 1, " ".join(f"{int(h):016x}" for h in row)) for i, row in enumerate(views)])
            state._db.execute("COMMIT")
        state.put_correction(n + 1, "allow", (1, 2), "y", 0)  # bumps the version, as an add does
        corrections = Corrections(state)
        queries = [int(q) for q in rng.integers(0, 2**63, 500, dtype=np.int64)]
        corrections.match(queries[0])  # loads the table once
        began = time.perf_counter()
        for q in queries:
            corrections.match(q)
        lookup = (time.perf_counter() - began) / len(queries)
        flat = corrections._hashes
        began = time.perf_counter()
        for q in queries:
            distances(flat, q)
        scan = (time.perf_counter() - began) / len(queries)
        state.close()
    return lookup * 1e6, scan * 1e6


def main() -> int:
    rng = np.random.default_rng(7)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}")
    glance = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    began = time.perf_counter()
    for _ in range(2000):
        phash(glance)
    print(f"hashing a judged picture (pHash of its 32×32 glance): {(time.perf_counter() - began) / 2000 * 1e6:.0f} µs")
    print("| stored corrections (7 views each) | lookup µs (version check + scan) | scan only µs |")
    print("|---|---|---|")
    for n in (100, 1_000, 10_000, 100_000):
        lookup, scan = _lookups(n, rng)
        print(f"| {n:,} | {lookup:.0f} | {scan:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
