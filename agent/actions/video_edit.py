"""Edited copies of a video: flagged segments cut out, kept alone, or blurred; audio kept in sync.

Segments come from samples, so the content between the last benign sample before a segment and
its first flagged sample is unknown: every edit widens a segment back to that benign sample
(``widen``) rather than risk leaking a flagged frame. The video is re-encoded (H.264, the
source's size and frame rate) so cuts fall exactly on those boundaries, not on keyframes; the
audio is re-encoded (AAC) with the same cuts and shifted timestamps, so it stays in sync.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from agent.errors import VeilError


class EditError(VeilError):
    pass


Interval = tuple[float, float]


def widen(segments: list[Interval], every: float, duration: float) -> list[Interval]:
    """Back to the previous sample; merged where they touch; clipped to the video."""
    widened = sorted((max(0.0, start - every), min(duration, end)) for start, end in segments)
    merged: list[Interval] = []
    for start, end in widened:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def complement(intervals: list[Interval], duration: float) -> list[Interval]:
    out, cursor = [], 0.0
    for start, end in intervals:
        if start > cursor:
            out.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < duration:
        out.append((cursor, duration))
    return out


class _Timeline:
    """Maps source times to output times once the ``dropped`` intervals are removed."""

    def __init__(self, dropped: list[Interval]):
        self.dropped = dropped
        self.starts = [s for s, _ in dropped]
        self.removed_before = np.cumsum([0.0] + [e - s for s, e in dropped]).tolist()

    def keep(self, t: float) -> bool:
        i = bisect_right(self.starts, t) - 1
        return i < 0 or t >= self.dropped[i][1]

    def shift(self, t: float) -> float:
        return t - self.removed_before[bisect_right(self.starts, t)]


def _blur(pixels: np.ndarray) -> np.ndarray:
    """Unrecognisable: a 3-cell average blown back up (as the still-image blur)."""
    h, w = pixels.shape[:2]
    cells = 3
    ys = np.linspace(0, h, cells + 1, dtype=int)
    xs = np.linspace(0, w, cells + 1, dtype=int)
    out = np.empty_like(pixels)
    for i in range(cells):
        for j in range(cells):
            block = pixels[ys[i]:ys[i + 1], xs[j]:xs[j + 1]]
            out[ys[i]:ys[i + 1], xs[j]:xs[j + 1]] = block.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    return out


def write_edit(src: Path, out: Path, *, drop: Sequence[Interval] = (), blur: Sequence[Interval] = ()) -> None:
    """Copy ``src`` to ``out`` without the ``drop`` intervals and with ``blur`` intervals blurred."""
    import av

    timeline = _Timeline(list(drop))
    blurred = _Timeline(list(blur))
    try:
        source = av.open(str(src))
    except (av.error.FFmpegError, OSError) as err:
        raise EditError(f"cannot read {src}: {err}") from None
    temp = out.with_name(f".{out.name}.veil-part{out.suffix}")
    try:
        vin = source.streams.video[0]
        ain = source.streams.audio[0] if source.streams.audio else None
        sink = av.open(str(temp), "w")
        rate = vin.average_rate or Fraction(25)
        vout = sink.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        vout.options = {"preset": "veryfast", "crf": "20"}
        vout.time_base = Fraction(1, 1000)
        aout = None
        if ain is not None:
            aout = sink.add_stream("aac", rate=ain.codec_context.sample_rate)
            aout.layout = ain.codec_context.layout.name
        streams = [s for s in (vin, ain) if s is not None]
        for frame in source.decode(*streams):
            if not isinstance(frame, (av.VideoFrame, av.AudioFrame)) or frame.pts is None or frame.time_base is None:
                continue
            t = float(frame.pts * frame.time_base)
            if not timeline.keep(t):
                continue
            if isinstance(frame, av.VideoFrame):
                if not blurred.keep(t):
                    frame = av.VideoFrame.from_ndarray(_blur(frame.to_ndarray(format="rgb24")), format="rgb24")
                frame.pts = round(timeline.shift(t) * 1000)
                frame.time_base = Fraction(1, 1000)
                sink.mux(vout.encode(frame.reformat(format="yuv420p")))
            elif aout is not None:
                frame.pts = round(timeline.shift(t) * frame.sample_rate)
                frame.time_base = Fraction(1, frame.sample_rate)
                sink.mux(aout.encode(frame))
        sink.mux(vout.encode(None))
        if aout is not None:
            sink.mux(aout.encode(None))
        sink.close()
        temp.replace(out)
    except av.error.FFmpegError as err:
        temp.unlink(missing_ok=True)
        raise EditError(f"could not write {out}: {err}") from None
    finally:
        source.close()
