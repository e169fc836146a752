"""veil video against the ffmpeg CLI a user would script, on 10-minute 1080p H.264 files.

    python benchmarks/bench_video.py [--minutes 10] [--rss-minutes 60]

Files (built once into benchmarks/.cache/video from the committed real photos, with a slow pan
and zoom so the encoder sees motion; 25 fps, ~6 Mbit/s):
  default-gop.mp4 - B-frames (bf=3), keyint 250 (x264's default GOP; preset veryfast, since
                    x264's default preset encodes 1080p at a few frames per second on 2 cores)
  1s-gop.mp4      - keyint 25: one keyframe per second, as streaming sites encode
Peer: ``ffmpeg -i FILE -vf fps=1,scale=224:224 -f rawvideo -pix_fmt rgb24 -threads 2 -`` piped
into the same int8 model (LiteRT, 2 threads), one frame per second.
Veil: ``agent.video.analyse_video`` at one sample per second, 2 threads. Both end with the same
per-second decisions; the model is loaded before either clock starts.
Memory: peak RSS of ``veil video`` on a ``--rss-minutes`` 1-s-GOP file (480p, to build quickly).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CACHE = REPO / "benchmarks" / ".cache" / "video"


def build(path: Path, minutes: float, keyint: int, bframes: int, size=(1920, 1080), bitrate="6M", preset="veryfast") -> Path:
    import av
    from PIL import Image

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    photos = [Image.open(p).convert("RGB").resize((size[0] + 160, size[1] + 90), Image.Resampling.LANCZOS)
              for p in sorted((REPO / "tests" / "fixtures" / "photos").glob("*.jpg"))[:24]]
    temp = path.with_suffix(".part.mp4")
    container = av.open(str(temp), "w")
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    stream.bit_rate = int(float(bitrate[:-1]) * 1_000_000)
    stream.options = {"g": str(keyint), "keyint_min": str(keyint), "bf": str(bframes), "preset": preset, "sc_threshold": "0"}
    frames = int(minutes * 60 * 25)
    for i in range(frames):
        photo = np.asarray(photos[(i // 200) % len(photos)])  # a new picture every 8 s
        dx, dy = (i % 200) * 160 // 200, (i % 200) * 90 // 200  # pan across it
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(photo[dy:dy + size[1], dx:dx + size[0]]), format="rgb24")
        frame.pts, frame.time_base = i, Fraction(1, 25)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    temp.replace(path)
    return path


def bench_ffmpeg(path: Path, classifier) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-threads", "2", "-i", str(path), "-vf", "fps=1,scale=224:224",
                             "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], stdout=subprocess.PIPE)
    size, count = 224 * 224 * 3, 0
    while True:
        data = proc.stdout.read(size)
        if len(data) < size:
            break
        classifier.classify(np.frombuffer(data, np.uint8).reshape(224, 224, 3))
        count += 1
    proc.wait()
    return time.perf_counter() - start, count


def bench_veil(path: Path, classifier, profile) -> tuple[float, int, str]:
    from agent.video import analyse_video

    start = time.perf_counter()
    report = analyse_video(path, classifier, profile, every=1.0)
    return time.perf_counter() - start, len(report.samples), report.strategy


def peak_rss_mb(path: Path) -> float:
    probe = ("import resource, subprocess, sys, os\n"
             f"subprocess.run([sys.executable, '-m', 'agent', 'video', {str(path)!r}, '-o', os.devnull])\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO,
                          env={**os.environ, "VEIL_CONFIG": "/nonexistent"})
    return int(done.stdout.strip().splitlines()[-1]) / 1024


def main() -> int:
    from agent.classifier import open_classifier
    from agent.config import ModelSection
    from agent.policy import BUILTIN_PROFILES

    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rss-minutes", type=float, default=60)
    args = parser.parse_args()
    files = {
        "default-gop": build(CACHE / f"default-gop-{args.minutes:g}min.mp4", args.minutes, 250, 3),
        "1s-gop": build(CACHE / f"1s-gop-{args.minutes:g}min.mp4", args.minutes, 25, 3),
    }
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}")
    print("| file | length | ffmpeg CLI s | Veil s | Veil ÷ ffmpeg | Veil × real time | Veil decoding |\n|---|---|---|---|---|---|---|")
    with open_classifier(ModelSection(accelerator="cpu", threads=2)) as classifier:
        for name, path in files.items():
            ff, ff_n = bench_ffmpeg(path, classifier)
            veil, n, strategy = bench_veil(path, classifier, BUILTIN_PROFILES["child"])
            length = args.minutes * 60
            row = f"| {name} | {length:.0f} s ({n} samples; ffmpeg {ff_n}) | {ff:.1f} | {veil:.1f} | {ff / veil:.1f}× | {length / veil:.0f}× |"
            print(f"{row} {strategy} |", flush=True)
    if args.rss_minutes:
        long = build(CACHE / f"1s-gop-{args.rss_minutes:g}min-480p.mp4", args.rss_minutes, 25, 3, size=(854, 480), bitrate="1M", preset="ultrafast")
        print(f"\npeak RSS of `veil video` on a {args.rss_minutes:g}-minute file: {peak_rss_mb(long):.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
