"""Images per second, file → decision, for Veil's scan, its decoding bound and two peers, one run.

    python benchmarks/bench_scan.py [--sets 12mp,1080p,web] [--rss-files 10000]

Sets (benchmarks/realistic_inputs.py, built once into benchmarks/.cache/realistic): windows of
the real full-size Debian wallpapers with sensor-like grain, so that size and entropy match
camera files; bits per pixel are printed beside each set.
  12mp  - 4000×3000 JPEGs, quality 92, as a phone camera writes them
  1080p - 1920×1080 JPEGs, quality 90
  web   - small web images: PNG, WebP, GIF, at most 800 px, without grain (web images are processed)
Bound: Veil's own decoding alone (sniff, draft decode, resize: ``agent.scan.prepare_file``) on
the same 2 threads, no model: what the scan would reach with free inference.
Peers, each called as its own documentation recommends:
  NudeNet 3.4 - ``NudeDetector().detect_batch(paths, batch_size=8)``, its onnxruntime session made
                with ``intra_op_num_threads`` = the cores, in its own virtual environment
                (benchmarks/.cache/venv-nudenet, created with pip on first use)
  Keras       - a Geacc-style baseline: the float Keras model rebuilt by the converter, full
                Pillow decode, bilinear resize, ``model(x, training=False)`` on batches of 32
                (Keras' advice for small inputs; ``predict`` per image pays its setup each time)
Each tool's model is loaded before its clock starts. Veil runs its real pipeline (``agent.scan``)
with 2 decode threads and 2 inference threads. Peak RSS of a ``veil scan`` subprocess over
``--rss-files`` files is read from the kernel (ru_maxrss).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CACHE = REPO / "benchmarks" / ".cache"
SETS = CACHE / "realistic"
sys.path.insert(0, str(REPO / "benchmarks"))
from realistic_inputs import bits_per_pixel, camera_jpegs, web_images  # noqa: E402

SIZES = {"12mp": 120, "1080p": 300, "web": 450}  # big enough for runs of seconds, not fractions


def build_set(name: str) -> list[Path]:
    if name == "12mp":
        return camera_jpegs(SIZES[name], size=(4000, 3000), quality=92)
    if name == "1080p":
        return camera_jpegs(SIZES[name])
    return web_images(SIZES[name])


def bench_decode(files: list[Path], threads: int = 2) -> float:
    """Veil's decoding alone, on the scan's own thread count: the bound with free inference."""
    from concurrent.futures import ThreadPoolExecutor

    from agent.decode import DecodeLimits
    from agent.scan import ScanItem, prepare_file

    limits = DecodeLimits()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda p: prepare_file(ScanItem(p, explicit=True), limits), files[:4]))
        start = time.perf_counter()
        prepared = list(pool.map(lambda p: prepare_file(ScanItem(p, explicit=True), limits), files))
        elapsed = time.perf_counter() - start
    assert all(p.error is None for p in prepared)
    return len(files) / elapsed


def bench_veil(files: list[Path], regions: bool = True) -> float:
    """Veil's scan as shipped (``regions``: the whole picture and its regions, agent/regions.py)."""
    from agent.classifier import open_classifier
    from agent.config import ModelSection
    from agent.decode import DecodeLimits
    from agent.policy import BUILTIN_PROFILES
    from agent.scan import scan

    limits = DecodeLimits(regions=regions)
    with open_classifier(ModelSection(accelerator="cpu", threads=2)) as classifier:
        list(scan(files[:4], classifier, BUILTIN_PROFILES["child"], threads=2, limits=limits))  # warm up
        start = time.perf_counter()
        done = sum(1 for r in scan(files, classifier, BUILTIN_PROFILES["child"], threads=2, limits=limits) if r.prediction != "error")
        elapsed = time.perf_counter() - start
    assert done == len(files)
    return len(files) / elapsed


_NUDENET_SCRIPT = textwrap.dedent('''
    import os, sys, time
    import nudenet, onnxruntime
    from nudenet import NudeDetector
    files = sys.argv[1:]
    detector = NudeDetector()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count()
    model = os.path.join(os.path.dirname(nudenet.__file__), "320n.onnx")  # the one NudeDetector() loads
    detector.onnx_session = onnxruntime.InferenceSession(model, options)
    detector.detect_batch(files[:8], batch_size=8)
    start = time.perf_counter()
    detector.detect_batch(files, batch_size=8)
    print(len(files) / (time.perf_counter() - start))
''')


def nudenet_python() -> Path:
    venv = CACHE / "venv-nudenet"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "nudenet==3.4.2"], check=True)
    return python


def bench_nudenet(files: list[Path]) -> float:
    done = subprocess.run([str(nudenet_python()), "-c", _NUDENET_SCRIPT, *map(str, files)], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def keras_model():
    from converters import nsfwjs_source
    from converters.float_model import build_source_model

    source = nsfwjs_source.load_source(REPO / "converters" / ".cache")
    return build_source_model(source.topology, source.weights)


def bench_keras(files: list[Path], model, batch: int = 32) -> float:
    import numpy as np
    from PIL import Image

    def load(path: Path):
        return np.asarray(Image.open(path).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0

    def run(paths: list[Path]) -> None:
        for i in range(0, len(paths), batch):
            model(np.stack([load(p) for p in paths[i:i + batch]]), training=False)

    run(files[:batch])
    start = time.perf_counter()
    run(files)
    return len(files) / (time.perf_counter() - start)


def peak_rss_mb(count: int) -> float:
    """Peak RSS of `veil scan` over ``count`` small files (hard links of the web set)."""
    folder = CACHE / f"rss-{count}"
    if not folder.is_dir() or len(os.listdir(folder)) != count:
        folder.mkdir(parents=True, exist_ok=True)
        web = build_set("web")
        for i in range(count):
            target = folder / f"{i:06}{web[i % len(web)].suffix}"
            if not target.exists():
                os.link(web[i % len(web)], target)
    # ru_maxrss of RUSAGE_CHILDREN is the largest of all children so far (NudeNet's too), so a
    # fresh process runs the scan as its only child and reports that child's peak.
    probe = (
        "import os, resource, subprocess, sys\n"
        f"subprocess.run([sys.executable, '-m', 'agent', 'scan', {str(folder)!r}, '--format', 'csv', '-o', os.devnull, '--threads', '2'])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO,
                          env={**os.environ, "VEIL_CONFIG": "/nonexistent"})
    return int(done.stdout.strip().splitlines()[-1]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", default="12mp,1080p,web")
    parser.add_argument("--rss-files", type=int, default=10_000)
    parser.add_argument("--no-keras", action="store_true")
    args = parser.parse_args()
    model = None if args.no_keras else keras_model()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}")
    print("| set | files | bits/px | decode bound img/s | Veil img/s | Veil ÷ bound | Veil img/s, whole picture only "
          "| regions cost ms/img | NudeNet img/s | Keras img/s | Veil ÷ NudeNet | Veil ÷ Keras |\n" + "|---" * 12 + "|")
    for name in args.sets.split(","):
        files = build_set(name)
        bound = bench_decode(files)
        veil = bench_veil(files)
        whole = bench_veil(files, regions=False)
        nude = bench_nudenet(files)
        keras = bench_keras(files, model) if model is not None else float("nan")
        cost = 1000 / veil - 1000 / whole  # wall time per image the regions add, with both cores busy
        print(f"| {name} | {len(files)} | {bits_per_pixel(files):.2f} | {bound:.1f} | {veil:.1f} | {veil / bound:.2f} | {whole:.1f} "
              f"| {cost:.2f} | {nude:.1f} | {keras:.1f} | {veil / nude:.1f}× | {veil / keras:.1f}× |", flush=True)
    if args.rss_files:
        print(f"\npeak RSS of `veil scan` over {args.rss_files} files: {peak_rss_mb(args.rss_files):.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
