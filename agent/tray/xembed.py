"""A tray icon on plain X11 trays (the XEmbed system tray protocol), in one thread.

Why Veil's own and not pystray's xorg backend: that backend, as released (0.19.5), asks the X
server for no clicks (pystray issue #151), names its event-loop thread only after starting the
setup thread that already needs it, and drives one python-xlib connection from two threads; in
the tray tests on a loaded machine its loop sometimes never saw its own window destroyed and
Veil could not stop. Here one thread owns the connection: it docks, draws, reads clicks and
follows the state, and nothing else touches it.

The protocol: the tray is whoever owns the selection ``_NET_SYSTEM_TRAY_S<screen>``; a client
sends it ``SYSTEM_TRAY_REQUEST_DOCK`` with its window, and the tray reparents that window into
itself (seen here as ReparentNotify). When the tray goes, the window returns to the root and
Veil asks again, every ``DOCK_RETRY_S``, while there is an owner.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable

from PIL import Image

DOCK_RETRY_S = 2.0
TICK_S = 1.0  # how often the picture and title follow the state
SYSTEM_TRAY_REQUEST_DOCK = 0
XEMBED_MAPPED = 1
BACKGROUND = (0, 0, 0)  # XEmbed icons paint their whole window; transparent parts show this


def latin1(text: str) -> str:
    """WM_NAME is Latin-1 only (the exact UTF-8 title goes into _NET_WM_NAME)."""
    return text.replace("—", "-").replace("…", "...").encode("latin-1", "replace").decode("latin-1")


class TrayHost:
    """Whether an X11 system tray is there (one display connection, this thread's own)."""

    def __init__(self, display=None):
        import Xlib.display

        self.display = display or Xlib.display.Display()
        self.selection = self.display.intern_atom(f"_NET_SYSTEM_TRAY_S{self.display.get_default_screen()}")

    def owner(self):
        import Xlib.X

        owner = self.display.get_selection_owner(self.selection)
        return None if owner == Xlib.X.NONE else owner

    def close(self) -> None:
        self.display.close()


class XembedIcon:
    def __init__(self, wm_class: str, look: Callable[[], tuple[str, str]], picture: Callable[[str], Image.Image],
                 on_click: Callable[[int, int], None]):
        self.wm_class = wm_class  # e.g. "Veil": WM_CLASS ("VeilSystemTrayIcon", "Veil")
        self.look = look  # (state, title) now; asked every TICK_S, so it must be cheap
        self.picture = picture  # the picture of a state, drawn only when the state changes
        self.on_click = on_click  # (x, y) on the screen: called in this icon's thread
        self.docked = False  # whether a tray has taken the window in (only this icon's thread writes it)

    def run(self, stop: threading.Event) -> None:
        """Show the icon until ``stop`` (blocking; one thread does everything)."""
        import Xlib.display
        import Xlib.protocol.event
        import Xlib.X
        import Xlib.Xutil

        display = Xlib.display.Display()
        host = TrayHost(display)
        screen = display.screen()
        xembed_info = display.intern_atom("_XEMBED_INFO")
        opcode = display.intern_atom("_NET_SYSTEM_TRAY_OPCODE")
        net_wm_name, utf8 = display.intern_atom("_NET_WM_NAME"), display.intern_atom("UTF8_STRING")
        window = screen.root.create_window(
            0, 0, 24, 24, 0, screen.root_depth, window_class=Xlib.X.InputOutput, background_pixel=screen.black_pixel,
            event_mask=Xlib.X.ExposureMask | Xlib.X.StructureNotifyMask | Xlib.X.ButtonPressMask)
        window.set_wm_class(f"{self.wm_class}SystemTrayIcon", self.wm_class)
        window.set_wm_normal_hints(flags=Xlib.Xutil.PMinSize, min_width=24, min_height=24)  # trays size icons from this
        window.change_property(xembed_info, xembed_info, 32, [0, XEMBED_MAPPED])
        gc = window.create_gc()
        shown: tuple[str, str] | None = None
        picture: Image.Image | None = None
        asked_at = float("-inf")

        def paint() -> None:
            if picture is None:  # nothing drawn yet
                return
            geometry = window.get_geometry()
            fitted = Image.new("RGB", (geometry.width, geometry.height), BACKGROUND)
            side = min(geometry.width, geometry.height)
            icon = picture.resize((side, side), Image.Resampling.LANCZOS)
            fitted.paste(icon, ((geometry.width - side) // 2, (geometry.height - side) // 2), icon)
            window.put_pil_image(gc, 0, 0, fitted)

        try:
            while not stop.is_set():
                now = time.monotonic()
                if not self.docked and now - asked_at > DOCK_RETRY_S:
                    asked_at = now
                    owner = host.owner()
                    if owner is not None:
                        owner.send_event(Xlib.protocol.event.ClientMessage(
                            window=owner, client_type=opcode,
                            data=(32, [Xlib.X.CurrentTime, SYSTEM_TRAY_REQUEST_DOCK, window.id, 0, 0])),
                            event_mask=Xlib.X.NoEventMask)
                looked = self.look()
                if looked != shown:
                    if shown is None or looked[0] != shown[0]:
                        picture = self.picture(looked[0]).convert("RGBA")
                    shown = looked
                    window.set_wm_name(latin1(shown[1]))
                    window.change_property(net_wm_name, utf8, 8, shown[1].encode("utf-8"))
                    if self.docked:
                        paint()
                display.flush()
                select.select([display.fileno()], [], [], TICK_S)
                for _ in range(display.pending_events()):
                    event = display.next_event()
                    if event.type == Xlib.X.ReparentNotify and event.window.id == window.id:
                        self.docked = event.parent.id != screen.root.id  # back at the root: the tray went; ask the next
                    elif event.type in (Xlib.X.Expose, Xlib.X.ConfigureNotify) and event.window.id == window.id:
                        if self.docked:
                            paint()
                    elif event.type == Xlib.X.ButtonPress and event.detail in (1, 3):
                        self.on_click(event.root_x, event.root_y)  # left or right: the menu, as users expect
        finally:
            try:
                window.destroy()
                display.sync()
            finally:
                display.close()
                self.docked = False
