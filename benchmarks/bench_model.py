"""Milliseconds per image for the int8, f16 and f32 models on every installed CPU backend.

    python -m converters variants      # once: f32 and all-int8 builds into converters/.cache
    python benchmarks/bench_model.py [--runs 200]

One process, one input (a real photo at model size), batch 1 and batch 32, 1 and 2 threads;
prints a Markdown table and the int8 : f32 ratio per backend and thread count. The f32 and
all-int8 models are not shipped; when present in the cache they are measured beside the shipped
int8 (float stages kept for fidelity) and f16 models.
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
    parser.add_argument("--cache", type=Path, default=REPO / "converters" / ".cache")
    args = parser.parse_args()

    frame = load_model_input(REPO / "tests" / "fixtures" / "photos" / "scikit-astronaut.jpg")
    models = {"int8": load_model_file(bundled_model_path(BUNDLED_INT8)), "f16": load_model_file(bundled_model_path(BUNDLED_F16))}
    for kind, stem in (("f32", "nsfw-mobilenet-v2-f32"), ("all-int8", "nsfw-mobilenet-v2-all-int8")):
        path = args.cache / f"{stem}.tflite"
        if path.is_file():
            models[kind] = ModelFile(path, stem, hashlib.sha256(path.read_bytes()).hexdigest(), {})
        else:
            print(f"(no {kind} model at {path}: python -m converters variants)")

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
    print("\n| backend | threads | batch | f32 ms | int8 ms (shipped) | speed-up | all-int8 ms | speed-up |\n|---|---|---|---|---|---|---|---|")
    for (backend_name, threads, kind, batch), f32 in ms.items():
        if kind != "f32":
            continue
        cells = [f"{backend_name}", f"{threads}", f"{batch}", f"{f32:.2f}"]
        for variant in ("int8", "all-int8"):
            value = ms.get((backend_name, threads, variant, batch))
            cells += [f"{value:.2f}", f"{f32 / value:.2f}×"] if value else ["–", "–"]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
