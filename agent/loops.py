"""The agent's long-running loops, each a stoppable thread of its own with its interval given
by whoever wires it (design: style 6 and 12). agent/app.py builds them; tests pass short
intervals instead of patching module constants.

- ``Every``: run one callable every N seconds (heartbeat, retries, the end of a pause);
- ``Reconciler``: walk the watched folders at start, every N seconds, and when asked;
- ``ConfigWatch``: notice that the config file changed, and say how;
- ``RetryLater``: files whose handling crashed twice, tried again with backoff.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.config import Config
from agent.sources.folder import WatchedFolder, is_temporary
from agent.state import Identity, StateDB

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Intervals:
    """Seconds between the loops' turns; the defaults are what the agent runs with."""

    heartbeat_s: float = 15.0  # how finely a kill's gap row can place the moment protection stopped
    config_check_s: float = 2.0
    reconcile_s: float = 600.0  # a full walk of every watched folder, whatever the events said
    retry_check_s: float = 2.0
    retry_first_s: float = 10.0  # a file whose handling crashed is tried again after this,
    retry_max_s: float = 600.0  # doubling up to this


class Loop:
    """A named daemon thread running ``turn`` every ``interval_s`` until ``stop``; ``wake``
    runs the next turn now. ``stop`` joins the thread."""

    def __init__(self, name: str, interval_s: float):
        self.name, self.interval_s = name, interval_s
        self.stopping = threading.Event()
        self._woken = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._woken.set()
        if self._thread is not None:
            self._thread.join()

    def wake(self) -> None:
        self._woken.set()

    def _run(self) -> None:
        self.first()
        while not self.stopping.is_set():
            woken = self._woken.wait(self.interval_s)
            self._woken.clear()
            if self.stopping.is_set():
                break
            try:
                self.turn(woken)
            except Exception:  # a loop that dies stops its duty without a word: log it, go on
                log.exception("%s: a turn failed; carrying on", self.name)

    def first(self) -> None:
        """Once, as the thread starts."""

    def turn(self, woken: bool) -> None:
        raise NotImplementedError


class Every(Loop):
    def __init__(self, name: str, interval_s: float, action: Callable[[], None]):
        super().__init__(name, interval_s)
        self.action = action

    def turn(self, woken: bool) -> None:
        self.action()


class Reconciler(Loop):
    """Walks every watched folder and queues each file not decided as it is now: what the
    events missed, and what came while Veil was not running."""

    def __init__(self, walks: list[tuple[WatchedFolder, float]], state: StateDB, submit: Callable[[Path], None],
                 settle: Callable[[Path], None] | None, interval_s: float, once: bool = False, stalled_s: float = 600.0):
        super().__init__("veil-reconcile", interval_s)
        self.walks = walks  # each folder with the time before which a file counts as seen (0: every file)
        self.state, self.submit, self.settle, self.once = state, submit, settle, once
        self.stalled_s = stalled_s  # a download name written to more recently than this is still downloading
        self.walking = threading.Event()  # until the first walk is over, nobody may call the agent idle

    def start(self) -> None:
        self.walking.set()
        super().start()

    def first(self) -> None:
        self.walk("start")

    def turn(self, woken: bool) -> None:
        self.walk("requested" if woken else "periodic")

    def request(self, reason: str) -> None:
        log.info("reconcile requested: %s", reason)
        self.wake()

    def walk(self, why: str) -> int:
        self.walking.set()
        queued = 0
        try:
            for folder, since in self.walks:
                if self.once and not folder.root.is_dir():
                    log.warning("watched folder %s does not exist; nothing to check there", folder.root)
                for path in folder.walk():
                    if self.stopping.is_set():
                        return queued
                    try:
                        st = os.lstat(path)
                    except OSError:
                        continue
                    changed_at = max(st.st_ctime, st.st_mtime)
                    if changed_at < since or self.state.is_decided(path, Identity.of(st)):
                        continue
                    if is_temporary(path.name) and time.time() - changed_at < self.stalled_s:
                        if self.settle is not None:
                            self.settle(path)  # a download under way: judged at its rename, or once it stalls
                        continue
                    if self.settle is not None and time.time() - changed_at < 2.0:
                        self.settle(path)  # maybe still being written: settle it first
                    else:
                        self.submit(path)
                    queued += 1
        finally:
            self.walking.clear()
        log.info("reconcile (%s): %d files queued", why, queued)
        return queued


class ConfigWatch(Loop):
    """Notices a changed config file: ``on_change(digest, config)`` with the new config, or
    ``on_change(digest, None, problem)`` when it cannot be read or loaded."""

    def __init__(self, source: Path, interval_s: float, on_change: Callable[[str, Config | None, str], None]):
        super().__init__("veil-config", interval_s)
        self.source, self.on_change = source, on_change
        self._seen = self._identity()

    def _identity(self) -> tuple[int, int] | None:
        try:
            st = self.source.stat()
            return (st.st_mtime_ns, st.st_size)
        except OSError:
            return None

    def turn(self, woken: bool) -> None:
        from agent.config import load_config
        from agent.errors import ConfigError

        seen = self._identity()
        if seen == self._seen:
            return
        self._seen = seen
        try:
            digest = hashlib.sha256(self.source.read_bytes()).hexdigest()
        except OSError as err:
            self.on_change("", None, f"config file {self.source} unreadable ({err.strerror})")
            return
        try:
            self.on_change(digest, load_config(self.source), "")
        except ConfigError as err:
            self.on_change(digest, None, f"config changed (sha256 {digest}) but cannot be loaded: {err}")


class RetryLater:
    """Files whose handling crashed twice (a full data disk, say): tried again after
    ``first_s``, then ever less often up to ``max_s``, instead of waiting for the reconcile."""

    def __init__(self, first_s: float, max_s: float):
        self.first_s, self.max_s = first_s, max_s
        self._lock = threading.Lock()
        self._deferred: dict[Path, tuple[float, int]] = {}  # path → (next try, tries so far)
        self._why = ""  # the latest reason a file could not be handled

    def defer(self, path: Path, why: str) -> None:
        with self._lock:
            tries = self._deferred[path][1] + 1 if path in self._deferred else 0
            self._deferred[path] = (time.monotonic() + min(self.max_s, self.first_s * 2**tries), tries)
            self._why = why

    def handled(self, path: Path) -> None:
        if self._deferred:
            with self._lock:
                self._deferred.pop(path, None)

    def due(self) -> list[Path]:
        """Paths whose time has come; in flight from now: a crash sets the next time, ``handled`` removes them."""
        now = time.monotonic()
        with self._lock:
            due = [path for path, (at, _tries) in self._deferred.items() if at <= now]
            for path in due:
                self._deferred[path] = (math.inf, self._deferred[path][1])
        return due

    def trouble(self) -> str:
        """In words, for the tray: how many files wait, and why."""
        with self._lock:
            waiting, why = len(self._deferred), self._why
        if not waiting:
            return ""
        return f"{waiting} file{'s' if waiting > 1 else ''} not handled yet{f' ({why})' if why else ''}; trying again"
