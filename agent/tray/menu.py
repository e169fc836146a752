"""What the tray shows, as plain data: the state, the title, and the menu entries with the
``Controls`` action each one runs. Rendered by pystray where the platform's tray has menus and
by a Tk pop-up where it does not (plain X11 trays); both read this one description."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.facade import Status

BLOCKED_SHOW_S = 60.0  # how long the icon says "blocked" after something was blocked


@dataclass
class MenuEntry:
    label: str
    action: Callable[[], None] | None = None  # None: a line of information
    enabled: bool = True
    checked: bool | None = None  # a choice among siblings (profiles)
    children: list[MenuEntry] = field(default_factory=list)
    separator_before: bool = False


def tray_state(status: Status, now: float | None = None) -> str:
    now = time.time() if now is None else now
    if status.state == "failed":
        return "error"
    if status.state == "paused":
        return "paused"
    if status.trouble:
        return "error"  # some files are not protected yet: the parent should look
    if status.last_flag_at and now - status.last_flag_at < BLOCKED_SHOW_S:
        return "blocked"
    if not status.pin_set:
        return "unlocked"  # protecting, but anyone at the keyboard can switch it off
    return "protecting"


def _clock(ts: float) -> str:
    return time.strftime("%H:%M", time.localtime(ts))


def tray_title(status: Status, state: str) -> str:
    """``Veil — protecting (child)`` and the like (INTERFACES.md: the title starts with Veil)."""
    profile = status.profile
    if state == "paused":
        return f"Veil — paused until {_clock(status.paused_until or 0)} ({profile})"
    if state == "blocked":
        return f"Veil — blocked just now ({profile})"
    if state == "error" and status.failure:
        return f"Veil — not protecting: {status.failure} ({profile})"
    if state == "error":
        return f"Veil — trouble: {status.trouble or 'error'} ({profile})"
    if state == "unlocked":
        return "Veil — set a PIN to lock the controls"
    return f"Veil — protecting ({profile})"


def _short_paths(paths: tuple[str, ...], home: str) -> str:
    shown = [("~" + p[len(home):]) if home and p.startswith(home) else p for p in paths[:3]]
    more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
    return ", ".join(shown) + more if shown else "no folders"


def _choosing(controls: Any, profile: str) -> Callable[[], None]:
    # a closure without parameters: pystray passes the icon to an action that takes one
    return lambda: controls.set_profile(profile)


def build_menu(status: Status, controls: Any, home: str = "") -> list[MenuEntry]:
    """The menu for this status; ``controls`` provides the actions (agent/tray/controls.py)."""
    state = tray_state(status)
    headline = tray_title(status, state).removeprefix("Veil — ")
    last = status.last_event or "nothing blocked since start"
    return [
        MenuEntry(f"Veil: {headline}", enabled=False),
        MenuEntry(f"Watching {_short_paths(status.watching, home)}; {status.screen}", enabled=False),
        MenuEntry(f"Last: {last}", enabled=False),
        MenuEntry("Pause for 15 minutes", lambda: controls.pause(15), separator_before=True),
        MenuEntry("Pause for 1 hour", lambda: controls.pause(60)),
        MenuEntry("Resume protection", controls.resume, enabled=state == "paused"),
        MenuEntry("Profile", children=[
            MenuEntry(name, _choosing(controls, name), checked=name == status.profile)
            for name in status.profiles
        ]),
        MenuEntry("Set up Veil…", controls.setup, separator_before=True),
        *([MenuEntry("Change PIN…", controls.setup)] if status.pin_set else []),
        MenuEntry("Scan a folder…", controls.scan_folder, separator_before=True),
        MenuEntry("Always block a picture…", controls.block_picture),
        MenuEntry("Never flag a picture…", controls.allow_picture),
        MenuEntry("Open quarantine…", controls.open_quarantine),
        MenuEntry("Open audit log…", controls.open_audit_log),
        MenuEntry("Open report…", controls.open_report),
        MenuEntry("About Veil…", controls.about),
        MenuEntry("Quit Veil", controls.quit, separator_before=True),
    ]
