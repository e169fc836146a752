"""The icon in the system tray (pystray), for the life of ``veil run``.

Its picture and title follow the agent's state (protecting, paused, blocked just now, error),
checked every second. Its menu is built from agent/tray/menu.py: natively where the tray has
menus (Windows, macOS, AppIndicator/GTK desktops), and as a Tk pop-up on a left or right click
where it has not — pystray's plain X11 backend, whose icon, as released (0.19.5), does not even
ask the X server for clicks (pystray issue #151); Veil's subclass below does.

With no tray to dock into (a headless session, a Wayland desktop without one, a panel not yet
started), the agent runs on without an icon and says so once; when a tray appears later the
icon docks then.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from agent.tray.controls import Controls
from agent.tray.dialogs import TkPrompts
from agent.tray.icons import state_icon
from agent.tray.menu import MenuEntry, build_menu, tray_state, tray_title
from agent.ui import TkThread, UiUnavailable

log = logging.getLogger(__name__)

UPDATE_S = 1.0
HOST_CHECK_S = 5.0
DOCK_RETRY_S = 2.0
ICON_CLASS_PREFIX = "Veil"  # pystray names the X11 window class "<name>SystemTrayIcon"


class TrayUnavailable(Exception):
    pass


def _load_pystray() -> Any:
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        raise TrayUnavailable("no X display" + (" (Wayland without XWayland)" if os.environ.get("WAYLAND_DISPLAY") else ""))
    try:
        import pystray
    except Exception as err:  # ImportError, or Xlib's errors when the display cannot be opened
        raise TrayUnavailable(f"pystray cannot start: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    logging.getLogger("pystray").setLevel(logging.CRITICAL)  # its docking tracebacks; Veil says it in one line
    return pystray


def _backend(pystray: Any) -> str:
    return pystray.Icon.__module__.rsplit("._", 1)[-1]  # xorg, appindicator, gtk, win32, darwin


class _XembedHost:
    """Whether an X11 system tray (the XEmbed ``_NET_SYSTEM_TRAY_S<n>`` selection) has an owner."""

    def __init__(self):
        import Xlib.display

        self.display = Xlib.display.Display()
        self.atom = self.display.intern_atom(f"_NET_SYSTEM_TRAY_S{self.display.get_default_screen()}")

    def present(self) -> bool:
        import Xlib.X

        return self.display.get_selection_owner(self.atom) != Xlib.X.NONE

    def close(self) -> None:
        self.display.close()


def _xorg_icon_class(pystray: Any) -> type:
    """pystray's X11 icon, listening for clicks and able to dock again after the panel restarts."""
    import Xlib.X
    from pystray import _xorg

    class XorgIcon(_xorg.Icon):
        def __init__(self, *args: Any, on_click: Callable[[int, int], None], **kwargs: Any):
            self._on_click = on_click
            self._docked = False
            super().__init__(*args, **kwargs)
            self._window.change_attributes(event_mask=Xlib.X.ExposureMask | Xlib.X.StructureNotifyMask | Xlib.X.ButtonPressMask)
            self._message_handlers[Xlib.X.ReparentNotify] = self._on_reparent
            self._display.flush()

        def _on_reparent(self, event: Any) -> None:
            # a tray takes the window in by reparenting it, and gives it back to the root when it goes
            if event.window.id == self._window.id:
                self._docked = event.parent.id != self._display.screen().root.id

        def _on_button_press(self, event: Any) -> None:
            if event.detail in (1, 3):  # left or right: both open the menu, as users expect of a tray icon
                self._on_click(event.root_x, event.root_y)

        def _update_title(self) -> None:
            # WM_NAME is Latin-1 only; _NET_WM_NAME carries the exact UTF-8 title
            self._window.set_wm_name(x11_safe(self.title))
            self._window.change_property(self._display.intern_atom("_NET_WM_NAME"), self._display.intern_atom("UTF8_STRING"),
                                         8, self.title.encode("utf-8"))
            self._display.flush()

        @property
        def docked(self) -> bool:
            """Whether a tray has taken the window in, as the X server told (ReparentNotify; asking
            it instead costs ~5 ms of CPU per look through threaded python-xlib). pystray only
            remembers that it asked, and a tray that has just claimed the selection may drop it."""
            return self._docked

        def dock_again(self) -> None:
            self._systray_manager = None
            self._update_icon()  # pystray asks to be docked while updating the picture

    return XorgIcon


def tray_availability() -> str:
    """One line for ``veil doctor``: whether an icon can be shown here and now."""
    try:
        pystray = _load_pystray()
    except TrayUnavailable as err:
        return f"unavailable ({err})"
    backend = _backend(pystray)
    if backend == "xorg":
        host = _XembedHost()
        try:
            if not host.present():
                return "unavailable (no system tray on this display); veil run goes on without an icon"
        finally:
            host.close()
    return f"available ({backend} backend)"


def _constant(value: bool) -> Callable[[Any], bool]:
    return lambda _item: value


def x11_safe(text: str) -> str:
    return text.replace("—", "-").replace("…", "...").encode("latin-1", "replace").decode("latin-1")


class TrayIcon:
    def __init__(self, app: Any, quit: Callable[[str], None], about: Callable[[], list[str]],
                 say: Callable[[str], None] = lambda line: None):
        self.app = app
        self.say = say
        self.ui = TkThread("veil-tray")
        self.prompts = TkPrompts(self.ui)
        self.controls = Controls(app, self.prompts, quit, about)
        self.icon: Any = None
        self.shown: tuple[str, str] | None = None  # (state, title) now on the icon
        self._menu_labels: list[str] = []
        self._pystray: Any = None
        self._host: _XembedHost | None = None

    def run(self, stop: threading.Event) -> None:
        """Show the icon until ``stop``; without a tray, wait for one (said once)."""
        try:
            self._pystray = _load_pystray()
            self.ui.start()
        except (TrayUnavailable, UiUnavailable) as err:
            self.say(f"tray: unavailable ({err}); running on without an icon")
            stop.wait()
            return
        backend = _backend(self._pystray)
        if backend == "xorg":
            self._host = _XembedHost()
        try:
            said = False
            while not stop.is_set():
                if self._host is not None and not self._host.present():
                    if not said:
                        self.say("tray: unavailable (no system tray on this display); running on without an icon")
                        said = True
                    stop.wait(HOST_CHECK_S)
                    continue
                self.say(f"tray: icon shown ({backend})")
                self._show_until(stop, backend)
        finally:
            self.controls.wait(1)
            self.ui.stop()
            if self._host is not None:
                self._host.close()

    # -- while shown ------------------------------------------------------------------------

    def _show_until(self, stop: threading.Event, backend: str) -> None:
        pystray = self._pystray
        state, title = self._look()
        image = state_icon(state)
        if backend == "xorg":
            icon_class = _xorg_icon_class(pystray)
            self.icon = icon_class(ICON_CLASS_PREFIX, image, x11_safe(title), on_click=self._on_click)
        else:
            self.icon = pystray.Icon(ICON_CLASS_PREFIX, image, title, menu=self._native_menu(self._entries()))
        self.shown = None

        def follow_state(icon: Any) -> None:
            icon.visible = True
            undocked_since = time.monotonic()
            while not stop.is_set():
                self._update(icon)
                if stop.wait(UPDATE_S):
                    break
                if backend == "xorg":  # ask again when not taken in for a while (new or restarted panel)
                    if icon.docked:
                        undocked_since = time.monotonic()
                    elif time.monotonic() - undocked_since > DOCK_RETRY_S and self._host.present():
                        icon.dock_again()
                        undocked_since = time.monotonic()
            icon.stop()

        self.icon.run(follow_state)  # returns once follow_state stops it
        self.icon = None

    def _look(self) -> tuple[str, str]:
        status = self.app.status()
        state = tray_state(status)
        return state, tray_title(status, state)

    def _entries(self) -> list[MenuEntry]:
        return build_menu(self.app.status(), self.controls, home=os.path.expanduser("~"))

    def _update(self, icon: Any) -> None:
        look = self._look()
        if look != self.shown:
            state, title = look
            icon.icon = state_icon(state)
            icon.title = title
            self.shown = look
        if icon.HAS_MENU:
            entries = self._entries()
            labels = [e.label for e in entries] + [c.label + str(c.checked) for e in entries for c in e.children]
            if labels != self._menu_labels:
                self._menu_labels = labels
                icon.menu = self._native_menu(entries)
                icon.update_menu()

    def _on_click(self, x: int, y: int) -> None:
        self.prompts.popup(self._entries(), x, y)

    def _native_menu(self, entries: list[MenuEntry]) -> Any:
        pystray = self._pystray
        items = []
        for entry in entries:
            if entry.separator_before:
                items.append(pystray.Menu.SEPARATOR)
            if entry.children:
                items.append(pystray.MenuItem(entry.label, self._native_menu(entry.children), enabled=entry.enabled))
                continue
            # pystray counts an action's parameters; a zero-parameter callable is called as is
            checked = _constant(entry.checked) if entry.checked is not None else None
            items.append(pystray.MenuItem(entry.label, entry.action, enabled=entry.enabled, checked=checked, radio=checked is not None))
        return pystray.Menu(*items)
