"""veil video against the decoding bound and the ffmpeg pipe a user would script, one run.

    python benchmarks/bench_video.py [--files h264-default,h264-gop1s,h265-default] [--rss-hours 1]

Files (benchmarks/realistic_inputs.py, built once): grainy pans over real full-size wallpapers,
1080p, 25 fps, at a phone's bitrate, encoded by the ffmpeg CLI with the encoder's defaults:
  h264-default  180 s, x264 preset medium (keyint 250, scenecut, 3 B-frames, B-pyramid), 12 Mbit/s
  h264-gop1s     60 s, the same with keyint 25: one keyframe a second, as streaming sites encode
  h265-default   30 s, x265 preset medium (open GOP, B-pyramid), 6 Mbit/s
  canary         60 s of 1080p from the committed photos with canary seconds (tests/video_media),
                 so that the decision check has flagged seconds to agree on
Bounds, the ffmpeg CLI decoding only (``-threads 2 -f null``): every frame; ``-skip_frame noref``
(what exact decoding of a B-pyramid stream needs); ``bidir`` (I- and P-frames; on B-pyramid
streams its P-frames drift); ``nokey`` (keyframes only).
Peer: ``ffmpeg -threads 2 -i F -vf fps=1,scale=224:224 -f rawvideo -pix_fmt rgb24 -`` piped into
the same int8 model (LiteRT, 2 threads) in batches of the backend's size; on 1-s-GOP files with
``-skip_frame nokey`` as well, which is how a user who knows the file would run it.
Veil: ``agent.video.analyse_video`` at one sample per second. The model is loaded before any
clock starts. Decisions: the pipe's frame i against Veil's sample in second i (same model and
profile), as the share of seconds with the same decision and the mean |Δ malign|.
Memory: peak RSS of a ``veil video`` process on a 1080p file of ``--rss-hours`` (h264-default
joined to itself with ``-c copy``), with its time.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from realistic_inputs import CACHE, camera_video, video_bits_per_pixel  # noqa: E402

FILES = {
    "h264-default": lambda: camera_video("h264-default-180s.mp4", 180),
    "h264-gop1s": lambda: camera_video("h264-gop1s-60s.mp4", 60, gop=25),
    "h265-default": lambda: camera_video("h265-default-30s.mp4", 30, codec="libx265"),
    "canary": lambda: canary_video(CACHE / "video" / "canary-60s.mp4"),
}
CANARY_SECONDS = {7, 8, 9, 23, 24, 41, 42, 43, 44, 58}


def canary_video(path: Path) -> Path:
    from tests.video_media import make_video

    if not path.exists():
        temp = path.with_name(path.stem + ".part" + path.suffix)
        make_video(temp, 60, CANARY_SECONDS, fps=25, gop_s=10.0, size=(1920, 1080), audio=False)
        temp.replace(path)
    return path


def decode_only(path: Path, skip: str) -> float:
    start = time.perf_counter()
    subprocess.run(["ffmpeg", "-v", "error", "-threads", "2", "-skip_frame", skip, "-i", str(path), "-f", "null", "-"], check=True)
    return time.perf_counter() - start


def pipe(path: Path, classifier, profile, skip: str = "default") -> tuple[float, list]:
    from agent.policy import decide

    start = time.perf_counter()
    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-threads", "2", "-skip_frame", skip, "-i", str(path),
                             "-vf", "fps=1,scale=224:224", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    size, batch, decisions = 224 * 224 * 3, [], []
    while True:
        data = proc.stdout.read(size)
        if len(data) == size:
            batch.append(np.frombuffer(data, np.uint8).reshape(224, 224, 3))
        if batch and (len(batch) == classifier.backend.max_batch or len(data) < size):
            decisions += [decide(scores, profile) for scores in classifier.classify(np.stack(batch))]
            batch.clear()
        if len(data) < size:
            break
    proc.wait()
    return time.perf_counter() - start, decisions


def veil(path: Path, classifier, profile):
    from agent.video import analyse_video

    start = time.perf_counter()
    report = analyse_video(path, classifier, profile, every=1.0)
    return time.perf_counter() - start, report


def agreement(decisions: list, report) -> tuple[float, float, int, int]:
    """Share of seconds with the same decision, mean |Δ malign|, flagged seconds (pipe, Veil)."""
    by_second = {int(s.t): s for s in report.samples}
    pairs = [(d, by_second[i]) for i, d in enumerate(decisions) if i in by_second]
    same = sum(d.flagged == s.flagged for d, s in pairs) / max(len(pairs), 1)
    delta = float(np.mean([abs(d.malign - s.malign) for d, s in pairs])) if pairs else 0.0
    return same, delta, sum(d.flagged for d in decisions), sum(s.flagged for s in report.samples)


def long_file(hours: float) -> Path:
    source = FILES["h264-default"]()
    copies = max(1, round(hours * 3600 / 180))
    path = CACHE / "video" / f"h264-default-{copies * 3}min.mp4"
    if not path.exists():
        listing = path.with_suffix(".txt")
        listing.write_text("".join(f"file '{source}'\n" for _ in range(copies)))
        temp = path.with_name(path.stem + ".part.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(temp)],
                       check=True)
        temp.replace(path)
        listing.unlink()
    return path


def peak_rss(path: Path) -> tuple[float, float]:
    """Peak RSS (MB) and wall time (s) of ``veil video FILE`` in its own process."""
    probe = ("import resource, subprocess, sys, os, time\n"
             "t = time.perf_counter()\n"
             f"subprocess.run([sys.executable, '-m', 'agent', 'video', {str(path)!r}, '-o', os.devnull])\n"
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO,
                          env={**os.environ, "VEIL_CONFIG": "/nonexistent"})
    seconds, rss_kb = done.stdout.split()[-2:]
    return int(rss_kb) / 1024, float(seconds)


def main() -> int:
    from agent.classifier import open_classifier
    from agent.config import ModelSection
    from agent.policy import BUILTIN_PROFILES

    parser = argparse.ArgumentParser()
    parser.add_argument("--files", default="h264-default,h264-gop1s,h265-default,canary")
    parser.add_argument("--rss-hours", type=float, default=1.0)
    args = parser.parse_args()
    profile = BUILTIN_PROFILES["child"]
    files = {name: FILES[name]() for name in args.files.split(",")}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}")
    print("| file | bits/px | all s | noref s | bidir s | nokey s | pipe s | Veil s | Veil ÷ bidir | Veil ÷ noref "
          "| pipe ÷ Veil | × real time | Veil decoding | same decision | mean Δ malign | flagged s pipe/Veil |")
    print("|" + "---|" * 16)
    with open_classifier(ModelSection(accelerator="cpu", threads=2)) as classifier:
        classifier.classify(np.zeros((1, 224, 224, 3), np.uint8))  # warm
        for name, path in files.items():
            bounds = {skip: decode_only(path, skip) for skip in ("default", "noref", "bidir", "nokey")}
            gop1s = "gop1s" in name
            pipe_s, decisions = pipe(path, classifier, profile, "nokey" if gop1s else "default")
            veil_s, report = veil(path, classifier, profile)
            same, delta, flagged_pipe, flagged_veil = agreement(decisions, report)
            bound = bounds["nokey"] if gop1s else bounds["bidir"]
            print(f"| {name} | {video_bits_per_pixel(path):.3f} | {bounds['default']:.1f} | {bounds['noref']:.1f} "
                  f"| {bounds['bidir']:.1f} | {bounds['nokey']:.1f} | {pipe_s:.1f}{' (nokey)' if gop1s else ''} | {veil_s:.1f} "
                  f"| {veil_s / bound:.2f}{' (÷ nokey)' if gop1s else ''} | {veil_s / bounds['noref']:.2f} | {pipe_s / veil_s:.2f} "
                  f"| {report.duration_s / veil_s:.0f} | {report.strategy} | {same:.1%} | {delta:.3f} | {flagged_pipe}/{flagged_veil} |",
                  flush=True)
    if args.rss_hours:
        path = long_file(args.rss_hours)
        rss, seconds = peak_rss(path)
        print(f"\n`veil video` on {path.name} ({path.stat().st_size / 1e9:.1f} GB): peak RSS {rss:.0f} MB, {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
