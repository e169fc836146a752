"""Fault injection for the crash tests: ``VEIL_TEST_KILL_AT=<point>`` makes the process SIGKILL
itself when it reaches that point. Never set in use; costs one environment lookup."""

from __future__ import annotations

import os
import signal


def kill_point(point: str) -> None:
    if os.environ.get("VEIL_TEST_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
