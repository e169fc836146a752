"""A real X server for screen, overlay and tray tests: Xvfb (Debian package xvfb), one per test;
a real system tray on it (Debian's trayer) and real input (Debian's xdotool) where asked for."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.conftest import REPO, require_tool


@dataclass
class TrayIconWindow:
    id: int
    docked: bool  # taken into the tray (reparented away from the root window)
    title: str  # _NET_WM_NAME, UTF-8
    x: int
    y: int
    width: int
    height: int

    @property
    def centre(self) -> tuple[int, int]:
        return self.x + self.width // 2, self.y + self.height // 2


class XServer:
    def __init__(self, size: str = "1920x1080"):
        xvfb = require_tool("Xvfb", "xvfb")
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
        self._display = None  # python-xlib connection for window queries, made on first use

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

    def window_tree(self) -> str:
        """``xwininfo -root -tree`` (Debian's x11-utils). xwininfo exits 1 when a window is
        destroyed while it walks the tree (BadWindow); that is the server changing under it,
        not a failure, so the walk is made again."""
        for _ in range(20):
            done = subprocess.run(["xwininfo", "-root", "-tree"], env=self.env, capture_output=True, text=True, timeout=10)
            if done.returncode == 0:
                return done.stdout
            time.sleep(0.05)
        raise RuntimeError(f"xwininfo -root -tree kept failing: {done.stderr.strip()}")

    def window_classes(self) -> list[str]:
        """Every window's WM_CLASS on the server."""
        return [line for line in self.window_tree().splitlines() if "(" in line]

    def mapped_overlays(self) -> int:
        return self.mapped("veil-overlay")

    # -- a system tray and input ------------------------------------------------------------

    def start_tray_host(self) -> subprocess.Popen:
        """Debian's trayer: an XEmbed system tray along the top edge, as a desktop panel has."""
        trayer = require_tool("trayer", "trayer")
        host = subprocess.Popen([trayer, "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "32",
                                 "--SetDockType", "true", "--transparent", "false"],
                                env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.viewers.append(host)
        display = self._xlib()
        selection = display.intern_atom(f"_NET_SYSTEM_TRAY_S{display.get_default_screen()}")
        deadline = time.monotonic() + 15
        while display.get_selection_owner(selection) == 0:  # X.NONE: trayer has not claimed the tray yet
            if time.monotonic() > deadline or host.poll() is not None:
                raise RuntimeError("trayer did not take the system tray selection")
            time.sleep(0.05)
        return host

    def _xlib(self):
        if self._display is None:
            import Xlib.display

            self._display = Xlib.display.Display(self.display)
        return self._display

    def tray_icon(self, wm_class: str = "VeilSystemTrayIcon") -> TrayIconWindow | None:
        """Veil's tray icon window as the X server sees it (None if there is none)."""
        display = self._xlib()
        root = display.screen().root
        net_wm_name, utf8 = display.intern_atom("_NET_WM_NAME"), display.intern_atom("UTF8_STRING")
        stack = [root]
        while stack:
            window = stack.pop()
            try:
                tree = window.query_tree()
                found = window.get_wm_class()
            except Exception:  # gone meanwhile
                continue
            stack.extend(tree.children)
            if found and found[0] == wm_class:
                geometry = window.get_geometry()
                origin = window.translate_coords(root, 0, 0)
                name = window.get_full_property(net_wm_name, utf8)
                return TrayIconWindow(window.id, tree.parent != root, name.value.decode() if name else "",
                                      -origin.x, -origin.y, geometry.width, geometry.height)
        return None

    def focused_class(self) -> str:
        """The WM_CLASS class name of the top-level window holding the keyboard focus ("" if none)."""
        display = self._xlib()
        window = display.get_input_focus().focus
        root = display.screen().root
        while isinstance(window, type(root)) and window != root:
            try:
                found = window.get_wm_class()
                if found:
                    return found[1]
                window = window.query_tree().parent
            except Exception:  # gone meanwhile
                return ""
        return ""

    def pixels(self, x: int, y: int, width: int, height: int) -> np.ndarray:
        """RGB pixels of the screen (the root window) in a rectangle."""
        import Xlib.X

        raw = self._xlib().screen().root.get_image(x, y, width, height, Xlib.X.ZPixmap, 0xFFFFFFFF)
        bgrx = np.frombuffer(raw.data, dtype=np.uint8).reshape(height, width, 4)
        return bgrx[:, :, 2::-1]

    def xdotool(self, *args: str) -> None:
        subprocess.run([require_tool("xdotool", "xdotool"), *args], env=self.env, check=True, timeout=10)

    def click(self, x: int, y: int, button: int = 1) -> None:
        self.xdotool("mousemove", str(x), str(y))
        time.sleep(0.1)
        self.xdotool("click", str(button))

    def type(self, text: str) -> None:
        self.xdotool("type", "--delay", "20", text)

    def key(self, name: str) -> None:
        self.xdotool("key", name)

    def mapped(self, wm_class: str) -> int:
        """How many viewable windows of this WM_CLASS class name there are."""
        ids = [line.split()[0] for line in self.window_tree().splitlines() if f'"{wm_class}")' in line or f'("{wm_class}"' in line]
        viewable = 0
        for window in ids:  # one gone meanwhile prints nothing and counts as not viewable
            info = subprocess.run(["xwininfo", "-id", window], env=self.env, capture_output=True, text=True, timeout=10).stdout
            viewable += "IsViewable" in info
        return viewable

    def stop(self) -> None:
        if self._display is not None:
            self._display.close()
            self._display = None
        for viewer in self.viewers:
            if viewer.poll() is None:
                viewer.kill()
                viewer.wait()
        self.proc.terminate()
        self.proc.wait(10)
