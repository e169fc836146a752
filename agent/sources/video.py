"""Video file → one 224×224 RGB frame per sampling interval, decoding no more than the samples need.

One demuxing pass groups the packets from one keyframe to the next (agent/sources/gops.py), so
each GOP is planned knowing where the next keyframe falls (``_Planner``):
- an interval that holds a keyframe is sampled at that keyframe, so a GOP whose intervals all
  hold one (streaming-style short GOPs) hands only its keyframe to the decoder, and a second
  keyframe in an interval already served is not decoded at all;
- a longer GOP is decoded up to the first frame at or after the latest interval start it must
  serve, and no further: the next keyframe starts afresh;
- non-reference frames are skipped throughout (``skip_frame = NONREF``). B-frames that other
  frames refer to (x264's and x265's B-pyramid) are decoded, since P-frames decoded without
  them drift: every sample is the exact frame a full decode shows (tests/component/test_video_plan.py).
Frames go through FFmpeg's scaler straight to 224×224 RGB by nearest neighbour, rotation metadata
applied. Nearest is the measured choice, as for stills: on 102 1080p frames (87 real photos, 15
canaries) it agreed best with the reference (nsfwjs' aligned bilinear on the full frame): mean
|Δ malign| 0.012, 99.0 % same decision, 0.87 ms/frame, against area averaging's 0.019, 98.0 %,
2.4 ms and bilinear's 0.037, 96.1 %, 2.3 ms (benchmarks/RESULTS.md, "Video scaler").
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from agent.classifier.preprocess import MODEL_SIZE
from agent.errors import VeilError
from agent.sources import gops
from agent.sources.gops import Gop, GopReader


class VideoError(VeilError):
    """The video cannot be classified at all; one line."""


@dataclass(frozen=True)
class Frame:
    t: float  # seconds from the start
    pixels: np.ndarray  # 224×224×3 uint8 RGB


@dataclass(frozen=True)
class VideoInfo:
    duration: float
    width: int
    height: int
    codec: str
    keyframes: int
    strategy: str  # "keyframes" | "sequential"


@dataclass
class SampleRun:
    """What sampling saw; ``stopped`` is set when decoding broke off (a partial download);
    ``packets_fed`` of ``packets_read`` reached the decoder."""

    info: VideoInfo | None = None
    stopped: str | None = None
    packets_read: int = 0
    packets_fed: int = 0


def _open(source: Path | IO[bytes]):
    """A container on a path, or on a file Veil already holds open (read from its start)."""
    import av

    try:
        if not isinstance(source, Path):
            source.seek(0)
        container = av.open(str(source) if isinstance(source, Path) else source)
    except FileNotFoundError:
        raise VideoError("file vanished before it could be read") from None
    except PermissionError:
        raise VideoError("permission denied") from None
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise VideoError(f"not a video Veil can read ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    if not container.streams.video:
        container.close()
        raise VideoError("no video stream")
    return container


def _duration(container, stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return 0.0


def _to_pixels(frame) -> np.ndarray:
    pixels = frame.reformat(width=MODEL_SIZE, height=MODEL_SIZE, format="rgb24", interpolation="POINT").to_ndarray()
    rotation = int(getattr(frame, "rotation", 0) or 0) % 360
    # the display matrix's angle is counter-clockwise; np.rot90 turns counter-clockwise too
    return np.ascontiguousarray(np.rot90(pixels, rotation // 90)) if rotation in (90, 180, 270) else pixels


# Unpredictable sampling (the folder agent's): what a crafted file cannot plan around.
FULL_DECODE_SHARE = 0.25  # of the GOPs, this share (drawn at random) is decoded frame by frame, B-frames too
FULL_DECODE_FIRST_GOPS = 8  # decoded in full, so a short clip is: a quarter of a few GOPs would be a coin toss
SCENE_CHANGE_LEVELS = 24.0  # a decoded frame is a new scene when a 16×16 luma cell moved more (0–255)
EXTRA_PER_INTERVAL = 2  # scene-change samples per interval, on top of the interval's own


_LUMA_FORMATS = frozenset("yuv420p yuvj420p yuv422p yuvj422p yuv444p yuvj444p nv12 nv21 gray".split())


def _sketch(frame) -> np.ndarray:
    """A 16×16 brightness sketch to spot a scene change: 64×64 points of the luma plane, 4×4
    averaged (0.01 ms on 720p; FFmpeg's scaler would take 0.5 ms)."""
    if frame.format.name in _LUMA_FORMATS:
        plane = frame.planes[0]
        luma = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        rows = np.linspace(0, frame.height - 1, 64).astype(np.intp)
        cols = np.linspace(0, frame.width - 1, 64).astype(np.intp)
        points = luma[np.ix_(rows, cols)]
    else:
        points = frame.reformat(width=64, height=64, format="gray", interpolation="POINT").to_ndarray()
    return points.reshape(16, 4, 16, 4).mean(axis=(1, 3), dtype=np.float32)


# What a GOP's decoder is told to skip. NONREF, not BIDIR: x264 and x265 make some B-frames
# references by default (B-pyramid), and P-frames decoded without them drift: on a grainy 1080p
# x264-medium file, samples off by 4.6 levels on average and up to 33.8 (RESULTS.md, "Video at the
# decoding bound"); on x265 fixtures tests/component/test_video_plan.py fails with BIDIR.
SKIP_IN_GOP = "NONREF"
HEAVY_FRAME_BYTES = 44_000  # mean packet size from which frame threading wins (between 31 and 60 KB measured)


class _Planner:
    """Decides, GOP by GOP, what of it reaches the decoder, and drops what a skipped stretch
    would have shown wrongly.

    Fixed sampling takes, for each interval, the keyframe inside it if it has one, otherwise the
    first decoded frame from its start on. So a GOP is decoded only up to the latest interval
    start it must serve (``_last_mark``); when there is none, only its keyframe; when its
    keyframe's interval is already served, not at all. Unpredictable sampling (``chance``) decodes
    a random share of the GOPs in full, B-frames too, and every GOP with an interval start inside
    it up to its end, since each interval's sample falls at a random offset.
    """

    def __init__(self, container, stream, every: float, chance: random.Random | None, run: SampleRun):
        self.stream, self.every, self.chance, self.run = stream, every, chance, run
        self.decoder = stream.codec_context
        self.gops = GopReader(container, stream, max_bytes=gops.LOOKAHEAD_BYTES)
        self.beyond_keyframes = 0  # GOPs decoded past their keyframe
        self._served_slot = -1  # the latest interval already arranged for
        self._skipped: list[tuple[float, float]] = []  # open spans (a, b) whose frames are dropped
        self._count = 0
        self._output = 0  # frames the decoder has given
        # guessed: from the SPS timing where the stream gives it; only untimed frames use it
        self._rate = float(stream.guessed_rate or stream.average_rate or 25)
        self.untimed_end = 0.0  # where a stream without times ends, by counting its frames

    def _slot(self, t: float) -> int:
        return math.floor(t / self.every + 1e-9)

    def _last_mark(self, gop: Gop) -> float | None:
        """The latest interval start this GOP must be decoded up to; None when its keyframe serves
        every interval it spans (an interval holding the next keyframe is sampled there)."""
        end = gop.last if gop.next_key is None else min(gop.last, gop.next_key - self.every)
        mark = self._slot(end) * self.every
        return mark if mark > gop.start + 1e-9 else None

    def _time(self, frame) -> float:
        """A frame's presentation time; a raw elementary stream (a CCTV export's .h264) has none,
        so its frames, all decoded (``_decode``), are timed by their order at the stream's rate."""
        self._output += 1
        if frame.pts is not None:
            return float(frame.pts * self.stream.time_base)
        self.untimed_end = self._output / self._rate
        return (self._output - 1) / self._rate

    def _keep(self, t: float) -> bool:
        while self._skipped and t >= self._skipped[0][1]:
            self._skipped.pop(0)
        # a frame inside a skipped stretch was decoded from references Veil never fed (an open
        # GOP's leading pictures, a reorder delay's stragglers): not a frame the file shows
        return not (self._skipped and self._skipped[0][0] < t)

    def _skip(self, after: float, until: float | None) -> None:
        self._skipped.append((after, math.inf if until is None else until))

    def frames(self) -> Iterator[tuple[float, Any]]:
        """(time, frame) in presentation order, only the frames sampling can use."""
        for gop in self.gops:
            if self.run.packets_read == 0:
                self._choose_threading(gop)
            self.run.packets_read += len(gop.packets)
            yield from self._decode(gop)
        yield from self._flushed()

    def _flushed(self) -> Iterator[tuple[float, Any]]:
        """What the decoder still holds."""
        yield from self._timed(self.decoder.decode(None))

    def _timed(self, frames: list[Any]) -> Iterator[tuple[float, Any]]:
        for frame in frames:
            t = self._time(frame)
            if self._keep(t):
                yield t, frame

    def _choose_threading(self, first: Gop) -> None:
        """Before the decoder opens. Frame threading decodes two frames at once but hands every
        frame, skipped ones too, between threads: it pays where GOPs are short enough to be
        sampled at keyframes (independent frames), or where frames are heavy enough to outweigh
        the handing over. Otherwise one decoding thread leaves the other core to scaling and
        inference. Measured on 1080p (RESULTS.md, "Video at the decoding bound"): grainy x264 at
        60 KB a frame 28.9 s frame-threaded against 40.4 s; x265 at 31 KB 6.1 s against 5.2 s;
        smooth x264 at 2 KB 2.0 s against 1.2 s."""
        short = first.next_key is not None and first.next_key - first.start <= self.every + 1e-6
        heavy = sum(p.size for p in first.packets) / max(len(first.packets), 1) >= HEAVY_FRAME_BYTES
        self.stream.thread_type = "FRAME" if short or heavy else "SLICE"

    def flush_after_error(self) -> Iterator[tuple[float, Any]]:
        """What the decoder still holds when demuxing broke off."""
        try:
            yield from self._flushed()
        except Exception:  # a decoder that cannot even flush has nothing more to give
            return

    def _decode(self, gop: Gop) -> Iterator[tuple[float, Any]]:
        first = self._count < FULL_DECODE_FIRST_GOPS
        self._count += 1
        # Untimed packets (a raw elementary stream) cannot be planned around, and their frames are
        # timed by counting, so every frame is decoded.
        if not gop.timed or self.chance is not None and (first or self.chance.random() < FULL_DECODE_SHARE):
            self.decoder.skip_frame = "DEFAULT"
            yield from self._all(gop)
            return
        self.decoder.skip_frame = SKIP_IN_GOP
        if not (gop.complete and gop.keyed):
            yield from self._all(gop)  # where it ends (or what it starts from) is unknown
            return
        mark = self._last_mark(gop)
        if mark is None:
            if self.chance is None and self._slot(gop.start) <= self._served_slot:
                self._skip(gop.start - 1e-6, gop.next_key)  # its keyframe's interval is served already
                return
            self._served_slot = max(self._served_slot, self._slot(gop.start))
            self._skip(gop.start, gop.next_key)
            yield from self._timed(self._feed(gop.packets[0]))
        elif self.chance is not None:
            yield from self._all(gop)
        else:
            yield from self._until(gop, mark)

    def _feed(self, packet) -> list[Any]:
        self.run.packets_fed += 1
        return self.decoder.decode(packet)

    def _all(self, gop: Gop) -> Iterator[tuple[float, Any]]:
        self.beyond_keyframes += 1
        self._served_slot = max(self._served_slot, self._slot(gop.last))
        for packet in gop.packets:
            yield from self._timed(self._feed(packet))

    def _until(self, gop: Gop, mark: float) -> Iterator[tuple[float, Any]]:
        """Packets up to the one that brings out the first frame at or after ``mark``."""
        self.beyond_keyframes += 1
        self._served_slot = max(self._served_slot, self._slot(mark))
        for packet in gop.packets:
            reached = None
            for t, frame in self._timed(self._feed(packet)):
                if t + 1e-9 >= mark:
                    reached = t
                yield t, frame
            if reached is not None:
                self._skip(reached, gop.next_key)  # the rest of the GOP serves no interval
                return


def sample_frames(source: Path | IO[bytes], every: float, run: SampleRun | None = None,
                  unpredictable: bool = False) -> Iterator[Frame]:
    """One frame per ``every`` seconds, from a path or from a file already open (so what is
    judged is what was hashed), in one demuxing pass.

    By default the keyframe inside each interval, or else its first decoded frame: the same
    samples every run, as ``veil video``'s reports should be. ``unpredictable`` (the folder
    agent): each interval's sample is taken at a random offset inside it, a random quarter of the
    GOPs (and the first ``FULL_DECODE_FIRST_GOPS``, so a short clip is decoded in full) is decoded
    frame by frame, and up to ``EXTRA_PER_INTERVAL`` more samples are taken where the scene
    changes, so a file cannot place flagged frames where it knows no sample falls."""
    import av

    if every <= 0:
        raise VideoError("--every must be > 0")
    run = run if run is not None else SampleRun()
    chance = random.SystemRandom() if unpredictable else None
    container = _open(source)
    try:
        stream = container.streams.video[0]
        planner = _Planner(container, stream, every, chance, run)
        duration = _duration(container, stream)
        ctx = stream.codec_context
        run.info = VideoInfo(duration, ctx.width, ctx.height, ctx.name, 0, "keyframes")
        slot, sampled, extras, taken = -1, False, 0, 0
        held: tuple[float, Any] | None = None  # the slot's latest (time, frame) before its offset: taken if none later
        offset = 0.0
        last_sketch: np.ndarray | None = None

        def decoded() -> Iterator[tuple[float, Any]]:
            try:
                yield from planner.frames()
            except av.error.FFmpegError as err:
                run.stopped = f"decoding stopped at {max(0, slot + sampled) * every:.1f}s: {str(err).splitlines()[0]}"
                yield from planner.flush_after_error()

        for t, frame in decoded():
            frame_slot = math.floor(t / every + 1e-9)
            if frame_slot < slot:
                continue  # out of order: its interval is behind us
            if frame_slot > slot:
                if held is not None and not sampled:
                    yield Frame(round(held[0], 3), _to_pixels(held[1]))
                    taken += 1
                slot, sampled, extras, held = frame_slot, False, 0, None
                offset = chance.uniform(0.0, every) if chance is not None else 0.0
            if not sampled:
                if t + 1e-9 >= slot * every + offset:
                    yield Frame(round(t, 3), _to_pixels(frame))
                    sampled, taken = True, taken + 1
                    last_sketch = _sketch(frame) if chance is not None else None
                else:
                    held = (t, frame)
            elif chance is not None and extras < EXTRA_PER_INTERVAL:
                sketch = _sketch(frame)
                if last_sketch is not None and float(np.abs(sketch - last_sketch).max()) > SCENE_CHANGE_LEVELS:
                    yield Frame(round(t, 3), _to_pixels(frame))
                    extras, taken, last_sketch = extras + 1, taken + 1, sketch
        if held is not None and not sampled:
            yield Frame(round(held[0], 3), _to_pixels(held[1]))
            taken += 1
        run.info = VideoInfo(duration or planner.gops.end or planner.untimed_end, ctx.width, ctx.height, ctx.name, planner.gops.keyframes,
                             "sequential" if planner.beyond_keyframes else "keyframes")
        if taken == 0:
            raise VideoError(run.stopped or "no frame could be decoded")
    finally:
        container.close()
