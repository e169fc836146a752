"""Real video files for tests, encoded with PyAV from the committed photos and canaries: benign
footage with motion, canary seconds at known times, with or without B-frames, short or long
GOPs, with an audio track; other codecs, 10-bit, odd and very large sizes, variable frame rate;
and the ffmpeg/ffprobe command-line tools (Debian's ffmpeg) as the independent reference."""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.conftest import require_tool
from tests.media import BENIGN, canary, photo


def _frame_image(second: int, index: int, flagged: bool, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    source = canary() if flagged else photo(BENIGN[(second // 3) % len(BENIGN)])
    big = source.resize((w + 40, h + 40))
    dx = (index * 3) % 40  # a slow pan: real motion for the encoder
    return np.asarray(big.crop((dx, 0, dx + w, h)), dtype=np.uint8)


def make_video(path: Path, seconds: int, canary_seconds: set[int] = frozenset(), fps: int = 10, gop_s: float = 10.0,
               bframes: bool = True, size: tuple[int, int] = (320, 240), audio: bool = True, codec: str = "libx264",
               pix_fmt: str = "yuv420p", vfr_seed: int | None = None, canary_at: Callable[[float], bool] | None = None) -> Path:
    """``canary_at(t)``: the canary at time ``t`` as well (a file crafted to dodge sampling).
    ``vfr_seed``: frame times jitter (a millisecond time base, each frame 30–170 % of its
    nominal length, seeded), as phone recordings and screen captures have them."""
    container = av.open(str(path), "w")
    video = container.add_stream(codec, rate=fps)
    video.width, video.height, video.pix_fmt = size[0], size[1], pix_fmt
    keyint = str(max(1, round(gop_s * fps)))
    if codec in ("libx264", "libx265"):
        params = {"g": keyint, "keyint_min": keyint, "bf": "3" if bframes else "0", "sc_threshold": "0", "preset": "veryfast"}
        if codec == "libx265":
            params = {"preset": "ultrafast", "x265-params": f"keyint={keyint}:min-keyint={keyint}:bframes={3 if bframes else 0}:log-level=error"}
        video.options = params
    else:
        video.options = {"g": keyint, "deadline": "realtime", "cpu-used": "8"}
    jitter = random.Random(vfr_seed) if vfr_seed is not None else None
    if jitter:
        video.time_base = video.codec_context.time_base = Fraction(1, 1000)
    t_ms = 0
    sound = None
    if audio:
        sound = container.add_stream("aac", rate=44100)
        sound.layout = "mono"
    samples_done = 0
    i = 0
    while (t_ms if jitter else i * 1000 // fps) < seconds * 1000:
        second = (t_ms // 1000) if jitter else i // fps
        t = (t_ms if jitter else i * 1000 // fps) / 1000
        flagged = second in canary_seconds or (canary_at is not None and canary_at(t))
        frame = av.VideoFrame.from_ndarray(_frame_image(second, i, flagged, size), format="rgb24")
        if jitter:
            frame.pts, frame.time_base = t_ms, Fraction(1, 1000)
            t_ms += round(1000 / fps * jitter.uniform(0.3, 1.7))
        else:
            frame.pts, frame.time_base = i, Fraction(1, fps)
        container.mux(video.encode(frame))
        i += 1
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


def tool(name: str) -> str:
    """Path of an FFmpeg command-line tool (ffmpeg, ffprobe)."""
    return require_tool(name, "ffmpeg")


def with_rotation(src: Path, dst: Path, degrees: int) -> Path:
    """A stream copy of ``src`` whose container says: display turned ``degrees`` clockwise."""
    subprocess.run([tool("ffmpeg"), "-v", "error", "-y", "-i", str(src), "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}", str(dst)],
                   check=True)
    return dst


def ffmpeg_frame(path: Path, t: float, size: int = 224) -> np.ndarray:
    """The frame at ``t`` as the ffmpeg CLI shows it (rotation applied), nearest-scaled to size²."""
    raw = subprocess.run([tool("ffmpeg"), "-v", "error", "-ss", str(t), "-i", str(path), "-frames:v", "1",
                          "-vf", f"scale={size}:{size}:flags=neighbor", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(size, size, 3)


def ffprobe(path: Path) -> dict:
    """ffprobe's view of a file: format and streams, with frames counted by decoding."""
    out = subprocess.run([tool("ffprobe"), "-v", "error", "-count_frames", "-show_format", "-show_streams", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def ffmpeg_decode_errors(path: Path) -> str:
    """Everything the ffmpeg CLI complains about while decoding every stream of ``path``."""
    done = subprocess.run([tool("ffmpeg"), "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True)
    return done.stderr.strip() + ("" if done.returncode == 0 else f" (exit {done.returncode})")


__all__ = ["ffmpeg_decode_errors", "ffmpeg_frame", "ffprobe", "make_audio_only", "make_video", "tool", "with_rotation"]
