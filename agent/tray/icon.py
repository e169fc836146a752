"""The icon in the system tray, for the life of ``veil run``.

Its picture and title follow the agent's state (protecting, paused, blocked just now, error),
checked every second. Its menu is built from agent/tray/menu.py.

- Plain X11 trays (XEmbed: most Linux panels): Veil's own icon (agent/tray/xembed.py); a left
  or right click opens the menu as a Tk pop-up.
- Windows, macOS, and Linux desktops with AppIndicator through PyGObject: pystray, with the
  menu native.

With no tray to dock into (a headless session, a Wayland desktop without one, a panel not yet
started), the agent runs on without an icon and says so once; when a tray appears later the
icon docks then.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from agent.facade import AgentFacade
from agent.tray.controls import Controls
from agent.tray.dialogs import TkPrompts
from agent.tray.icons import state_icon
from agent.tray.menu import MenuEntry, build_menu, tray_state, tray_title
from agent.ui import TkThread, UiUnavailable

log = logging.getLogger(__name__)

UPDATE_S = 1.0
HOST_CHECK_S = 5.0
ICON_NAME = "Veil"  # on X11 the window class is ("VeilSystemTrayIcon", "Veil")


class TrayUnavailable(Exception):
    pass


def _kind() -> str:
    """Which icon this platform gets: "xembed" (plain X11 trays) or "pystray" (the rest)."""
    if not sys.platform.startswith("linux"):
        return "pystray"
    if importlib.util.find_spec("gi") is not None:
        return "pystray"  # AppIndicator/GTK through PyGObject: native menus, also on Wayland
    if not os.environ.get("DISPLAY"):
        raise TrayUnavailable("no X display" + (" (Wayland without XWayland)" if os.environ.get("WAYLAND_DISPLAY") else ""))
    return "xembed"


def _load_pystray() -> Any:
    try:
        import pystray
    except Exception as err:  # ImportError, or the display cannot be opened
        raise TrayUnavailable(f"pystray cannot start: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    return pystray


def tray_availability() -> str:
    """One line for ``veil doctor``: whether an icon can be shown here and now."""
    try:
        kind = _kind()
        if kind == "pystray":
            return f"available (pystray {_load_pystray().Icon.__module__.rsplit('._', 1)[-1]} backend)"
        from agent.tray.xembed import TrayHost

        host = TrayHost()
        try:
            present = host.owner() is not None
        finally:
            host.close()
    except TrayUnavailable as err:
        return f"unavailable ({err})"
    except Exception as err:  # the display cannot be opened
        return f"unavailable ({str(err).splitlines()[0] if str(err) else type(err).__name__})"
    return "available (X11 system tray)" if present else "unavailable (no system tray on this display); veil run goes on without an icon"


def _constant(value: bool) -> Callable[[Any], bool]:
    return lambda _item: value


class TrayIcon:
    def __init__(self, app: AgentFacade, quit: Callable[[str], None], about: Callable[[], list[str]],
                 say: Callable[[str], None] = lambda line: None, first_run: bool = True):
        self.app = app
        self.say = say
        self.ui = TkThread("veil-tray")
        self.prompts = TkPrompts(self.ui)
        self.controls = Controls(app, self.prompts, quit, about)
        self.first_run = first_run  # open the setup window at start when no PIN is set
        self._menu_labels: list[str] = []

    def run(self, stop: threading.Event) -> None:
        """Show the icon until ``stop``; without a tray, wait for one (said once)."""
        try:
            kind = _kind()
            self.ui.start()
        except (TrayUnavailable, UiUnavailable) as err:
            self.say(f"tray: unavailable ({err}); running on without an icon")
            stop.wait()
            return
        try:
            if kind == "xembed":
                self._run_xembed(stop)
            else:
                self._run_pystray(stop)
        except Exception as err:  # the display went away, or pystray failed: protection goes on
            log.exception("the tray icon failed")
            self.say(f"tray: the icon failed ({str(err).splitlines()[0] if str(err) else type(err).__name__}); "
                     "running on without it")
            stop.wait()
        finally:
            self.controls.wait(1)
            self.ui.stop()

    def _look(self) -> tuple[str, str]:
        status = self.app.status()
        state = tray_state(status)
        return state, tray_title(status, state)

    def _entries(self) -> list[MenuEntry]:
        return build_menu(self.app.status(), self.controls, home=os.path.expanduser("~"))

    def _first_run(self) -> None:
        """No PIN yet: the setup window opens by itself, once per start (the icon stays blue and
        its title asks for a PIN until one is set)."""
        if not self.app.pin_set and self.first_run:
            self.controls.setup()

    def _on_click(self, x: int, y: int) -> None:
        self.prompts.popup(self._entries(), x, y)

    # -- plain X11 trays ----------------------------------------------------------------------

    def _run_xembed(self, stop: threading.Event) -> None:
        from agent.tray.xembed import TrayHost, XembedIcon

        host = TrayHost()
        try:
            said = False
            while host.owner() is None:
                if not said:
                    self.say("tray: unavailable (no system tray on this display); running on without an icon")
                    said = True
                if stop.wait(HOST_CHECK_S):
                    return
        finally:
            host.close()
        self.say("tray: icon shown (X11 system tray)")
        self._first_run()
        XembedIcon(ICON_NAME, self._look, state_icon, self._on_click).run(stop)  # docks again if the tray restarts

    # -- pystray: Windows, macOS, AppIndicator ---------------------------------------------

    def _run_pystray(self, stop: threading.Event) -> None:
        pystray = _load_pystray()
        logging.getLogger("pystray").setLevel(logging.WARNING)
        shown = self._look()
        icon = pystray.Icon(ICON_NAME, state_icon(shown[0]), shown[1], menu=self._native_menu(self._entries()))

        def follow_state(icon: Any) -> None:
            nonlocal shown
            try:
                icon.visible = True
                while not stop.wait(UPDATE_S):
                    look = self._look()
                    if look != shown:
                        icon.icon, icon.title = state_icon(look[0]), look[1]
                        shown = look
                    self._refresh_native_menu(icon)
            finally:
                icon.stop()

        self.say(f"tray: icon shown (pystray {pystray.Icon.__module__.rsplit('._', 1)[-1]})")
        self._first_run()
        icon.run(follow_state)  # the platform's loop; on macOS this must be the main thread

    def _refresh_native_menu(self, icon: Any) -> None:
        entries = self._entries()
        labels = [e.label for e in entries] + [c.label + str(c.checked) for e in entries for c in e.children]
        if labels != self._menu_labels:
            self._menu_labels = labels
            icon.menu = self._native_menu(entries)
            icon.update_menu()

    def _native_menu(self, entries: list[MenuEntry]) -> Any:
        pystray = _load_pystray()
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
