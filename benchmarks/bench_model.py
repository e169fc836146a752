"""Milliseconds per image for the int8, f16 and f32 models on every installed CPU backend.

    python benchmarks/bench_model.py [--runs 200] [--f32 converters/.cache/nsfw-mobilenet-v2-f32.tflite]

One process, one input (a real photo at model size), batch 1 and batch 32, 1 and 2 threads;
prints a Markdown table and the int8 : f32 ratio per backend and thread count. The f32 model is
not shipped: the converter writes it to its cache for this benchmark.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.classifier.backends import CPU_BACKENDS, BackendUnavailable  # noqa: E402
from agent.classifier.model import BUNDLED_F16, BUNDLED_INT8, ModelFile, bundled_model_path, load_model_file  # noqa: E402
from agent.decode import load_model_input  # noqa: E402


def _time(backend, frames: np.ndarray, runs: int) -> float:
    """Median milliseconds per image."""
    for _ in range(5):
        backend.run(frames)
    per_image = []
    for _ in range(runs):
        start = time.perf_counter()
        backend.run(frames)
        per_image.append((time.perf_counter() - start) * 1000 / len(frames))
    return statistics.median(per_image)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--f32", type=Path, default=REPO / "converters" / ".cache" / "nsfw-mobilenet-v2-f32.tflite")
    args = parser.parse_args()

    frame = load_model_input(REPO / "tests" / "fixtures" / "photos" / "scikit-astronaut.jpg")
    models = {"int8": load_model_file(bundled_model_path(BUNDLED_INT8)), "f16": load_model_file(bundled_model_path(BUNDLED_F16))}
    if args.f32.is_file():
        data = args.f32.read_bytes()
        models["f32"] = ModelFile(args.f32, args.f32.stem, hashlib.sha256(data).hexdigest(), {})
    else:
        print(f"(no f32 model at {args.f32}: run the converter to measure it)")

    rows, ms = [], {}
    for backend_name, factory in CPU_BACKENDS.items():
        for threads in (1, 2):
            for kind, model in models.items():
                for batch in (1, 32):
                    try:
                        backend = factory(model, threads)
                    except BackendUnavailable as err:
                        rows.append(f"| {backend_name} | {threads} | {kind} | {batch} | unavailable: {err} |")
                        break
                    runs = args.runs if batch == 1 else max(10, args.runs // 16)
                    value = _time(backend, np.repeat(frame[None], batch, axis=0), runs)
                    backend.close()
                    ms[(backend_name, threads, kind, batch)] = value
                    rows.append(f"| {backend_name} {backend.version} | {threads} | {kind} | {batch} | {value:.2f} |")

    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()} {platform.release()}, Python {platform.python_version()}")
    print("| backend | threads | model | batch | ms per image (median) |\n|---|---|---|---|---|")
    print("\n".join(rows))
    print("\n| backend | threads | batch | f32 ms | int8 ms | int8 speed-up over f32 |\n|---|---|---|---|---|---|")
    for (backend_name, threads, kind, batch), value in ms.items():
        f32 = ms.get((backend_name, threads, "f32", batch))
        if kind == "int8" and f32:
            print(f"| {backend_name} | {threads} | {batch} | {f32:.2f} | {value:.2f} | {f32 / value:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
