"""The on-screen blur: an always-on-top, borderless window over a monitor, showing a heavily
blurred copy of what is under it and one line of text. On X11 its class (``WM_CLASS``) is
``veil-overlay`` (INTERFACES.md).

Tk runs in a thread of its own (agent/ui.py) and only there: other threads post requests and wait for them.
The overlay can ``hide_for_sampling`` — withdrawn, the screen repainted, a capture taken, shown
again — so Veil keeps judging what is underneath and never its own blurred picture. The blurred
image lives in memory only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from agent.ui import TkThread, UiUnavailable

OVERLAY_CLASS = "veil-overlay"


class OverlayUnavailable(Exception):
    pass


def blurred_copy(bgra: np.ndarray) -> Image.Image:
    """Beyond recognition: shrunk 24×, blurred, and stretched back (cheap even at 4K)."""
    rgb = Image.fromarray(np.ascontiguousarray(bgra[:, :, 2::-1]))
    small = rgb.resize((max(1, rgb.width // 24), max(1, rgb.height // 24)), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(3))
    return small.resize(rgb.size, Image.Resampling.BILINEAR)


class Overlay:
    def __init__(self):
        self._ui = TkThread(OVERLAY_CLASS)
        self._windows: dict[int, Any] = {}
        self.shown: set[int] = set()

    def start(self) -> None:
        try:
            self._ui.start()
        except UiUnavailable as err:
            raise OverlayUnavailable(f"no overlay window possible: {str(err).removeprefix('no window possible: ')}") from None
        self._ui.on_close(self._destroy_all)

    def stop(self) -> None:
        self._ui.stop()

    # -- requests (any thread) ------------------------------------------------------------

    def show(self, monitor: int, bounds, image: Image.Image, message: str) -> None:
        self._call(lambda: self._show(monitor, bounds, image, message))

    def hide(self, monitor: int) -> None:
        self._call(lambda: self._hide(monitor))

    def hide_for_sampling(self, monitor: int, capture: Callable[[], Any], settle_s: float = 0.08) -> Any:
        """Withdraw the overlay, let the windows under it repaint, capture, and show it again."""
        if monitor not in self.shown:
            return capture()
        self._call(lambda: self._withdraw(monitor))
        time.sleep(settle_s)
        try:
            return capture()
        finally:
            self._call(lambda: self._deiconify(monitor))

    def _call(self, action: Callable[[], Any]) -> Any:
        try:
            return self._ui.call(action)
        except UiUnavailable as err:
            raise OverlayUnavailable(str(err)) from None

    # -- the Tk thread --------------------------------------------------------------------

    def _destroy_all(self) -> None:
        for window in self._windows.values():
            window.destroy()
        self._windows.clear()

    def _show(self, monitor: int, bounds, image: Image.Image, message: str) -> None:
        from PIL import ImageTk

        tk = self._ui.tk
        window = self._windows.get(monitor)
        if window is None:
            window = tk.Toplevel(self._ui.root, class_=OVERLAY_CLASS)
            window.title(f"Veil overlay {monitor}")
            window.overrideredirect(True)
            window.attributes("-topmost", True)
            window.label = tk.Label(window, bd=0)
            window.label.place(x=0, y=0, relwidth=1, relheight=1)
            window.note = tk.Label(window, font=("TkDefaultFont", 18), bg="#202020", fg="white", padx=16, pady=8)
            window.note.place(relx=0.5, rely=0.5, anchor="center")
            self._windows[monitor] = window
        window.bounds = bounds
        window.geometry(f"{bounds.width}x{bounds.height}+{bounds.left}+{bounds.top}")
        window.photo = ImageTk.PhotoImage(image, master=window)
        window.label.configure(image=window.photo)
        window.note.configure(text=message)
        window.deiconify()
        window.lift()
        self.shown.add(monitor)

    def _hide(self, monitor: int) -> None:
        window = self._windows.pop(monitor, None)
        if window is not None:
            window.destroy()
        self.shown.discard(monitor)

    def _withdraw(self, monitor: int) -> None:
        window = self._windows.get(monitor)
        if window is not None:
            window.withdraw()
            self._ui.root.update()

    def _deiconify(self, monitor: int) -> None:
        """Back after a sample, and back in place: a window resized, moved or lowered from outside
        (``xdotool windowsize``) is covering the whole monitor again, on top, at every sample."""
        window = self._windows.get(monitor)
        if window is not None:
            bounds = window.bounds
            window.geometry(f"{bounds.width}x{bounds.height}+{bounds.left}+{bounds.top}")
            window.deiconify()
            window.attributes("-topmost", True)
            window.lift()
            self._ui.root.update()
