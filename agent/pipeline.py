"""The agent's work queue: bounded, de-duplicated, drained by a small pool of worker threads that
a supervisor keeps alive.

- ``submit`` blocks while the queue is full: that is the back-pressure. The folder watcher keeps
  collecting events meanwhile, so a burst slows Veil down but loses nothing.
- A path already waiting is not queued twice, and a path is never in two workers' hands at once:
  one submitted again while in hand is queued again when that worker is done with it.
- A worker whose handler raises is a crashed worker: the supervisor starts a new one, and the
  path it crashed on is tried once more (a passing failure heals itself), then handed to
  ``on_give_up`` (the agent tries it again later, ever less often). A worker
  busy with one item for longer than ``stuck_after_s`` is stuck: it is left to finish (Python
  cannot kill a thread) and a replacement takes its place. Both draw on a restart budget; when
  it is spent the pipeline reports itself failed instead of spinning.
- ``stop`` finishes the items in hand and returns the ones still waiting, to be persisted.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Worker:
    generation: int
    thread: threading.Thread = field(init=False)  # made right after, with the worker as its argument
    busy_with: Path | None = None
    busy_since: float = 0.0
    abandoned: bool = False


class Pipeline:
    def __init__(self, handle: Callable[[Path], None], workers: int = 2, capacity: int = 256,
                 stuck_after_s: float = 600.0, restarts: int = 5, restart_window_s: float = 600.0,
                 on_trouble: Callable[[str], None] | None = None, on_give_up: Callable[[Path, str], None] | None = None):
        self.handle = handle
        self.on_give_up = on_give_up or (lambda path, why: None)
        self.workers_wanted = max(1, workers)
        self.capacity = capacity
        self.stuck_after_s = stuck_after_s
        self.restarts, self.restart_window_s = restarts, restart_window_s
        self.on_trouble = on_trouble or (lambda message: log.error(message))
        self._queue: collections.deque[Path] = collections.deque()
        self._queued: set[Path] = set()
        self._in_hand: set[Path] = set()
        self._again: set[Path] = set()
        self._crashed_once: set[Path] = set()  # touched only by the worker holding the path
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._workers: list[_Worker] = []
        self._restart_times: collections.deque[float] = collections.deque()
        self._generation = 0
        self._supervisor: threading.Thread | None = None
        self.failed: str | None = None
        self.done_count = 0

    # -- producer side --------------------------------------------------------------------

    def submit(self, path: Path, timeout: float | None = None) -> bool:
        """Queue ``path``; blocks while the queue is full. False if stopped or timed out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                # checked again after every wait: meanwhile another producer may have queued the
                # same path, and a worker taken it in hand
                if path in self._queued:
                    return True
                if path in self._in_hand:
                    self._again.add(path)
                    return True
                if self._stop.is_set():
                    return False
                if len(self._queue) < self.capacity:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.2 if remaining is None else min(0.2, remaining))
            self._queue.append(path)
            self._queued.add(path)
            self._cond.notify_all()
            return True

    def idle(self) -> bool:
        with self._cond:
            return not self._queue and not any(w.busy_with for w in self._workers if not w.abandoned)

    def wait_idle(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.idle():
            if self.failed or (deadline is not None and time.monotonic() > deadline):
                return False
            time.sleep(0.05)
        return True

    def backlog(self) -> int:
        with self._cond:
            return len(self._queue)

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        with self._cond:
            for _ in range(self.workers_wanted):
                self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, name="veil-supervisor", daemon=True)
        self._supervisor.start()

    def stop(self, timeout: float = 30.0) -> list[Path]:
        """Let the workers finish the item in hand; return the paths never started."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._supervisor is not None:
            self._supervisor.join()
        deadline = time.monotonic() + timeout
        for worker in list(self._workers):
            worker.thread.join(max(0.0, deadline - time.monotonic()))
            if worker.thread.is_alive():
                log.warning("worker %s still busy with %s at stop", worker.thread.name, worker.busy_with)
        with self._cond:
            left = list(self._queue) + [p for p in self._again if p not in self._queued]
            self._queue.clear()
            self._queued.clear()
            self._again.clear()
        return left

    # -- workers --------------------------------------------------------------------------

    def _spawn(self) -> None:
        self._generation += 1
        worker = _Worker(self._generation)
        worker.thread = threading.Thread(target=self._work, args=(worker,), name=f"veil-worker-{self._generation}", daemon=True)
        self._workers.append(worker)
        worker.thread.start()

    def _next(self, worker: _Worker) -> Path | None:
        with self._cond:
            while not self._queue:
                if self._stop.is_set() or worker.abandoned:
                    return None
                self._cond.wait(0.5)
            if worker.abandoned:
                return None
            path = self._queue.popleft()
            self._queued.discard(path)
            self._in_hand.add(path)
            worker.busy_with, worker.busy_since = path, time.monotonic()
            self._cond.notify_all()
            return path

    def _work(self, worker: _Worker) -> None:
        while not self._stop.is_set() and not worker.abandoned:
            path = self._next(worker)
            if path is None:
                return
            try:
                self.handle(path)
            except Exception as err:  # the handler should never raise: this worker has crashed
                log.debug("worker crashed on %s", path, exc_info=True)  # the detail, for the log file
                # A crash may be passing (a race with another process, a file system hiccup): the
                # path gets one more try. A second crash hands it to on_give_up (to try later).
                retry = path not in self._crashed_once
                if retry:
                    self._crashed_once.add(path)
                else:
                    self._crashed_once.discard(path)
                self._done(worker, path, again=retry)
                why = f"{type(err).__name__}: {err}"
                message = f"worker crashed on {path}: {why}; " + ("trying it once more" if retry else "trying it later")
                if not retry:
                    self.on_give_up(path, why)
                try:
                    self.on_trouble(message)
                except Exception:  # reporting can fail for the same reason (a full disk): say it here
                    log.error(message)
                return
            self._crashed_once.discard(path)
            self._done(worker, path)

    def _done(self, worker: _Worker, path: Path, again: bool = False) -> None:
        with self._cond:
            worker.busy_with = None
            self._in_hand.discard(path)
            self.done_count += 1
            if again:
                self._again.add(path)
            if path in self._again and not self._stop.is_set():
                self._again.discard(path)
                self._queue.append(path)  # may exceed capacity by the few paths in hand: never blocks a worker
                self._queued.add(path)
            self._cond.notify_all()

    def _supervise(self) -> None:
        while not self._stop.wait(0.5):
            with self._cond:
                for worker in list(self._workers):
                    if worker.abandoned:
                        if not worker.thread.is_alive():
                            self._workers.remove(worker)
                        continue
                    stuck = worker.busy_with is not None and time.monotonic() - worker.busy_since > self.stuck_after_s
                    if worker.thread.is_alive() and not stuck:
                        continue
                    if stuck:
                        worker.abandoned = True
                        self.on_trouble(f"worker stuck on {worker.busy_with} for {time.monotonic() - worker.busy_since:.0f} s; "
                                        "starting a replacement")
                    else:
                        self._workers.remove(worker)
                    if not self._may_restart():
                        self.failed = (f"workers failed {len(self._restart_times)} times in "
                                       f"{self.restart_window_s:.0f} s; giving up")
                        self.on_trouble(self.failed)
                        self._stop.set()
                        self._cond.notify_all()
                        return
                    self._spawn()

    def _may_restart(self) -> bool:
        now = time.monotonic()
        while self._restart_times and now - self._restart_times[0] > self.restart_window_s:
            self._restart_times.popleft()
        if len(self._restart_times) >= self.restarts:
            return False
        self._restart_times.append(now)
        return True
