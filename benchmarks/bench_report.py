"""What ``veil report`` costs on a long audit log: seconds and peak memory to make the page.

    python benchmarks/bench_report.py [--rows 10000 100000 1000000]

Writes a synthetic audit log of N rows with a valid hash chain (the agent's own encoding): an
agent start each day, a heartbeat every 10 minutes, folder rows (1 in 20 flagged and quarantined,
in 50 folders), a screen episode a day. Then, in a fresh process per size, times ``veil report
-o page.html`` with ``--since all`` (the whole log: the worst case) and ``--since 7d`` (what the
tray's Open report… asks for) and reads each one's peak RSS. Prints a table for RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.audit import COLUMNS, GENESIS, AuditLog, AuditRecord, _encode, chain_hash, log_files  # noqa: E402


def write_log(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.time() - rows * 6.0  # a row every 6 s of history
    previous = GENESIS
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(_encode(list(COLUMNS)) + "\n")
        for n in range(rows):
            at = start + n * 6.0
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
            if n % 14_400 == 0:
                row = [stamp, "agent", "start", "", "child", "", "", "", "", "", "profile child", ""]
            elif n % 100 == 0:
                row = [stamp, "agent", "heartbeat", "", "child", "", "", "", "", "", "protecting (child)", ""]
            elif n % 14_400 == 7_000:
                row = [stamp, "screen", "screen:1", "", "child", "m", "0.9100", "0.30", "malign", "blur",
                       f"episode {stamp} to {stamp} (12.0 s), peak 0.91 (porn); ended: content gone", ""]
            elif n % 20 == 0:
                row = [stamp, "folder", f"/home/kid/folder-{n % 50}/f{n}.jpg", "ab" * 32, "child", "m", "0.8800", "0.30",
                       "malign", "quarantine", f"vault entry e{n:08x}", "12.0"]
            else:
                row = [stamp, "folder", f"/home/kid/folder-{n % 50}/f{n}.jpg", "ab" * 32, "child", "m", "0.0100", "0.30",
                       "benign", "none", "", "9.0"]
            digest = chain_hash(previous, row)
            out.write(_encode([*row, previous, digest]) + "\n")
            previous = digest
    # one row through the agent's own writer, which keeps the chain head beside the log, as a real log has
    AuditLog(path).append(AuditRecord("agent", "heartbeat", detail="protecting (child)", profile="child"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    print("| audit rows | log MB | --since all: seconds | peak RSS MB | --since 7d (the tray's): seconds | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as folder:
            data = Path(folder) / "data"
            log = data / "audit" / "audit.csv"
            write_log(log, rows)
            config = Path(folder) / "config.toml"
            config.write_text(f'[agent]\ndata_dir = "{data}"\n')
            figures = []
            for since in ("all", "7d"):
                began = time.perf_counter()
                done = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "agent", "report", "--config", str(config),
                                       "--since", since, "-o", str(Path(folder) / "page.html")],
                                      capture_output=True, text=True, cwd=REPO)
                took = time.perf_counter() - began
                if done.returncode != 0:
                    print(done.stderr, file=sys.stderr)
                    return 1
                figures += [f"{took:.1f}", f"{int(done.stderr.strip().splitlines()[-1]) / 1024:.0f}"]
            size = sum(f.stat().st_size for f in log_files(log))  # the writer rotated a long log: every file counts
            print(f"| {rows:,} | {size / 1e6:.0f} | " + " | ".join(figures) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
