"""Watched folders → paths of files that are complete, each handed over once it has settled.

watchdog observes each ``[[watch]]`` folder (inotify on Linux). Its events only mark a path as
pending; a ticker thread decides when a pending file is complete:

- after a close-after-write with no other writer left open (inotify's ``IN_CLOSE_WRITE``), once
  it has been quiet for ``closed_quiet_s`` (a writer that closes and reopens shows up in that
  time as a new open or write);
- otherwise (no close events: other platforms, polling) when two ``stat`` calls ``quiet_s``
  apart see the same size and mtime;
- a writer that keeps the file open but stops writing for ``idle_s`` is treated as done, so a
  lost close event cannot hide a file forever.

Every file is a candidate, whatever its name: the decider sniffs what it is (a name is no
hiding place). A file under a temporary download name (``.part``, ``.crdownload``, ``.tmp``,
``~$…``) is handed over when it is renamed to its final name, or once nobody has written to it
for ``stalled_s`` (``[agent] stalled_download_s``): a download that never finishes is judged
under the name it has. New sub-folders are walked (files written before the watch on
them existed would be missed otherwise); a watched folder that is deleted is re-watched when it
comes back; a watch that cannot be set up (inotify limits) falls back to polling with a warning;
a kernel queue overflow triggers a reconcile. Independently of all events, ``reconcile`` walks
every folder (at start and then periodically) so that nothing missed stays missed.
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:  # watchdog itself is imported when watching starts
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers.api import BaseObserver, ObservedWatch

log = logging.getLogger(__name__)

TEMP_SUFFIXES = frozenset(".part .partial .crdownload .download .opdownload .tmp .temp .!qb .swp".split())


def is_temporary(name: str) -> bool:
    """Names downloaders and editors give files they are still writing."""
    lower = name.lower()
    return lower.startswith(("~$", ".~lock")) or os.path.splitext(lower)[1] in TEMP_SUFFIXES


@dataclass(frozen=True)
class WatchedFolder:
    root: Path
    recursive: bool = True
    include: tuple[str, ...] = ()  # globs on the name or the path below root; () = every file (content decides)
    exclude: tuple[str, ...] = ()
    ignored: tuple[Path, ...] = ()  # Veil's own folders (data dir, vault) inside a watched tree

    def wants(self, path: Path) -> bool:
        """Whether a file at ``path`` is this watch's business (by name only; nothing is read).
        Without include globs every file is: whether it is an image or a video is the decider's
        question, answered from its first bytes."""
        if any(path == ignored or ignored in path.parents for ignored in self.ignored):
            return False
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            return False
        if not self.recursive and len(relative.parts) != 1:
            return False
        rel = relative.as_posix()
        if any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(path.name, g) for g in self.exclude):
            return False
        if self.include:
            return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(path.name, g) for g in self.include)
        return True

    def walk(self, below: Path | None = None) -> Iterator[Path]:
        """Every wanted file below root (or below a folder inside it); symlinks, to files or to
        folders, are not followed."""
        stack = [below or self.root]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as entries:
                    listed = list(entries)
            except OSError:
                continue  # vanished or unreadable: the health check reports a missing root
            for entry in listed:
                path = Path(entry.path)
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if self.recursive and not any(path == i or i in path.parents for i in self.ignored):
                            stack.append(path)
                    elif entry.is_file(follow_symlinks=False) and self.wants(path):
                        yield path
                except OSError:
                    continue


@dataclass
class _Pending:
    last_event: float
    opens: int = 0
    closed: bool = False
    last_stat: tuple[int, int] | None = None


class Settler:
    """Pending paths → the ones that are complete now. Thread-safe; never blocks the caller."""

    def __init__(self, quiet_s: float = 0.5, idle_s: float = 30.0, closed_quiet_s: float = 0.1,
                 clock: Callable[[], float] = time.monotonic, stalled_s: float = 600.0):
        self.quiet_s, self.idle_s, self.closed_quiet_s, self.clock = quiet_s, idle_s, closed_quiet_s, clock
        self.stalled_s = stalled_s  # a temporary download name nobody wrote to for this long is handed over
        self._pending: dict[Path, _Pending] = {}
        self._lock = threading.Lock()

    def changed(self, path: Path) -> None:
        with self._lock:
            entry = self._pending.setdefault(path, _Pending(self.clock()))
            entry.last_event = self.clock()
            entry.closed = False

    def opened(self, path: Path) -> None:
        with self._lock:
            entry = self._pending.get(path)
            if entry is not None:  # only writers of files already pending matter
                entry.opens += 1
                entry.last_event = self.clock()

    def closed(self, path: Path, wrote: bool) -> None:
        with self._lock:
            entry = self._pending.get(path)
            if entry is not None:
                entry.opens = max(0, entry.opens - 1)
                entry.closed = entry.closed or wrote
                entry.last_event = self.clock()

    def forget(self, path: Path) -> None:
        with self._lock:
            self._pending.pop(path, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def settling(self) -> int:
        """Files that will be handed over once they are complete; downloads that wait for their
        rename (or for ``stalled_s``) are not counted: there is nothing to do for them yet."""
        with self._lock:
            return sum(not is_temporary(path.name) for path in self._pending)

    def paths(self) -> list[Path]:
        with self._lock:
            return list(self._pending)

    def due(self) -> list[Path]:
        """Remove and return the paths whose files are complete now; drop vanished ones."""
        now = self.clock()
        with self._lock:
            candidates = [(p, e) for p, e in self._pending.items() if now - e.last_event >= (self.closed_quiet_s if e.closed else 0)]
        ready = []
        for path, entry in candidates:
            quiet = now - entry.last_event
            try:
                st = os.lstat(path)
            except OSError:
                self.forget(path)  # deleted (or renamed away) before it settled
                continue
            if not stat.S_ISREG(st.st_mode):
                self.forget(path)
                continue
            identity = (st.st_size, st.st_mtime_ns)
            with self._lock:
                if self._pending.get(path) is not entry:
                    continue
                if entry.opens > 0 and quiet < self.idle_s:
                    continue  # someone still has it open for writing
                if is_temporary(path.name):
                    settled = quiet >= self.stalled_s and entry.last_stat == identity  # a download that stopped
                elif entry.closed and entry.opens == 0:
                    settled = quiet >= self.closed_quiet_s  # closed after writing, quiet since: complete
                else:
                    settled = entry.last_stat == identity and quiet >= self.quiet_s
                if settled:
                    del self._pending[path]
                    ready.append(path)
                else:
                    entry.last_stat = identity
        return ready


@dataclass
class _Watch:
    folder: WatchedFolder
    handle: ObservedWatch | None = None
    observer: BaseObserver | None = None
    inode: tuple[int, int] | None = None  # (dev, ino) of the root when the watch was set up
    polling: bool = False
    missing_since: float | None = None


@dataclass
class WatchNotices:
    """What the watcher tells the agent (for the log, the audit and the status line)."""

    warn: Callable[[str], None] = field(default=lambda message: log.warning(message))
    reconcile: Callable[[str], None] = field(default=lambda reason: None)


class FolderWatcher:
    """Runs the observers and the settling ticker; complete files go to ``on_ready`` (which may
    block: that is the back-pressure, and events keep being collected meanwhile)."""

    def __init__(self, folders: list[WatchedFolder], on_ready: Callable[[Path], None], notices: WatchNotices | None = None,
                 quiet_s: float = 0.5, idle_s: float = 30.0, tick_s: float = 0.1, health_s: float = 1.0, poll_s: float = 2.0,
                 stalled_s: float = 600.0):
        self.settler = Settler(quiet_s, idle_s, stalled_s=stalled_s)
        self.on_ready = on_ready
        self.notices = notices or WatchNotices()
        self.tick_s, self.health_s, self.poll_s = tick_s, health_s, poll_s
        self._watches = [_Watch(f) for f in folders]
        self._observer: BaseObserver | None = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._all_polling = False

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        try:
            self._observer = observer = _observer(self._overflowed)
        except OSError as err:
            # No inotify instance to be had (the per-user limit used up, a sandbox): poll every
            # folder instead, slower to notice, the same result, and say so.
            from watchdog.observers.polling import PollingObserver

            self.notices.warn(f"cannot use inotify ({err.strerror or err}; raise fs.inotify.max_user_instances); "
                              f"polling every watched folder every {self.poll_s:g} s instead")
            self._observer = observer = PollingObserver(timeout=self.poll_s)
            self._all_polling = True
        observer.start()
        for watch in self._watches:
            self._schedule(watch)
        self._ticker = threading.Thread(target=self._tick_loop, name="veil-settle", daemon=True)
        self._ticker.start()

    def _overflowed(self) -> None:
        self.notices.warn("the kernel's event queue overflowed and events were lost; reconciling every watched folder")
        self.notices.reconcile("event queue overflow")

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        observers = {id(w.observer): w.observer for w in self._watches if w.observer is not None}
        if self._observer is not None:
            observers[id(self._observer)] = self._observer
        for observer in observers.values():
            observer.stop()
        for observer in observers.values():
            observer.join()

    def describe(self) -> list[str]:
        return [f"{w.folder.root}{' (polling)' if w.polling else ''}{' (missing)' if w.missing_since else ''}" for w in self._watches]

    def pending(self) -> list[Path]:
        return self.settler.paths()

    # -- watches --------------------------------------------------------------------------

    def _schedule(self, watch: _Watch) -> None:
        root = watch.folder.root
        try:
            st = os.stat(root)
        except OSError:
            if watch.missing_since is None:
                watch.missing_since = time.time()
                self.notices.warn(f"watched folder {root} does not exist; watching for it to appear")
            return
        handler = cast("FileSystemEventHandler", _Handler(self, watch.folder))  # dispatch() is all watchdog calls
        assert self._observer is not None, "start() first"
        try:
            watch.handle = self._observer.schedule(handler, str(root), recursive=watch.folder.recursive)
            watch.observer, watch.polling = self._observer, self._all_polling
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EMFILE, errno.ENOMEM):
                self.notices.warn(f"cannot watch {root}: {err.strerror or err}; it is covered by the periodic reconcile only")
                return
            # inotify's per-user watch or instance limit: poll this folder instead (slower to
            # notice, same result), and say how to raise the limit
            from watchdog.observers.polling import PollingObserver

            self.notices.warn(f"cannot watch {root} with inotify ({err.strerror or err}; raise fs.inotify.max_user_watches "
                              f"or max_user_instances); polling it every {self.poll_s:g} s instead")
            poller = PollingObserver(timeout=self.poll_s)
            watch.handle = poller.schedule(handler, str(root), recursive=watch.folder.recursive)
            poller.start()
            watch.observer, watch.polling = poller, True
        watch.inode = (st.st_dev, st.st_ino)
        if watch.missing_since is not None:
            self.notices.warn(f"watched folder {root} is back; watching it again")
            watch.missing_since = None
            self._walk_into_settler(watch.folder, root)

    def _unschedule(self, watch: _Watch) -> None:
        if watch.handle is not None and watch.observer is not None:
            try:
                watch.observer.unschedule(watch.handle)
            except (KeyError, OSError):
                pass  # the emitter already ended with its deleted folder
            if watch.polling and watch.observer is not self._observer:
                watch.observer.stop()
                watch.observer.join()
        watch.handle = watch.observer = None

    def _check_health(self) -> None:
        """Re-watch roots that were deleted and recreated (a new inode): the old watch is dead."""
        for watch in self._watches:
            try:
                st = os.stat(watch.folder.root)
                current = (st.st_dev, st.st_ino)
            except OSError:
                current = None
            if current is not None and current == watch.inode:
                continue
            if watch.handle is not None:
                self._unschedule(watch)
                watch.inode = None
                if current is None:
                    watch.missing_since = time.time()
                    self.notices.warn(f"watched folder {watch.folder.root} was removed; watching for it to come back")
                    continue
                watch.missing_since = watch.missing_since or time.time()
            if current is not None:
                self._schedule(watch)

    # -- settling -------------------------------------------------------------------------

    def _walk_into_settler(self, folder: WatchedFolder, below: Path) -> None:
        for path in folder.walk(below):
            self.settler.changed(path)

    def _tick_loop(self) -> None:
        next_health = 0.0
        while not self._stop.wait(self.tick_s):
            try:
                for path in self.settler.due():
                    if self._stop.is_set():
                        return
                    self.on_ready(path)
                if time.monotonic() >= next_health:
                    next_health = time.monotonic() + self.health_s
                    self._check_health()
            except Exception:  # never let one bad path end the watching
                log.exception("folder watcher tick failed")


class _Handler:
    """watchdog callbacks → the settler. Runs on watchdog's thread; must never block."""

    def __init__(self, watcher: FolderWatcher, folder: WatchedFolder):
        self.watcher, self.folder = watcher, folder

    def dispatch(self, event) -> None:
        try:
            self._dispatch(event)
        except Exception:
            log.exception("handling %s failed", event)

    def _dispatch(self, event) -> None:
        settler = self.watcher.settler
        kind = event.event_type
        src = Path(os.fsdecode(event.src_path))
        if event.is_directory:
            if kind in ("created", "moved"):
                target = Path(os.fsdecode(event.dest_path)) if kind == "moved" else src
                if target == self.folder.root or self.folder.root in target.parents:
                    self.watcher._walk_into_settler(self.folder, target)
            return
        if kind == "moved":
            settler.forget(src)
            dest = Path(os.fsdecode(event.dest_path))
            if self.folder.wants(dest):
                settler.changed(dest)
            return
        if kind == "deleted":
            settler.forget(src)
            return
        if not self.folder.wants(src):
            return
        if kind in ("created", "modified"):
            settler.changed(src)
        elif kind == "opened":
            settler.opened(src)
        elif kind == "closed":
            settler.closed(src, wrote=True)
        elif kind == "closed_no_write":
            settler.closed(src, wrote=False)


def _observer(on_overflow: Callable[[], None]) -> BaseObserver:
    """The platform's observer. On Linux, an inotify one that calls ``on_overflow`` when the
    kernel's event queue overflows (events were lost), through watchdog's own callback for it
    (``WatchCallback.on_queue_overflow``, watchdog 7.1). Elsewhere the periodic reconcile is what
    catches what the platform's API dropped."""
    import sys

    from watchdog.observers import Observer
    from watchdog.observers.api import DEFAULT_OBSERVER_TIMEOUT, BaseObserver

    if not sys.platform.startswith("linux"):
        return Observer()
    from watchdog.observers.inotify import InotifyEmitter
    from watchdog.observers.inotify_c import CallbackId, InotifyConstants, InotifyEvent, InotifyFD, WatchDescriptor

    class OverflowCallback:
        """Registered on ``/`` for its deletion only (an event that never comes): the kernel's
        overflow notice goes to every callback of the inotify instance, and this one is ours."""

        def on_event(self, event: InotifyEvent) -> None:
            pass

        def on_watch_deleted(self, wd: WatchDescriptor) -> None:
            pass

        def on_queue_overflow(self) -> None:
            on_overflow()

    class InotifyObserver(BaseObserver):
        """watchdog's InotifyObserver, with the inotify instance in hand to register the callback."""

        def __init__(self) -> None:
            self.inotify = InotifyFD()
            self.inotify.start()
            super().__init__(InotifyEmitter, timeout=DEFAULT_OBSERVER_TIMEOUT, inotify_fd=self.inotify)
            self.inotify.add_callback(b"/", InotifyConstants.IN_DELETE_SELF, OverflowCallback(), CallbackId(0))

        def on_thread_stop(self) -> None:
            super().on_thread_stop()
            self.inotify.stop()
            self.inotify.join()

    return InotifyObserver()
