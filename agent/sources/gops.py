"""A video stream's packets grouped from one keyframe to the next, in one demuxing pass.

Knowing where the next keyframe falls before a GOP is decoded is what lets sampling skip work: a
GOP whose every interval is sampled at a keyframe needs only its keyframe, and a long GOP needs
decoding only up to its last sample, since nothing after the next keyframe refers back to it.
The lookahead is bounded, so a hostile or endless GOP cannot fill memory: a GOP longer than
``LOOKAHEAD_BYTES`` or ``LOOKAHEAD_S`` is handed on in parts whose end is unknown, and those are
decoded in full.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

LOOKAHEAD_BYTES = 32 * 1024 * 1024  # 21 s of 12 Mbit/s 1080p: a default x264 GOP (10 s) fits twice
LOOKAHEAD_S = 60.0


@dataclass
class Gop:
    packets: list[Any]  # av.Packet, in decoding order
    start: float  # the first packet's time: the keyframe's, when ``keyed``
    last: float  # the latest packet time in it (presentation order)
    next_key: float | None  # where the next keyframe falls; None at the end of the stream or for a part
    keyed: bool  # starts with a keyframe
    complete: bool  # runs up to ``next_key`` or the stream's end (False: a part of an over-long GOP)
    timed: bool = True  # its packets carry times (a raw elementary stream's do not)


@dataclass
class GopReader:
    """Iterate to get the GOPs; ``keyframes`` and ``end`` (the last packet's end time) grow as it reads.
    A demuxing error ends the iteration after the packets read before it, then propagates."""

    container: Any
    stream: Any
    max_bytes: int = LOOKAHEAD_BYTES
    max_s: float = LOOKAHEAD_S
    keyframes: int = 0
    end: float = 0.0
    _packets: list[Any] = field(default_factory=list)

    def _time(self, packet) -> float | None:
        ts = packet.pts if packet.pts is not None else packet.dts
        return None if ts is None else float(ts * self.stream.time_base)

    def _hand_on(self, next_key: float | None, complete: bool) -> Gop:
        times = [t for t in (self._time(p) for p in self._packets) if t is not None]
        first = self._time(self._packets[0])
        start = first if first is not None else (min(times) if times else 0.0)
        gop = Gop(self._packets, start, max(times) if times else start, next_key, bool(self._packets[0].is_keyframe),
                  complete, timed=bool(times))
        self._packets = []
        return gop

    def __iter__(self) -> Iterator[Gop]:
        import av

        size, first = 0, None
        try:
            for packet in self.container.demux(self.stream):
                if packet.size == 0:
                    continue  # the demuxer's empty flush packet: the sampler flushes the decoder itself
                t = self._time(packet)
                if t is not None:
                    self.end = max(self.end, t + float((packet.duration or 0) * self.stream.time_base))
                if packet.is_keyframe:
                    self.keyframes += 1
                    if self._packets:
                        yield self._hand_on(t, complete=True)
                        size, first = 0, None
                self._packets.append(packet)
                size += packet.size
                first = t if first is None else first
                if size > self.max_bytes or (t is not None and first is not None and t - first > self.max_s):
                    yield self._hand_on(None, complete=False)
                    size, first = 0, None
        except av.error.FFmpegError:
            if self._packets:  # a truncated file: what was read before the break is still decoded
                yield self._hand_on(None, complete=True)
            raise
        if self._packets:
            yield self._hand_on(None, complete=True)
