"""The folder agent (`veil run --no-tray`) as a user runs it, measured from outside.

    python benchmarks/bench_agent.py [--files 2000] [--idle-s 60] [--photos camera-1080p|camera-12mp|committed] [--no-regions]

1. Latency: with the agent idle, one file at a time is written into a watched folder (60 files,
   benign photos and canaries alternating, 1 s apart); latency = the decision's audit-row time
   minus the moment the writer closed the file (same clock).
2. Burst throughput: ``--files`` unique files (4 in 5 benign photos, 1 in 5 canaries) written as
   fast as 4 threads can; files decided per second from the first write to the last decision.
   Then the same again with every other file named ``.dat`` (judged by its content: sniffed first).
3. Idle CPU: five watched folders, nothing happening, for ``--idle-s`` seconds; the agent's
   user+system CPU time from /proc, as a percentage of one core.
4. Peak RSS: the agent's VmHWM at the end of all of the above.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.agent_process import Agent, folder_rows, wait_until, write_config  # noqa: E402
from tests.media import child_benign_photos, child_flagged_canaries, machine_line  # noqa: E402


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_share(pid: int, seconds: float) -> float:
    """The process's CPU use over the next ``seconds``, in % of one core."""
    cpu0, t0 = _cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (_cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _row_time(row: dict) -> float:
    return datetime.fromisoformat(row["time"].replace("Z", "+00:00")).timestamp()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--idle-s", type=float, default=60)
    parser.add_argument("--photos", choices=("camera-1080p", "camera-12mp", "committed"), default="camera-1080p",
                        help="benign photos: camera-like JPEGs (benchmarks/realistic_inputs.py, 40 distinct shots) or "
                        "the committed 512-px fixtures (small and smooth: they flatter every decoder)")
    parser.add_argument("--no-regions", action="store_true", help="the agent with [model] regions = false")
    args = parser.parse_args()
    if args.photos == "committed":
        photo_files = child_benign_photos()
    else:
        from benchmarks.realistic_inputs import bits_per_pixel, camera_jpegs

        size, quality = ((1920, 1080), 90) if args.photos == "camera-1080p" else ((4000, 3000), 92)
        photo_files = camera_jpegs(40, size, quality)
        print(f"benign photos: {args.photos}, {bits_per_pixel(photo_files):.2f} bits/px")
    photos = [p.read_bytes() for p in photo_files]
    canaries = [p.read_bytes() for p in child_flagged_canaries()]
    rng = random.Random(1)
    print(machine_line())
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        folders = [root / f"watched-{i}" for i in range(5)]
        for folder in folders:
            folder.mkdir()
        data = root / "data"
        agent = Agent(write_config(root, folders, extra="[model]\nregions = false\n" if args.no_regions else ""))
        pid = agent.proc.pid
        try:
            time.sleep(3)  # the start-up walk is over
            # 1. latency, one file at a time
            closes = {}
            for i in range(60):
                path = folders[i % 5] / f"one-{i:03d}.{'png' if i % 2 else 'jpg'}"
                payload = (canaries if i % 2 else photos)[i % len(canaries)] + f"\nlatency-{i}".encode()
                with open(path, "wb") as handle:
                    handle.write(payload)
                closes[str(path)] = time.time()
                wait_until(lambda n=i: len(folder_rows(data)) > n, 30, every=0.01)
                time.sleep(1.0)
            latencies = sorted((_row_time(r) - closes[r["subject"]]) * 1000 for r in folder_rows(data) if r["subject"] in closes)
            p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95) - 1]
            print(f"latency close → decision, idle agent ({len(latencies)} files): p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {latencies[-1]:.0f} ms")

            # 2. burst throughput: media names, then half the files under names that are not
            # (media content all the same: the decider sniffs them before it hashes and decodes)
            def burst(tag: str, odd_name: bool) -> None:
                before = len(folder_rows(data))
                items = []
                for i in range(args.files):
                    canary = i % 5 == 0
                    payload = rng.choice(canaries if canary else photos) + f"\n{tag}-{i}".encode()
                    suffix = "dat" if odd_name and i % 2 else ("png" if canary else "jpg")
                    items.append((folders[i % 5] / f"{tag}-{i:05d}.{suffix}", payload))
                started = time.time()
                with ThreadPoolExecutor(4) as writers:
                    list(writers.map(lambda item: item[0].write_bytes(item[1]), items))
                written = time.time() - started
                wait_until(lambda: len(folder_rows(data)) >= before + args.files, 1200, every=0.5)
                rows = folder_rows(data)[before:]
                last = max(_row_time(r) for r in rows)
                print(f"burst ({'half under .dat names' if odd_name else 'media names'}): {len(rows)} files (written in {written:.1f} s) "
                      f"decided in {last - started:.1f} s: {len(rows) / (last - started):.0f} files/s; "
                      f"{sum(r['action'] == 'quarantine' for r in rows)} quarantined")

            burst("burst", odd_name=False)
            burst("mixed", odd_name=True)

            # 3. idle CPU
            time.sleep(5)
            idle = _cpu_share(pid, args.idle_s)
            print(f"idle CPU, five watched folders, {args.idle_s:.0f} s: {idle:.2f} % of one core")
            print(f"peak RSS: {_peak_rss_mb(pid):.0f} MB")
        finally:
            agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
