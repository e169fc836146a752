"""A Tk interpreter in a thread of its own, for Veil's few windows (the screen overlay, the
tray's PIN dialog, menus and lists).

Tk must only be touched from the thread that created it: other threads hand it work with
``call`` (wait for the result) or ``post`` (fire and forget). Each user of Tk gets its own
``TkThread``; Tcl is built threaded, so interpreters in different threads do not meet.

An idle Tk thread does not wake up: a request writes a byte to a pipe that Tk's event loop
watches (``createfilehandler``). Polling every 20 ms instead cost about 2 % of a core with nothing
to do (benchmarks/RESULTS.md, Tray). Where Tk has no file handlers (Windows) it polls.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class UiUnavailable(Exception):
    """No Tk, or no display to open it on."""


class TkThread:
    POLL_MS = 50  # only where Tk cannot watch a pipe

    def __init__(self, class_name: str):
        self.class_name = class_name
        self._requests: queue.Queue[tuple[Callable[[], Any], threading.Event | None, list]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: str | None = None
        self._stopping = False
        self._on_close: list[Callable[[], None]] = []
        self._wake: tuple[int, int] | None = None  # (read, write) ends of the wake-up pipe
        self._wake_lock = threading.Lock()  # no write to a closed (and maybe reused) descriptor
        self.tk: Any = None  # the tkinter module, once started
        self.root: Any = None  # a withdrawn root every window of this thread belongs to

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"veil-tk-{self.class_name}", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error:
            self._thread = None
            raise UiUnavailable(self._error)

    def stop(self) -> None:
        if self._thread is None:
            return
        thread, self._stopping = self._thread, True
        self.call(lambda: None, timeout=5)
        thread.join(5)
        self._thread = None

    def on_close(self, cleanup: Callable[[], None]) -> None:
        """Run ``cleanup`` in the Tk thread before it ends (to destroy windows there)."""
        self._on_close.append(cleanup)

    def call(self, action: Callable[[], Any], timeout: float = 10) -> Any:
        """Run ``action`` in the Tk thread and return its result (None if it failed or timed out)."""
        if self._thread is None:
            raise UiUnavailable(f"{self.class_name}: Tk not started")
        if threading.current_thread() is self._thread:
            return action()
        done, result = threading.Event(), list[Any]()
        self._requests.put((action, done, result))
        self._wake_up()
        done.wait(timeout)
        return result[0] if result else None

    def post(self, action: Callable[[], Any]) -> None:
        """Run ``action`` in the Tk thread without waiting for it."""
        if self._thread is None:
            raise UiUnavailable(f"{self.class_name}: Tk not started")
        self._requests.put((action, None, []))
        self._wake_up()

    def _wake_up(self) -> None:
        with self._wake_lock:
            if self._wake is not None:
                try:
                    os.write(self._wake[1], b"!")
                except BlockingIOError:
                    pass  # the pipe is full: Tk is awake already

    # -- the Tk thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            import tkinter

            tkinter.NoDefaultRoot()  # no module-global root, which the main thread would delete at exit
            self.tk = tkinter
            self.root = tkinter.Tk(className=self.class_name)
            self.root.withdraw()
        except Exception as err:  # no Tk, or no display
            self._error = f"no window possible: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
            self._ready.set()
            return
        if hasattr(self.root.tk, "createfilehandler") and os.name == "posix":
            read, write = os.pipe()
            os.set_blocking(read, False)
            os.set_blocking(write, False)
            self.root.tk.createfilehandler(read, tkinter.READABLE, lambda _fd, _mask: self._drain())
            self._wake = (read, write)
        else:
            self.root.after(self.POLL_MS, self._poll)
        self._ready.set()
        self.root.mainloop()
        if self._wake is not None:
            self.root.tk.deletefilehandler(self._wake[0])
            with self._wake_lock:
                wake, self._wake = self._wake, None
                os.close(wake[0])
                os.close(wake[1])
        for cleanup in self._on_close:
            try:
                cleanup()
            except Exception:
                log.exception("%s: closing a window failed", self.class_name)
        self.root.destroy()
        # Tk objects must die in the thread that made them (else Tcl aborts at exit)
        self.root = self.tk = None
        import gc

        gc.collect()

    def _drain(self) -> None:
        if self._wake is not None:
            try:
                while os.read(self._wake[0], 4096):
                    pass
            except BlockingIOError:
                pass
        self._serve()

    def _poll(self) -> None:
        self._serve()
        if not self._stopping:
            self.root.after(self.POLL_MS, self._poll)

    def _serve(self) -> None:
        while True:
            try:
                action, done, result = self._requests.get_nowait()
            except queue.Empty:
                break
            try:
                result.append(action())
                self.root.update_idletasks()
            except Exception:
                log.exception("%s: request failed", self.class_name)
            finally:
                if done is not None:
                    done.set()
        if self._stopping:
            # Close every window now: one of Tk's own modal dialogs (the folder chooser) waits in
            # a nested event loop that only its window's end breaks (its Destroy binding cancels
            # it), and the outer loop cannot quit until that returns.
            for child in self.root.tk.splitlist(self.root.tk.call("winfo", "children", ".")):
                self.root.tk.call("destroy", child)
            self.root.quit()
