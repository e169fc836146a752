"""``veil scan``: walk inputs, decode in parallel, classify, stream results in path order.

Sources (paths) → decode (worker threads; Pillow releases the GIL while decoding) → classifier
and policy (this thread, overlapping the decoders) → results, yielded in input order. Only a
bounded window of files is in flight, so memory stays flat however many files there are.

Inference is batched per file (all frames of an animation in one call). Stills are not pooled
across files: on a CPU the time per frame is lowest at batch 1 to 4 (benchmarks/RESULTS.md), so
pooling would add latency and buy nothing.
"""

from __future__ import annotations

import io
import os
import time
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from agent.classifier import FrameClassifier
from agent.classifier.scores import Scores
from agent.decode import DecodedImage, DecodeError, DecodeLimits, decode_image, read_error_message, sniff_file
from agent.outcome import Prediction
from agent.policy import Decision, Profile, decide, worst_frame
from agent.regions import Region, RegionScores, decide_picture

# In a folder, a file is scanned if its content says it is an image or video (see decode.sniff)
# or its name does: a broken "photo.jpg" is reported as unreadable, a "notes.txt" passed over.
IMAGE_SUFFIXES = frozenset(".jpg .jpeg .jpe .jfif .png .apng .gif .webp .bmp .dib .tif .tiff .heic .heif .avif".split())
VIDEO_SUFFIXES = frozenset(".mp4 .m4v .mov .mkv .webm .avi .wmv .flv .mpg .mpeg .ts .3gp .3g2 .ogv .ogm .mts .m2ts .m2v .vob .asf .f4v "
                           ".divx .mxf".split())
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES


@dataclass(frozen=True)
class ScanItem:
    path: Path
    explicit: bool  # named on the command line (a folder's non-media files are passed over)
    error: str | None = None  # the walk itself failed here


@dataclass(frozen=True)
class ScanResult:
    path: Path
    prediction: Prediction
    latency_ms: float
    decision: Decision | None = None
    scores: Scores | None = None  # of the worst frame
    frames: int = 0
    worst_frame: int = 0
    error: str | None = None  # one line; for a video cut short, where decoding stopped
    region: Region | None = None  # the area of a still whose region decided (None: the whole picture did)
    whole_scores: Scores | None = None  # of the whole picture's worst frame (``scores`` may be a region's)
    regions: RegionScores | None = None  # what the model said about the regions (None: not judged)

    @property
    def flagged(self) -> bool:
        return self.decision is not None and self.decision.flagged


def _sorted_entries(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        # sort by bytes so names that are not valid UTF-8 sort too
        return sorted(entries, key=lambda e: os.fsencode(e.name))


def iter_inputs(paths: Iterable[Path], recursive: bool = True) -> Iterator[ScanItem]:
    """Files to scan, each folder in sorted order (component-wise, like ``Path`` ordering).

    Symlinks to folders are not followed (no loops, no escaping the tree); symlinks to files
    are. A folder that vanishes or cannot be listed is one error item; the walk goes on.
    """
    for path in paths:
        if path.is_dir():
            yield from _walk(path, recursive)
        elif path.exists() or path.is_symlink():
            yield ScanItem(path, explicit=True)
        else:
            yield ScanItem(path, explicit=True, error="not found")


def _walk(folder: Path, recursive: bool) -> Iterator[ScanItem]:
    try:
        entries = _sorted_entries(folder)
    except FileNotFoundError:
        yield ScanItem(folder, explicit=False, error="folder vanished during the scan")
        return
    except OSError as err:
        yield ScanItem(folder, explicit=False, error=f"cannot list folder: {err.strerror or err}")
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                if recursive:
                    yield from _walk(path, recursive)
            elif entry.is_file():  # follows a symlink to a file; a dangling one is skipped
                yield ScanItem(path, explicit=False)
        except OSError:
            continue  # vanished between listing and looking: nothing to report


@dataclass(frozen=True)
class _Prepared:
    item: ScanItem
    decoded: DecodedImage | None
    kind: str | None  # "image" | "video" | None (not media)
    error: str | None
    seconds: float
    source: IO[bytes] | None = None  # a video the folder agent holds open: read from it, sampled unpredictably


def prepare_held(item: ScanItem, kind: str, held: bytes | IO[bytes], limits: DecodeLimits) -> _Prepared:
    """Decode a file whose content the caller already holds: an image's bytes, or an open video
    file. What is judged is then exactly what the caller hashed, whatever happens to the path."""
    if kind == "video":
        assert not isinstance(held, bytes)
        return _Prepared(item, None, "video", None, 0.0, source=held)
    started = time.perf_counter()
    try:
        decoded = decode_image(io.BytesIO(held) if isinstance(held, bytes) else held, limits)
    except DecodeError as err:
        return _Prepared(item, None, "image", str(err), time.perf_counter() - started)
    return _Prepared(item, decoded, "image", None, time.perf_counter() - started)


def prepare_file(item: ScanItem, limits: DecodeLimits) -> _Prepared:
    """Sniff and decode one file (any thread: no model here)."""
    started = time.perf_counter()
    if item.error:
        return _Prepared(item, None, None, item.error, 0.0)
    try:
        kind = sniff_file(item.path)
    except OSError as err:
        return _Prepared(item, None, "image", read_error_message(err), time.perf_counter() - started)
    if kind is None and not item.explicit and item.path.suffix.lower() not in MEDIA_SUFFIXES:
        return _Prepared(item, None, None, None, time.perf_counter() - started)  # not media: pass over
    if kind == "video" or (kind is None and item.path.suffix.lower() in VIDEO_SUFFIXES):
        return _Prepared(item, None, "video", None, time.perf_counter() - started)
    try:
        decoded = decode_image(item.path, limits)
    except DecodeError as err:
        return _Prepared(item, None, "image", str(err), time.perf_counter() - started)
    return _Prepared(item, decoded, "image", None, time.perf_counter() - started)


def classify_prepared(prepared: _Prepared, classifier: FrameClassifier, profile: Profile) -> ScanResult | None:
    """Model and policy for a prepared file; None for a folder's file that is not media."""
    item = prepared.item
    if prepared.error is not None:
        return ScanResult(item.path, "error", prepared.seconds * 1000, error=prepared.error)
    if prepared.kind == "video":
        return _finish_video(item, classifier, profile, prepared.source, unpredictable=prepared.source is not None)
    if prepared.decoded is None:
        return None  # a folder's non-media file
    started = time.perf_counter()
    decoded = prepared.decoded
    whole = len(decoded.frames)
    batch = decoded.frames if decoded.region_frames is None else np.concatenate([decoded.frames, decoded.region_frames])
    frame_scores = classifier.classify(batch)  # the whole picture and its regions in one call
    worst = worst_frame(frame_scores[:whole], profile)
    tiles = decoded.region_frames
    regions = None if tiles is None else RegionScores(decoded.regions, tuple(frame_scores[whole:]))

    def mirror(indices: list[int]) -> list[Scores]:  # a second view, taken only of the tiles that need one
        assert tiles is not None
        return classifier.classify(np.ascontiguousarray(tiles[indices][:, :, ::-1]))
    decision, scores, region = decide_picture(frame_scores[worst], regions, profile, mirror)
    seconds = prepared.seconds + time.perf_counter() - started
    return ScanResult(
        item.path,
        decision.prediction,
        seconds * 1000,
        decision=decision,
        scores=scores,
        frames=whole,
        worst_frame=decoded.frame_indices[worst],
        error=decoded.note,
        region=region,
        whole_scores=frame_scores[worst],
        regions=regions,
    )


def _finish_video(item: ScanItem, classifier: FrameClassifier, profile: Profile, source: IO[bytes] | None = None,
                  unpredictable: bool = False) -> ScanResult:
    """A video is sampled once a second like ``veil video``; malign when any segment exists."""
    from agent.sources.video import VideoError
    from agent.video import analyse_video

    started = time.perf_counter()
    try:
        report = analyse_video(item.path, classifier, profile, source=source, unpredictable=unpredictable)
    except VideoError as err:
        return ScanResult(item.path, "error", (time.perf_counter() - started) * 1000, error=str(err))
    worst = max(range(len(report.samples)), key=lambda i: report.samples[i].malign)
    top = report.samples[worst]
    decision = decide(top.scores, profile)  # flagged exactly when some sample, so some segment, is
    return ScanResult(item.path, decision.prediction, (time.perf_counter() - started) * 1000,
                      decision=decision, scores=top.scores, frames=len(report.samples), worst_frame=worst, error=report.stopped)


def scan(
    paths: Iterable[Path],
    classifier: FrameClassifier,
    profile: Profile,
    threads: int,
    recursive: bool = True,
    limits: DecodeLimits = DecodeLimits(),
) -> Generator[ScanResult, None, None]:
    """Results in input order, as they come. Closing the generator stops the workers."""
    window: deque[Future[_Prepared]] = deque()
    in_flight = 2 * threads + 2  # enough to keep every decoder busy while one file is classified
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="veil-decode")

    def oldest() -> Iterator[ScanResult]:
        result = classify_prepared(window.popleft().result(), classifier, profile)
        if result is not None:
            yield result

    try:
        for item in iter_inputs(paths, recursive):
            window.append(pool.submit(prepare_file, item, limits))
            if len(window) >= in_flight:
                yield from oldest()
        while window:
            yield from oldest()
    finally:
        for future in window:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


