"""``veil scan --cluster``: the local scan's own steps (agent/scan.py) run as Ray tasks.

- A walk task (a Ray streaming generator) lists the inputs exactly as ``iter_inputs`` does and
  yields them a batch at a time; Ray's generator backpressure keeps it only a few batches ahead
  of the driver, so the file list is never held whole, on any machine.
- Chunks of files go to judge tasks of one CPU each. A worker process opens the model the first
  time it judges and keeps it, so every core of every node runs its own single-threaded
  classifier (for this small model one thread per image is the cheapest per core), and the
  model is loaded once per worker, not once per file.
- A video found in a chunk gets a task of its own, through the same code as the local scan and
  ``veil video`` (``classify_prepared`` → ``analyse_video``).
- The driver keeps a bounded window of chunks in flight and yields results in input order, so
  the output is in path order and the driver's memory stays flat however many files there are.

Faults: Ray runs a task again when its worker dies (``RETRIES``); a chunk that fails twice is
split into one task per file, and a file whose own task fails twice becomes an ``error`` row, so a
file that kills workers cannot hang or sink the scan. A chunk's rows are written only once the
whole chunk has come back, so a retried task never duplicates a row. Ctrl-C ends the Ray job, which
cancels every task still queued or running.

Every node must see the scanned paths at the same names (a shared mount): the walk runs on the
driver's node, the judging anywhere.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.classifier import Classifier, default_threads
from agent.config import ModelSection
from agent.decode import DecodeLimits, read_error_message
from agent.errors import FatalError
from agent.fsutil import display_path
from agent.policy import Profile
from agent.scan import ScanItem, ScanResult, classify_prepared, iter_inputs, prepare_file
from agent.scan_output import Progress

# Files per judge task: Ray's cost per task (3-5 ms, benchmarks/RESULTS.md, "veil scan --cluster")
# vanishes against 16 decodes.
CHUNK_FILES = 16
WALK_BATCH = 512  # paths per walk yield
WALK_AHEAD = 8  # walk batches Ray lets the walk run ahead of the driver
CHUNKS_PER_CPU = 3  # chunks in flight per cluster CPU: every core has the next chunk queued while the driver writes
RETRIES = 1  # each task runs at most twice: a worker killed once is retried; a file that kills two becomes an error row
SHARED_MOUNT = "every node must see the scanned paths at the same names (a shared mount)"

_VIDEO = "video"  # a chunk's answer for a video, which is judged in a task of its own
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterAddress:
    address: str  # for ray.init: "auto", "local" (start one here) or a cluster's address
    cpus: int | None = None  # CPUs of a cluster started here (local[N])


def parse_address(text: str) -> ClusterAddress:
    """``auto`` (RAY_ADDRESS or a cluster running on this machine), ``local[N]`` (start one here with
    N workers; ``local``: one per core) or a Ray address (``host:6379``, ``ray://host:10001``)."""
    local = re.fullmatch(r"local(?:\[(\d+)\])?", text.strip())
    if local:
        cpus = int(local.group(1)) if local.group(1) else default_threads()
        if cpus < 1:
            raise FatalError(f"--cluster {text}: a local cluster needs at least one worker")
        return ClusterAddress("local", cpus)
    if not text.strip():
        raise FatalError("--cluster needs an address: auto, local[N] or host:port")
    return ClusterAddress(text.strip())


@contextmanager
def connected(where: ClusterAddress) -> Iterator[Any]:
    """Ray, connected to the cluster (started here for ``local[N]``); disconnected (or stopped) after."""
    try:
        import ray
    except ImportError:
        raise FatalError("--cluster needs Ray: pip install 'veil-agent[cluster]'") from None
    # Workers' prints would land in the driver's stdout, which may be the results: keep them in Ray's logs.
    options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if where.cpus is not None:
        options.update(num_cpus=where.cpus, include_dashboard=False)
    try:
        ray.init(address=where.address, **options)
    except Exception as err:  # Ray raises ConnectionError, ValueError, RuntimeError… for an unreachable cluster
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FatalError(f"cannot reach the Ray cluster at {where.address}: {first}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


# --- on the workers ------------------------------------------------------------------------------

_classifiers: dict[ModelSection, Classifier] = {}  # per worker process: the model is opened once, on first use


def _worker_classifier(model: ModelSection) -> Classifier:
    if model not in _classifiers:
        from agent.classifier import open_classifier

        # One thread: Ray gives this task one CPU and runs as many such tasks as the node has cores.
        _classifiers[model] = open_classifier(replace(model, threads=1))
    return _classifiers[model]


def _named_node(item: ScanItem, result: ScanResult | None) -> ScanResult | None:
    """An error row for a file this node cannot open says which node: the walk (elsewhere) found it,
    so the mount is likely not shared, or the file went away since."""
    if result is None or result.prediction != "error" or item.error is not None:
        return result
    try:
        os.close(os.open(item.path, os.O_RDONLY))
    except OSError as err:
        import ray

        return replace(result, error=f"cannot be read on node {ray.util.get_node_ip_address()}: {read_error_message(err)}")
    return result


def judge_chunk(items: list[ScanItem], model: ModelSection, profile: Profile, limits: DecodeLimits) -> list[ScanResult | None | str]:
    """Each file's result (None: not media), or ``_VIDEO`` for a video, left to ``judge_video``."""
    classifier = _worker_classifier(model)
    answers: list[ScanResult | None | str] = []
    for item in items:
        prepared = prepare_file(item, limits)
        if prepared.kind == "video" and prepared.error is None:
            answers.append(_VIDEO)
        else:
            answers.append(_named_node(item, classify_prepared(prepared, classifier, profile)))
    return answers


def judge_video(item: ScanItem, model: ModelSection, profile: Profile, limits: DecodeLimits) -> ScanResult | None:
    return _named_node(item, classify_prepared(prepare_file(item, limits), _worker_classifier(model), profile))


def walk(roots: list[str], recursive: bool) -> Iterator[list[tuple[int, ScanItem]]]:
    """The local scan's walk, root by root, in batches of (root's index, item)."""
    batch: list[tuple[int, ScanItem]] = []
    for index, root in enumerate(roots):
        for item in iter_inputs([Path(root)], recursive):
            batch.append((index, item))
            if len(batch) >= WALK_BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


# --- on the driver -------------------------------------------------------------------------------


class ClusterProgress(Progress):
    """The local scan's counter, with how many files the walk has found so far and the rate."""

    def __init__(self, enabled: bool | None = None):
        super().__init__(enabled)
        self.found = 0
        self.walk_done = False
        self._started = time.monotonic()

    def walked(self, found: int, done: bool) -> None:
        self.found, self.walk_done = found, done

    def update(self, result: ScanResult) -> None:
        self.files += 1
        self.flagged += result.flagged
        self.errors += result.prediction == "error"
        if self.enabled:
            rate = self.files / max(time.monotonic() - self._started, 1e-6)
            found = f"{self.found}" if self.walk_done else f"{self.found}+"
            sys.stderr.write(f"\rveil: {self.files}/{found} files, {rate:.0f} files/s, {self.flagged} flagged, {self.errors} unreadable")
            sys.stderr.flush()


_WAITING = object()  # an answer still out on the cluster


@dataclass
class _Chunk:
    items: list[ScanItem]  # as the workers read them (absolute paths)
    shown: list[Path]  # the same files as the local scan names them
    answers: list[Any] = field(default_factory=list)  # per item: ScanResult | None, or _WAITING

    @property
    def done(self) -> bool:
        return bool(self.answers) and all(a is not _WAITING for a in self.answers)


@dataclass(frozen=True)
class _Task:
    chunk: _Chunk
    index: int | None  # None: the whole chunk; else the one file it judges
    video: bool = False


def _crash_row(item: ScanItem, err: BaseException) -> ScanResult:
    import ray

    if isinstance(err, ray.exceptions.WorkerCrashedError | ray.exceptions.NodeDiedError):
        why = "the worker judging it died twice (killed, or crashed on this file)"
    else:
        why = f"judging it failed twice on the cluster: {_last_line(err)}"
    return ScanResult(item.path, "error", 0.0, error=why)


def _last_line(err: BaseException) -> str:
    cause = getattr(err, "cause", None) or err  # a RayTaskError carries the worker's exception
    text = str(cause).strip().splitlines()
    return text[-1] if text else type(cause).__name__


def _absolute(path: Path) -> Path:
    # Lexically, not resolved: each result is named as the local scan names it by replacing this prefix.
    return path if path.is_absolute() else Path(os.getcwd()) / path


def scan_on_cluster(ray: Any, paths: Iterable[Path], model: ModelSection, profile: Profile, recursive: bool = True,
                    limits: DecodeLimits = DecodeLimits(), progress: ClusterProgress | None = None) -> Generator[ScanResult, None, None]:
    """The local ``scan``'s results, in the same order, judged on the connected Ray cluster. What is
    still running there when the generator is closed ends with the job (``connected``'s exit)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    given = list(paths)
    roots = [_absolute(p) for p in given]
    here = ray.get_runtime_context().get_node_id()
    # The walk reads what the user named, on the user's machine when that is a node (soft: any node will do).
    walker = ray.remote(walk).options(num_cpus=0, max_retries=RETRIES, _generator_backpressure_num_objects=WALK_AHEAD,
                                      scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True))
    judge = ray.remote(judge_chunk).options(num_cpus=1, max_retries=RETRIES)
    video = ray.remote(judge_video).options(num_cpus=1, max_retries=RETRIES)
    window = max(2, int(ray.cluster_resources().get("CPU", 1)) * CHUNKS_PER_CPU)
    refs = (ray.put(model), ray.put(profile), ray.put(limits))  # shipped once, not with every task

    order: deque[_Chunk] = deque()
    tasks: dict[Any, _Task] = {}
    batches = walker.remote([str(r) for r in roots], recursive)
    pending: list[tuple[int, ScanItem]] = []
    walked, walk_done = 0, False

    def submit(chunk: _Chunk, index: int | None = None) -> None:
        items = chunk.items if index is None else [chunk.items[index]]
        tasks[judge.remote(items, *refs)] = _Task(chunk, index)

    def refill() -> None:
        nonlocal walked, walk_done
        while not walk_done and len(order) < window:
            while len(pending) < CHUNK_FILES and not walk_done:
                try:
                    batch = ray.get(next(batches))
                except StopIteration:
                    walk_done = True
                    break
                except ray.exceptions.RayError as err:  # the walk itself died twice: nothing more can be listed
                    raise FatalError(f"the walk of the inputs failed on the cluster: {_last_line(err)}") from None
                pending.extend(batch)
                walked += len(batch)
            if progress is not None:
                progress.walked(walked, walk_done)
            if not pending:
                return
            taken, pending[:] = pending[:CHUNK_FILES], pending[CHUNK_FILES:]
            chunk = _Chunk([item for _, item in taken], [given[i] / item.path.relative_to(roots[i]) for i, item in taken])
            chunk.answers = [_WAITING] * len(taken)
            order.append(chunk)
            submit(chunk)

    def settle(ref: Any) -> None:
        task = tasks.pop(ref)
        chunk = task.chunk
        try:
            answer = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            raise
        except ray.exceptions.RayError as err:
            if task.index is None and len(chunk.items) > 1:  # find the file that fails: one task each
                for i in range(len(chunk.items)):
                    submit(chunk, i)
            else:
                chunk.answers[task.index or 0] = _crash_row(chunk.items[task.index or 0], err)
            return
        answers = [answer] if task.video else answer
        start = task.index or 0
        for i, got in enumerate(answers, start):
            if isinstance(got, str):  # _VIDEO
                tasks[video.remote(chunk.items[i], *refs)] = _Task(chunk, i, video=True)
            else:
                chunk.answers[i] = got

    try:
        refill()
        while order:
            if tasks:
                ready, _ = ray.wait(list(tasks), num_returns=1, timeout=0.5)
                if ready:  # then every answer already in, in one pass: one wait per answer would cost O(window) each
                    ready, _ = ray.wait(list(tasks), num_returns=len(tasks), timeout=0)
                for ref in ready:
                    settle(ref)
            while order and order[0].done:
                chunk = order.popleft()
                for shown, result in zip(chunk.shown, chunk.answers):
                    if result is None:
                        continue
                    if result.error and result.error.startswith("cannot be read on node"):
                        print(f"veil: {display_path(shown)}: {result.error}; {SHARED_MOUNT}", file=sys.stderr)
                    yield replace(result, path=shown)
            refill()
    finally:
        # Ctrl-C or a closed generator: nothing may go on running on the cluster. Not by ray.cancel:
        # with replies in flight it aborts the driver (ray 2.60, task_manager.cc "Tried to complete
        # task that was not pending"). Ending the job does it whole: when the driver disconnects
        # (``connected`` → ray.shutdown), Ray kills the job's workers and drops its queued tasks.
        tasks.clear()
        order.clear()
