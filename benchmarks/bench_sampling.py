"""What sampling that cannot be dodged costs (issue 15): animations and videos, old plan vs new.

    python benchmarks/bench_sampling.py [--runs 3]

Animations (built in benchmarks/.cache/sampling from 30 camera-like 1080p photos, real
wallpapers at native size with sensor-like grain (benchmarks/realistic_inputs.py): a new photo
every ten frames, panning, so every frame differs a little; 300 frames at 480×270 and 1280×720):
  decode-only  - every frame decoded (``seek`` + ``load``), nothing else: the physical bound for
                 any sampler that must reach the last frame;
  even 32      - the old plan: 32 evenly spaced frames, converted and classified;
  every new    - Veil now (``decode_image``): every frame visited, each new picture judged (up
                 to 256), classified.
Videos (``bench_video.FILES``: camera-like 1080p H.264 at a phone's bitrate, x264's default GOP
with B-frames (180 s) and a 1-s GOP (60 s)):
``analyse_video`` with fixed samples (``veil video``) and unpredictable ones (the folder agent).
The int8 model on LiteRT, 2 threads, loaded before any clock starts; medians of ``--runs``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CACHE = REPO / "benchmarks" / ".cache" / "sampling"


def build_animation(fmt: str, size: tuple[int, int], count: int = 300) -> Path:
    from PIL import Image

    from benchmarks.realistic_inputs import camera_jpegs

    path = CACHE / f"anim-camera-{size[0]}x{size[1]}-{count}.{fmt.lower()}"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    photos = [Image.open(p).convert("RGB").resize((size[0] + 60, size[1] + 30))
              for p in camera_jpegs(30)]
    frames = []
    for i in range(count):
        photo, step = photos[(i // 10) % len(photos)], i % 10
        frames.append(photo.crop((step * 6, step * 3, step * 6 + size[0], step * 3 + size[1])))
    options: dict = {"save_all": True, "append_images": frames[1:], "duration": 40, "loop": 0}
    if fmt == "GIF":
        frames = [f.quantize(256) for f in frames]
        options["append_images"] = frames[1:]
    frames[0].save(path, fmt, **options)
    return path


def timed(fn, runs: int, *args, **kwargs):
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def animation_rows(classifier, runs: int) -> list[str]:
    from PIL import Image

    from agent.classifier.preprocess import resize_for_model
    from agent.decode import decode_image, spread_evenly, to_rgb

    def decode_only(path: Path) -> int:
        with Image.open(path) as image:
            for i in range(image.n_frames):
                image.seek(i)
                image.load()
            return image.n_frames

    def even32(path: Path) -> int:
        with Image.open(path) as image:
            plan = spread_evenly(image.n_frames, 32)
            frames = []
            for i in plan:
                image.seek(i)
                frames.append(resize_for_model(to_rgb(image)))
        classifier.classify(np.stack(frames))
        return len(plan)

    def every_new(path: Path) -> int:
        decoded = decode_image(path)
        classifier.classify(decoded.frames)
        return len(decoded.frame_indices)

    rows = []
    for size in ((480, 270), (1280, 720)):
        for fmt in ("GIF", "PNG", "WEBP"):
            path = build_animation(fmt, size)
            bound, _ = timed(decode_only, runs, path)
            old, old_n = timed(even32, runs, path)
            new, new_n = timed(every_new, runs, path)
            name = "APNG" if fmt == "PNG" else fmt
            rows.append(f"| {name} {size[0]}×{size[1]}, 300 frames | {bound:.2f} | {old:.2f} ({old_n}) | {new:.2f} ({new_n}) "
                        f"| {new / bound:.2f} | {new / old:.2f} |")
    return rows


def video_rows(classifier, profile, runs: int) -> list[str]:
    from agent.video import analyse_video
    from benchmarks.bench_video import FILES

    rows = []
    files = {"default GOP, B-frames, 180 s": FILES["h264-default"](), "1-s GOP, 60 s": FILES["h264-gop1s"]()}
    for name, path in files.items():
        fixed, fixed_report = timed(analyse_video, runs, path, classifier, profile)
        loose, loose_report = timed(analyse_video, runs, path, classifier, profile, unpredictable=True)
        rows.append(f"| {name}, 1080p camera-like | {fixed:.2f} ({len(fixed_report.samples)}) "
                    f"| {loose:.2f} ({len(loose_report.samples)}) | {loose / fixed:.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from agent.classifier import open_classifier
    from agent.config import ModelSection
    from agent.policy import BUILTIN_PROFILES

    print(f"# {platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}, python {platform.python_version()}")
    with open_classifier(ModelSection(accelerator="cpu", threads=2)) as classifier:
        print("| animation | decode-only s | even 32 s (frames judged) | every new s (frames judged) | every new / decode-only "
              "| every new / even 32 |")
        print("|---|---|---|---|---|---|")
        for row in animation_rows(classifier, args.runs):
            print(row, flush=True)
        print()
        print("| video | fixed s (samples) | unpredictable s (samples) | ratio |")
        print("|---|---|---|---|")
        for row in video_rows(classifier, BUILTIN_PROFILES["child"], args.runs):
            print(row, flush=True)


if __name__ == "__main__":
    main()
