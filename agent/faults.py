"""Fault injection for the crash and race tests. Never set in use; each costs one environment lookup.

- ``VEIL_TEST_KILL_AT=<point>``: the process SIGKILLs itself when it reaches that point.
- ``VEIL_TEST_PAUSE_AT=<point>:<folder>``: the first time it reaches that point, the process
  creates ``<folder>/<point>.paused`` and waits (up to a minute) until the test removes it: the
  window in which a test changes a file under the agent's feet."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

_paused: set[str] = set()
_pause_lock = threading.Lock()


def kill_point(point: str) -> None:
    if os.environ.get("VEIL_TEST_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def pause_point(point: str) -> None:
    setting = os.environ.get("VEIL_TEST_PAUSE_AT")
    if not setting or not setting.startswith(point + ":"):
        return
    with _pause_lock:
        if point in _paused:
            return
        _paused.add(point)
    marker = Path(setting[len(point) + 1:]) / f"{point.replace(':', '-')}.paused"
    marker.touch()
    deadline = time.monotonic() + 60
    while marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
