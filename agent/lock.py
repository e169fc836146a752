"""One agent per data dir: an exclusive lock on ``<data_dir>/agent.lock``, held while it runs;
and ``exclusive`` / ``shared``, the short locks that let several processes share one file or
folder (the audit log, the vault).

The operating system drops the lock when the process dies, however it dies, so a killed agent
never leaves a stale lock behind; the pid in the file is only there for the message.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from agent.errors import FatalError


class AlreadyRunning(FatalError):
    """Another agent holds the data dir."""


class InstanceLock:
    def __init__(self, data_dir: Path):
        self.path = data_dir / "agent.lock"
        self._handle: TextIO | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            _lock(handle)
        except OSError:
            handle.seek(0)
            other = handle.read().strip() or "unknown"
            handle.close()
            raise AlreadyRunning(f"another Veil agent is already running for {self.path.parent} (pid {other}); "
                                 "stop it first or give this one another data_dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing drops the lock
            self._handle = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_of(lock: InstanceLock) -> str:
    """Who holds the lock, in words: its pid and, where the OS tells, its command line."""
    try:
        pid = int(lock.path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return "holder unknown"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        command = ""
    return f"held by pid {pid}" + (f": {command}" if command else "")


@contextmanager
def exclusive(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created if missing) while the block runs, waiting for
    any other holder — another process, or another open of the same file in this one. With
    ``wait=False`` it yields False, holding nothing, when someone else has it."""
    with open(path, "a+b") as handle:
        try:
            _lock(handle, wait=wait)
        except OSError:
            yield False
            return
        yield True  # closing the file drops the lock


@contextmanager
def shared(path: Path) -> Iterator[None]:
    """Hold ``path`` shared while the block runs: any number of holders at once, none while an
    exclusive holder has it (Windows has no shared locks: there it is exclusive)."""
    with open(path, "a+b") as handle:
        _lock(handle, wait=True, shared=True)
        yield


def _lock(handle, wait: bool = False, shared: bool = False) -> None:
    if sys.platform == "win32":
        import msvcrt

        handle.seek(0)
        while True:
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)
                return
            except OSError:
                if not wait:
                    raise  # LK_LOCK gives up after 10 s: keep waiting, like flock does
    else:
        import fcntl

        fcntl.flock(handle.fileno(), (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
