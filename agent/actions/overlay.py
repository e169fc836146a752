"""The on-screen blur: an always-on-top, borderless window over a monitor, showing a heavily
blurred copy of what is under it and one line of text. On X11 its class (``WM_CLASS``) is
``veil-overlay`` (INTERFACES.md).

Tk runs in a thread of its own and only there: other threads post requests and wait for them.
The overlay can ``hide_for_sampling`` — withdrawn, the screen repainted, a capture taken, shown
again — so Veil keeps judging what is underneath and never its own blurred picture. The blurred
image lives in memory only.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

log = logging.getLogger(__name__)

OVERLAY_CLASS = "veil-overlay"


class OverlayUnavailable(Exception):
    pass


def blurred_copy(bgra: np.ndarray) -> Image.Image:
    """Beyond recognition: shrunk 24×, blurred, and stretched back (cheap even at 4K)."""
    rgb = Image.fromarray(np.ascontiguousarray(bgra[:, :, 2::-1]))
    small = rgb.resize((max(1, rgb.width // 24), max(1, rgb.height // 24)), Image.BILINEAR).filter(ImageFilter.GaussianBlur(3))
    return small.resize(rgb.size, Image.BILINEAR)


class Overlay:
    def __init__(self):
        self._requests: queue.Queue[tuple[Callable[[], Any], threading.Event, list]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: str | None = None
        self._stop = False
        self._windows: dict[int, Any] = {}
        self.shown: set[int] = set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="veil-overlay", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error:
            raise OverlayUnavailable(self._error)

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop = True
        self._call(lambda: None, timeout=5)
        self._thread.join(5)
        self._thread = None

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

    # -- the Tk thread --------------------------------------------------------------------

    def _call(self, action: Callable[[], Any], timeout: float = 10) -> Any:
        if self._thread is None:
            raise OverlayUnavailable("overlay not started")
        done, result = threading.Event(), []
        self._requests.put((action, done, result))
        done.wait(timeout)
        return result[0] if result else None

    def _run(self) -> None:
        try:
            import tkinter

            self._tk = tkinter
            tkinter.NoDefaultRoot()  # no module-global root, which would be deleted by the main thread at exit
            self._root = tkinter.Tk(className=OVERLAY_CLASS)
            self._root.withdraw()
        except Exception as err:  # no Tk, or no display
            self._error = f"no overlay window possible: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
            self._ready.set()
            return
        self._ready.set()
        self._root.after(20, self._poll)
        self._root.mainloop()
        for window in self._windows.values():
            window.destroy()
        self._root.destroy()
        # Tk objects must die in the thread that made them (else Tcl aborts at exit)
        self._windows.clear()
        self._root = self._tk = None
        import gc

        gc.collect()

    def _poll(self) -> None:
        while True:
            try:
                action, done, result = self._requests.get_nowait()
            except queue.Empty:
                break
            try:
                result.append(action())
                self._root.update_idletasks()
            except Exception:
                log.exception("overlay request failed")
            finally:
                done.set()
        if self._stop:
            self._root.quit()
            return
        self._root.after(20, self._poll)

    def _show(self, monitor: int, bounds, image: Image.Image, message: str) -> None:
        from PIL import ImageTk

        tk = self._tk
        window = self._windows.get(monitor)
        if window is None:
            window = tk.Toplevel(self._root, class_=OVERLAY_CLASS)
            window.title(f"Veil overlay {monitor}")
            window.overrideredirect(True)
            window.attributes("-topmost", True)
            window.label = tk.Label(window, bd=0)
            window.label.place(x=0, y=0, relwidth=1, relheight=1)
            window.note = tk.Label(window, font=("TkDefaultFont", 18), bg="#202020", fg="white", padx=16, pady=8)
            window.note.place(relx=0.5, rely=0.5, anchor="center")
            self._windows[monitor] = window
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
            self._root.update()

    def _deiconify(self, monitor: int) -> None:
        window = self._windows.get(monitor)
        if window is not None:
            window.deiconify()
            window.lift()
            self._root.update()
