"""``veil scan --cluster`` against the local scan (issue 21): files per second on camera-like 1080p
JPEGs, Ray's cost per file, and the driver's peak memory.

    python benchmarks/bench_cluster.py [--files 10000] [--overhead-files 10000] [--regions off]

Every run is a real ``veil scan DIR --format csv -o FILE`` process:
  local   - the local scan (decode threads and inference on this machine's cores)
  1x1     - ``--cluster`` on a Ray cluster of one node with one CPU (``ray start``, tests/ray_cluster.py)
  2x1     - two nodes of one CPU each: does throughput follow the nodes?
  1x2     - one node with two CPUs
Inputs: ``benchmarks/realistic_inputs.camera_jpegs`` (real wallpapers, camera grain, q90), bits
per pixel printed. Ray's cost per file: the same runs over files that are not media (passed over
after the sniff reads their first bytes), so what is timed is the walk, the tasks and the answers.
Fixed cost: a run over one file (connecting, the workers loading the model). The ``veil scan``
process's CPU time per file and peak RSS (ru_maxrss): under ``--cluster`` that process is only the
driver (the nodes are processes of their own), so these are the driver's costs.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from realistic_inputs import CACHE, bits_per_pixel, camera_jpegs  # noqa: E402

from tests.ray_cluster import ray_cluster  # noqa: E402

LAYOUTS = {"1x1": [1], "2x1": [1, 1], "1x2": [2]}


def linked_folder(files: list[Path], folder: Path, count: int | None = None) -> Path:
    """``count`` files (default: as many as given) hard-linked into a folder of their own, the
    given ones in turn: the scan sees exactly these, and judges each name as a file of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(len(files) if count is None else count):
        os.link(files[i % len(files)], folder / f"{i:06}.jpg")
    return folder


def not_media(count: int, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"{i:06}.dat").write_bytes(b"plain data, not a picture\n" * 4)
    return folder


def veil_scan(folder: Path, out: Path, env: dict[str, str], *extra: str) -> tuple[float, int, float, float]:
    """Seconds, rows written, peak RSS (MiB) and CPU seconds of one ``veil scan`` process."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "agent", "scan", str(folder), "--format", "csv", "-o", str(out), *extra],
                            env={**env, "VEIL_CONFIG": "/nonexistent/veil.toml"}, cwd=REPO, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1, 3):
        raise SystemExit(f"veil scan failed ({proc.returncode}): {err[-2000:]}")
    rows = max(0, len(out.read_text().splitlines()) - 1)
    return seconds, rows, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--distinct", type=int, help="build only this many distinct JPEGs and link them in turn up to --files "
                        "(building takes ~0.3 s a file on 2 busy cores; the scan's work per file is the same)")
    parser.add_argument("--overhead-files", type=int, default=10_000)
    parser.add_argument("--regions", choices=("on", "off"), default="off",
                        help="off (default): ~7× less work per file, so Ray's share of the time shows at its largest")
    parser.add_argument("--layouts", default=",".join(LAYOUTS))
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}, "
          f"load average before {os.getloadavg()[0]:.1f}")
    import ray

    print(f"ray {ray.__version__}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    jpegs = camera_jpegs(min(args.files, args.distinct or args.files), folder=CACHE / "cluster-jpeg-1920x1080-q90")
    print(f"inputs: {args.files} 1920×1080 JPEGs q90 ({len(jpegs)} distinct), {bits_per_pixel(jpegs):.2f} bits/pixel "
          f"({sum(p.stat().st_size for p in jpegs) / len(jpegs) / 1e6:.2f} MB each), --regions {args.regions}")
    work = Path(tempfile.mkdtemp(prefix="vbc-"))
    try:
        sets = {"jpeg": linked_folder(jpegs, work / "jpeg", args.files), "not media": not_media(args.overhead_files, work / "plain"),
                "one file": linked_folder(jpegs[:1], work / "one")}
        runs: list[tuple[str, str, float, int, float, float]] = []

        def measure(layout: str, env: dict[str, str], *extra: str) -> None:
            for name, folder in sets.items():
                seconds, rows, rss, cpu = veil_scan(folder, work / "out.csv", env, "--regions", args.regions, *extra)
                runs.append((layout, name, seconds, rows, rss, cpu))
                print(f"  {layout:6} {name:10} {seconds:8.2f} s {rows:7} rows {rss:7.0f} MiB, process CPU {cpu:6.2f} s", flush=True)

        measure("local", dict(os.environ))
        for layout in args.layouts.split(","):
            with ray_cluster(work / f"r{layout}", LAYOUTS[layout]) as env:
                measure(layout, env, "--cluster", "auto")
        print()
        print("| run | JPEGs/s | per JPEG (fixed cost out) | not-media files/s | per not-media file | fixed cost s "
              "| veil process CPU per JPEG | peak RSS of the veil process MiB |")
        print("|---|---|---|---|---|---|---|---|")
        for layout in ["local", *args.layouts.split(",")]:
            got = {name: (s, rows, rss, cpu) for lay, name, s, rows, rss, cpu in runs if lay == layout}
            fixed, _, _, fixed_cpu = got["one file"]
            jpeg_s, jpeg_rows, jpeg_rss, jpeg_cpu = got["jpeg"]
            plain_s, _, plain_rss, _ = got["not media"]
            print(f"| {layout} | {jpeg_rows / jpeg_s:.1f} | {(jpeg_s - fixed) / jpeg_rows * 1000:.1f} ms | "
                  f"{args.overhead_files / plain_s:.0f} | {(plain_s - fixed) / args.overhead_files * 1000:.2f} ms | {fixed:.1f} | "
                  f"{(jpeg_cpu - fixed_cpu) / jpeg_rows * 1000:.2f} ms | {max(jpeg_rss, plain_rss):.0f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
