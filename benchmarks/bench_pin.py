"""What one PIN guess costs an attacker holding the key file (issue 16), on this machine.

    python benchmarks/bench_pin.py [--runs 10]

Times one key derivation with the vault's parameters (``agent.vault._ARGON2``: Argon2id, as the
wrap of a version 2 key file) and with the first wave's scrypt (N=2^15, r=8), median of
``--runs``, one thread. An offline guess costs at least one derivation; the figures give how
long every 6-digit PIN takes on one core of this machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    from agent.vault import _ARGON2, _SCRYPT_V1, Keyring

    salt = os.urandom(16)
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, python {platform.python_version()}")
    print("| KDF | parameters | s per guess (median) | all 10^6 six-digit PINs, one core |")
    print("|---|---|---|---|")
    for name, params in (("Argon2id (now)", _ARGON2), ("scrypt (version 1)", _SCRYPT_V1)):
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            Keyring._derive("246824", salt, params)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        shown = ", ".join(f"{k}={v}" for k, v in params.items() if k != "kdf")
        print(f"| {name} | {shown} | {median:.3f} | {median * 1e6 / 86400:.1f} days |")


if __name__ == "__main__":
    main()
