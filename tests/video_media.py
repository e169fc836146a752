"""Real video files for tests, encoded with PyAV from the committed photos and canaries: benign
footage with motion, canary seconds at known times, with or without B-frames, short or long
GOPs, with an audio track."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.media import BENIGN, canary, photo


def _frame_image(second: int, index: int, canary_seconds: set[int], size: tuple[int, int]) -> np.ndarray:
    w, h = size
    source = canary() if second in canary_seconds else photo(BENIGN[(second // 3) % len(BENIGN)])
    big = source.resize((w + 40, h + 40))
    dx = (index * 3) % 40  # a slow pan: real motion for the encoder
    return np.asarray(big.crop((dx, 0, dx + w, h)), dtype=np.uint8)


def make_video(path: Path, seconds: int, canary_seconds: set[int] = frozenset(), fps: int = 10, gop_s: float = 10.0,
               bframes: bool = True, size: tuple[int, int] = (320, 240), audio: bool = True) -> Path:
    container = av.open(str(path), "w")
    video = container.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
    video.options = {"g": str(max(1, round(gop_s * fps))), "keyint_min": str(max(1, round(gop_s * fps))),
                     "bf": "3" if bframes else "0", "sc_threshold": "0", "preset": "veryfast"}
    sound = None
    if audio:
        sound = container.add_stream("aac", rate=44100)
        sound.layout = "mono"
    samples_done = 0
    for i in range(seconds * fps):
        frame = av.VideoFrame.from_ndarray(_frame_image(i // fps, i, set(canary_seconds), size), format="rgb24")
        frame.pts = i
        frame.time_base = Fraction(1, fps)
        container.mux(video.encode(frame))
        while sound is not None and samples_done < (i + 1) * 44100 // fps:
            t = (samples_done + np.arange(1024)) / 44100
            chunk = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], format="fltp", layout="mono")
            chunk.sample_rate = 44100
            chunk.pts = samples_done
            container.mux(sound.encode(chunk))
            samples_done += 1024
    container.mux(video.encode(None))
    if sound is not None:
        container.mux(sound.encode(None))
    container.close()
    return path


def make_audio_only(path: Path, seconds: int = 2) -> Path:
    container = av.open(str(path), "w")
    sound = container.add_stream("aac", rate=44100)
    sound.layout = "mono"
    for k in range(seconds * 44100 // 1024):
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        chunk.sample_rate = 44100
        chunk.pts = k * 1024
        container.mux(sound.encode(chunk))
    container.mux(sound.encode(None))
    container.close()
    return path


__all__ = ["make_audio_only", "make_video"]
