"""Images per second, file → decision, for Veil's scan and two peers, on the same sets, in one run.

    python benchmarks/bench_scan.py [--sets 12mp,1080p,web] [--rss-files 10000]

Sets (built once into benchmarks/.cache/sets from the committed real photos, TESTDATA.md):
  12mp  - 4000×3000 camera-like JPEGs (quality 92)
  1080p - 1920×1080 JPEGs (quality 90)
  web   - small mixed web images: PNG, WebP, GIF, at most 800 px
Peers:
  NudeNet 3.4 - ``NudeDetector().detect(path)`` per file, in its own virtual environment
                (benchmarks/.cache/venv-nudenet, created with pip on first use)
  Keras       - a Geacc-style baseline: the float Keras model rebuilt by the converter, full
                Pillow decode, bilinear resize, ``model.predict`` per image (needs the convert extra)
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
SETS = CACHE / "sets"
PHOTOS = REPO / "tests" / "fixtures" / "photos"
SIZES = {"12mp": 120, "1080p": 300, "web": 450}  # big enough for runs of seconds, not fractions


def build_sets() -> None:
    from PIL import Image

    photos = sorted(PHOTOS.glob("*.jpg"))
    for name, count in SIZES.items():
        folder = SETS / name
        if folder.is_dir() and len(list(folder.iterdir())) == count:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            src = Image.open(photos[i % len(photos)]).convert("RGB")
            if name == "12mp":
                src.resize((4000, 3000), Image.Resampling.LANCZOS).save(folder / f"{i:04}.jpg", quality=92)
            elif name == "1080p":
                src.resize((1920, 1080), Image.Resampling.LANCZOS).save(folder / f"{i:04}.jpg", quality=90)
            else:
                side = (320, 480, 640, 800)[i % 4]
                img = src.resize((side, side * 3 // 4), Image.Resampling.LANCZOS)
                kind = i % 3
                if kind == 0:
                    img.save(folder / f"{i:04}.png")
                elif kind == 1:
                    img.save(folder / f"{i:04}.webp", quality=80)
                else:
                    img.quantize(256).save(folder / f"{i:04}.gif")


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
    import sys, time
    from nudenet import NudeDetector
    files = sys.argv[1:]
    detector = NudeDetector()
    detector.detect(files[0])
    start = time.perf_counter()
    for f in files:
        detector.detect(f)
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


def bench_keras(files: list[Path], model) -> float:
    import numpy as np
    from PIL import Image

    def run(path: Path) -> None:
        pixels = np.asarray(Image.open(path).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
        model.predict(pixels[None], verbose=0)

    run(files[0])
    start = time.perf_counter()
    for path in files:
        run(path)
    return len(files) / (time.perf_counter() - start)


def peak_rss_mb(count: int) -> float:
    """Peak RSS of `veil scan` over ``count`` small files (hard links of the web set)."""
    folder = CACHE / f"rss-{count}"
    if not folder.is_dir() or len(os.listdir(folder)) != count:
        folder.mkdir(parents=True, exist_ok=True)
        web = sorted((SETS / "web").iterdir())
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
    build_sets()
    model = None if args.no_keras else keras_model()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}")
    print("| set | files | Veil img/s | Veil img/s, whole picture only | regions cost ms/img | NudeNet img/s | Keras img/s | "
          "Veil ÷ NudeNet | Veil ÷ Keras |\n|---|---|---|---|---|---|---|---|---|")
    for name in args.sets.split(","):
        files = sorted((SETS / name).iterdir())
        veil = bench_veil(files)
        whole = bench_veil(files, regions=False)
        nude = bench_nudenet(files)
        keras = bench_keras(files, model) if model is not None else float("nan")
        cost = 1000 / veil - 1000 / whole  # wall time per image the regions add, with both cores busy
        print(f"| {name} | {len(files)} | {veil:.1f} | {whole:.1f} | {cost:.2f} | {nude:.1f} | {keras:.1f} | {veil / nude:.1f}× | "
              f"{veil / keras:.1f}× |", flush=True)
    if args.rss_files:
        print(f"\npeak RSS of `veil scan` over {args.rss_files} files: {peak_rss_mb(args.rss_files):.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
