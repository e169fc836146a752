"""``veil video``: per-interval samples → flagged segments (Miles Deep, P-HAR), as JSON or .tag.

Decoding runs in its own thread and feeds a bounded queue, so decoding and inference overlap and
memory stays flat however long the video is.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from agent.classifier import FrameClassifier
from agent.classifier.scores import Scores
from agent.policy import Profile, decide
from agent.sources.video import Frame, SampleRun, VideoError, sample_frames


@dataclass(frozen=True)
class Sample:
    t: float
    scores: Scores
    malign: float
    flagged: bool


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    label: str
    score: float
    coverage: float


@dataclass
class VideoReport:
    file: str
    duration_s: float
    every_s: float
    profile: str
    samples: list[Sample] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    elapsed_s: float = 0.0
    stopped: str | None = None  # set when decoding broke off before the end
    strategy: str = ""

    @property
    def flagged_s(self) -> float:
        return round(sum(s.end - s.start for s in self.segments), 3)

    def as_json(self) -> dict:
        return {
            "file": self.file,
            "duration_s": round(self.duration_s, 3),
            "every_s": self.every_s,
            "profile": self.profile,
            "samples": [{"t": s.t, "malign": round(s.malign, 4), "scores": {k: round(v, 4) for k, v in s.scores.as_dict().items()}}
                        for s in self.samples],
            "segments": [{"start": g.start, "end": g.end, "label": g.label, "score": round(g.score, 4), "coverage": round(g.coverage, 4)}
                         for g in self.segments],
            "flagged_s": self.flagged_s,
            "elapsed_s": round(self.elapsed_s, 3),
            "decoding": self.strategy,
            "stopped": self.stopped,
        }

    def as_tag(self, labels: tuple[str, ...]) -> str:
        """Miles Deep's .tag text: names and labels, total and per-label seconds, then one line per
        segment: label, start, end, score, coverage."""
        per_label = {label: sum(g.end - g.start for g in self.segments if g.label == label) for label in labels}
        lines = [
            ", ".join([Path(self.file).name, *labels]),
            ", ".join([f"{self.duration_s:.1f}", *(f"{per_label[label]:.1f}" for label in labels)]),
        ]
        lines += [f"{g.label}, {g.start:.1f}, {g.end:.1f}, {g.score:.4f}, {g.coverage:.4f}" for g in self.segments]
        return "\n".join(lines) + "\n"


def find_segments(samples: list[Sample], every: float, profile: Profile, gap_samples: int = 2) -> list[Segment]:
    """Join flagged samples into segments, bridging gaps of at most ``gap_samples`` samples.

    A segment runs from its first flagged sample to one interval past its last; ``label`` is the
    malign class with the highest mean inside it, ``score`` the mean malign score, ``coverage``
    the fraction of its samples that are flagged.
    """
    segments: list[Segment] = []
    flagged = [i for i, s in enumerate(samples) if s.flagged]
    if not flagged:
        return segments
    groups: list[list[int]] = [[flagged[0]]]
    for i in flagged[1:]:
        if i - groups[-1][-1] - 1 <= gap_samples:
            groups[-1].append(i)
        else:
            groups.append([i])
    for group in groups:
        inside = samples[group[0] : group[-1] + 1]
        means = {c: sum(s.scores[c] for s in inside) / len(inside) for c in profile.malign_classes}
        segments.append(Segment(
            start=inside[0].t,
            end=round(inside[-1].t + every, 3),
            label=max(means, key=lambda c: means[c]),
            score=sum(s.malign for s in inside) / len(inside),
            coverage=sum(s.flagged for s in inside) / len(inside),
        ))
    return segments


def _decode_ahead(source: Path | IO[bytes], every: float, run: SampleRun, out: queue.Queue, stop: threading.Event,
                  unpredictable: bool) -> None:
    try:
        for frame in sample_frames(source, every, run, unpredictable):
            while not stop.is_set():
                try:
                    out.put(frame, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
        out.put(None)
    except BaseException as err:  # handed to the consumer, which raises it
        out.put(err)


def _frames(source: Path | IO[bytes], every: float, run: SampleRun, unpredictable: bool) -> Iterator[Frame]:
    frames: queue.Queue = queue.Queue(maxsize=64)
    stop = threading.Event()
    worker = threading.Thread(target=_decode_ahead, args=(source, every, run, frames, stop, unpredictable),
                              name="veil-video-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = frames.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def analyse_video(path: Path, classifier: FrameClassifier, profile: Profile, every: float = 1.0, gap_samples: int = 2,
                  source: IO[bytes] | None = None, unpredictable: bool = False) -> VideoReport:
    """Samples and flagged segments of the video at ``path`` (read from ``source`` when the caller
    holds it open; ``unpredictable``: sampling a crafted file cannot plan around, see ``sample_frames``)."""
    started = time.perf_counter()
    run = SampleRun()
    samples: list[Sample] = []
    batch: list[Frame] = []

    def flush() -> None:
        for frame, scores in zip(batch, classifier.classify(np.stack([f.pixels for f in batch]))):
            decision = decide(scores, profile)
            samples.append(Sample(frame.t, scores, decision.malign, decision.flagged))
        batch.clear()

    for frame in _frames(path if source is None else source, every, run, unpredictable):
        batch.append(frame)
        if len(batch) >= classifier.backend.max_batch:
            flush()
    if batch:
        flush()
    if run.info is None:
        raise VideoError("no video stream")
    report = VideoReport(str(path), run.info.duration, every, profile.name, samples, stopped=run.stopped, strategy=run.info.strategy)
    report.segments = find_segments(samples, every, profile, gap_samples)
    report.elapsed_s = time.perf_counter() - started
    return report
