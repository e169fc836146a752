"""A real X server for screen and overlay tests: Xvfb (Debian package xvfb), one per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO


class XServer:
    def __init__(self, size: str = "1920x1080"):
        xvfb = shutil.which("Xvfb")
        if xvfb is None:
            if "xvfb" in os.environ.get("VEIL_REQUIRE_TOOLS", "").split(","):
                pytest.fail("Xvfb is required here (VEIL_REQUIRE_TOOLS) but not installed: apt-get install xvfb")
            pytest.skip("Xvfb not installed (Debian package xvfb)")
        read, write = os.pipe()
        self.proc = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
                                     pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.proc.kill()
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"
        self.env = {**os.environ, "DISPLAY": self.display}
        self.env.pop("WAYLAND_DISPLAY", None)
        self.viewers: list[subprocess.Popen] = []

    def show(self, geometry: str, *images: Path, every: float = 0.0, settle: float = 0.3) -> subprocess.Popen:
        """A window showing the images (cycling every ``every`` seconds); kill it to close it.
        Returns once the viewer has mapped its window, plus ``settle`` seconds to paint."""
        args = [sys.executable, str(REPO / "tests" / "show_image.py"), geometry, *map(str, images)]
        if every:
            args += ["--every", str(every)]
        viewer = subprocess.Popen(args, env=self.env, stdout=subprocess.PIPE, text=True)
        assert viewer.stdout.readline().strip() == "shown"
        time.sleep(settle)
        self.viewers.append(viewer)
        return viewer

    def close(self, viewer: subprocess.Popen) -> None:
        viewer.kill()
        viewer.wait()

    def window_classes(self) -> list[str]:
        """Every window's WM_CLASS on the server (via xwininfo, Debian's x11-utils)."""
        out = subprocess.run(["xwininfo", "-root", "-tree"], env=self.env, capture_output=True, text=True, check=True).stdout
        return [line for line in out.splitlines() if "(" in line]

    def mapped_overlays(self) -> int:
        out = subprocess.run(["xwininfo", "-root", "-tree"], env=self.env, capture_output=True, text=True, check=True).stdout
        ids = [line.split()[0] for line in out.splitlines() if '"veil-overlay"' in line]
        mapped = 0
        for window in ids:
            info = subprocess.run(["xwininfo", "-id", window], env=self.env, capture_output=True, text=True).stdout
            mapped += "IsViewable" in info
        return mapped

    def stop(self) -> None:
        for viewer in self.viewers:
            if viewer.poll() is None:
                viewer.kill()
                viewer.wait()
        self.proc.terminate()
        self.proc.wait(10)
