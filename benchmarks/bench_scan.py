"""Images per second, file → decision, for Veil's scan, its decoding bound and two peers, one run.

    python benchmarks/bench_scan.py [--sets 12mp,1080p,web] [--rss-files 10000]

Sets (benchmarks/realistic_inputs.py, built once into benchmarks/.cache/realistic): windows of
the real full-size Debian wallpapers with sensor-like grain, so that size and entropy match
camera files; bits per pixel are printed beside each set.
  12mp  - 4000×3000 JPEGs, quality 92, as a phone camera writes them
  1080p - 1920×1080 JPEGs, quality 90
  web   - small web images: PNG, WebP, GIF, at most 800 px, without grain (web images are processed)
Bounds, on the same 2 threads: decoding alone (sniff, draft decode, resize:
``agent.scan.prepare_file``; for regions decoded as large as they need), and inference alone (the
model's time for as many frames per image as the scan really classified, counted). Both fill
both cores, so the bound for the scan is their times added: 1 / (1/decode + 1/inference).
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


def bench_decode(files: list[Path], regions: bool = True, threads: int = 2) -> float:
    """Veil's decoding alone, on the scan's own thread count: the bound with free inference
    (``regions``: decoded large enough for the regions, as the shipped scan decodes)."""
    from concurrent.futures import ThreadPoolExecutor

    from agent.decode import DecodeLimits
    from agent.scan import ScanItem, prepare_file

    limits = DecodeLimits(regions=regions)
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda p: prepare_file(ScanItem(p, explicit=True), limits), files[:4]))
        start = time.perf_counter()
        prepared = list(pool.map(lambda p: prepare_file(ScanItem(p, explicit=True), limits), files))
        elapsed = time.perf_counter() - start
    assert all(p.error is None for p in prepared)
    return len(files) / elapsed


def bench_veil(files: list[Path], regions: bool = True) -> tuple[float, float]:
    """Veil's scan as shipped (``regions``: the whole picture and its regions, agent/regions.py):
    images per second, and the inference-only bound: the model's time for the frames the scan
    really classified per image (counted), invoked alone on the same threads and batch size."""
    from agent.classifier import open_classifier
    from agent.config import ModelSection
    from agent.decode import DecodeLimits
    from agent.policy import BUILTIN_PROFILES
    from agent.scan import scan

    limits = DecodeLimits(regions=regions)
    with open_classifier(ModelSection(accelerator="cpu", threads=2)) as classifier:
        list(scan(files[:4], classifier, BUILTIN_PROFILES["child"], threads=2, limits=limits))  # warm up
        frames = 0
        classify = classifier.classify

        def counted(pixels):
            nonlocal frames
            frames += 1 if pixels.ndim == 3 else len(pixels)
            return classify(pixels)

        classifier.classify = counted  # type: ignore[method-assign]
        start = time.perf_counter()
        done = sum(1 for r in scan(files, classifier, BUILTIN_PROFILES["child"], threads=2, limits=limits) if r.prediction != "error")
        elapsed = time.perf_counter() - start
        classifier.classify = classify  # type: ignore[method-assign]
        import numpy as np

        batch = np.random.default_rng(0).integers(0, 256, (classifier.backend.max_batch, 224, 224, 3), np.uint8)
        timed = time.perf_counter()
        for _ in range(50):
            classifier.classify(batch)
        per_frame = (time.perf_counter() - timed) / (50 * len(batch))
    assert done == len(files)
    return len(files) / elapsed, 1 / (per_frame * frames / len(files))


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
    # Decoding and inference each fill both cores, so the bound is their times added: 1/(1/d + 1/i).
    print("| set | files | bits/px | mode | decode bound img/s | inference bound img/s | both bound img/s | Veil img/s "
          "| Veil ÷ both bound | NudeNet img/s | Keras img/s | Veil ÷ NudeNet | Veil ÷ Keras |\n" + "|---" * 13 + "|")
    for name in args.sets.split(","):
        files = build_set(name)
        bound, bound_whole = bench_decode(files), bench_decode(files, regions=False)
        veil, infer = bench_veil(files)
        whole, infer_whole = bench_veil(files, regions=False)
        nude = bench_nudenet(files)
        keras = bench_keras(files, model) if model is not None else float("nan")
        bpp = bits_per_pixel(files)
        for mode, img_s, decode_s, infer_s in (("regions (shipped)", veil, bound, infer), ("whole picture only", whole, bound_whole, infer_whole)):
            both = 1 / (1 / decode_s + 1 / infer_s)
            print(f"| {name} | {len(files)} | {bpp:.2f} | {mode} | {decode_s:.1f} | {infer_s:.1f} | {both:.1f} | {img_s:.1f} "
                  f"| {img_s / both:.2f} | {nude:.1f} | {keras:.1f} | {img_s / nude:.1f}× | {img_s / keras:.1f}× |", flush=True)
    if args.rss_files:
        print(f"\npeak RSS of `veil scan` over {args.rss_files} files: {peak_rss_mb(args.rss_files):.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
