"""Desktop notifications: what Veil just did, told to the person at the screen, never the picture.

An outcome sink (agent/outcome.py) and a ``trouble`` call for degraded protection feed one
``Notifier``. It waits until things have been quiet for ``SETTLE_S`` (or ``min_interval_s`` has
passed since the first thing waiting) and shows them as one notification, and never shows two
within ``min_interval_s``: a burst of 200 files is one "Veil moved 200 files to quarantine".

Where notifications go: freedesktop notifications over the D-Bus session bus on Linux (Jeepney,
pure Python, no GLib). Windows toasts and macOS notifications are not wired yet: there, and
wherever no service answers, the start-up line says notifications are unavailable. Only words are
sent: no image, no icon made from the content.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Protocol

from agent.config import NotifySection
from agent.outcome import Outcome

log = logging.getLogger(__name__)

SETTLE_S = 3.0  # quiet this long after the last event before telling: a burst is told once
NAME_CHARS = 60
SHOWN_NAMES = 3
APP_NAME = "Veil"


class Backend(Protocol):
    name: str

    def show(self, summary: str, body: str, replaces: int) -> int:
        """Show one notification; returns its id (to replace it next time), or raises OSError."""
        ...


@dataclass(frozen=True)
class Notice:
    kind: str  # quarantine | blur | screen | failed | trouble
    name: str  # the file's name, or the trouble in words


def notice_for(outcome: Outcome) -> Notice | None:
    """What to tell of an outcome, if anything: a file moved or blurred, a screen covered, or a
    flagged file Veil could not move (protection degraded). A ``log`` action tells nobody."""
    if outcome.source == "screen":
        return Notice("screen", outcome.subject) if outcome.flagged and outcome.action == "blur" else None
    name = outcome.path.name if outcome.path is not None else PurePath(outcome.subject).name
    if outcome.flagged and outcome.action in ("quarantine", "blur"):
        return Notice(outcome.action, name)
    if outcome.decision == "error" and outcome.attempted in ("quarantine", "blur"):
        return Notice("failed", name)
    return None


def _clean(text: str) -> str:
    """A name as it can be shown: no control characters, not too long."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= NAME_CHARS else text[: NAME_CHARS - 1] + "…"


def _count(n: int, one: str, many: str) -> str:
    return one if n == 1 else many.format(n=n)


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def wording(notices: list[Notice]) -> tuple[str, str]:
    """(summary, body) for everything told at once, worded for the person at the screen."""
    kinds: dict[str, list[str]] = {}
    for notice in notices:
        kinds.setdefault(notice.kind, []).append(_clean(notice.name))
    single = len(notices) == 1
    phrases, names = [], []
    if "quarantine" in kinds:
        moved = kinds["quarantine"]
        phrases.append(f"moved {moved[0]} to quarantine" if single else f"moved {_count(len(moved), 'a file', '{n} files')} to quarantine")
        names += moved
    if "blur" in kinds:
        blurred = kinds["blur"]
        phrases.append(f"blurred {blurred[0]}" if single else f"blurred {_count(len(blurred), 'a file', '{n} files')}")
        names += blurred
    if "screen" in kinds:
        phrases.append(f"covered a picture on the screen{_count(len(kinds['screen']), '', ' {n} times')}")
    if "failed" in kinds:
        failed = kinds["failed"]
        phrases.append(f"could not move {failed[0] if len(failed) == 1 else f'{len(failed)} flagged files'}")
        names += [n for n in failed if n not in names]
    lines = []
    if phrases:
        summary = "Veil " + _and(phrases)
        if names and not single:
            shown = names[:SHOWN_NAMES]
            lines.append(_and([*shown, f"{len(names) - len(shown)} more"]) if len(names) > len(shown) else _and(shown))
        if "quarantine" in kinds or "blur" in kinds:
            lines.append("A parent can restore a file from the tray, with the PIN.")
        if "screen" in kinds:
            lines.append("The cover goes when the picture is gone.")
        if "failed" in kinds:
            lines.append("The file is still there; Veil tries again. The audit log says why.")
    else:
        summary = "Veil: protection is degraded"
    troubles = kinds.get("trouble", [])
    lines += troubles[:SHOWN_NAMES] + ([f"and {len(troubles) - SHOWN_NAMES} more problems"] if len(troubles) > SHOWN_NAMES else [])
    return summary, "\n".join(lines)


class Notifier:
    """Collects notices and shows them, collapsed and rate-limited, from a thread of its own."""

    def __init__(self, section: NotifySection, backend: Backend | None, clock: Callable[[], float] = time.monotonic):
        self.section = section
        self.backend = backend if section.enabled else None
        self._clock = clock
        self._pending: list[Notice] = []
        self._first_at = self._last_at = 0.0
        self._shown_at = -1e9
        self._shown_id = 0
        self._told_failures: set[str] = set()  # a file that keeps failing is told once per run
        self._told_troubles: set[str] = set()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._trouble_logged = False

    @property
    def state(self) -> str:
        if not self.section.enabled:
            return "notifications: off"
        return f"notifications: {self.backend.name}" if self.backend is not None else "notifications: unavailable here"

    def start(self) -> None:
        if self.backend is not None:
            self._thread = threading.Thread(target=self._run, name="veil-notify", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Tell what is still waiting, then end."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(10)

    # -- what to tell (any thread) --------------------------------------------------------

    def outcome(self, outcome: Outcome) -> None:
        notice = notice_for(outcome)
        if notice is None:
            return
        if notice.kind == "failed":
            if outcome.subject in self._told_failures:
                return
            self._told_failures.add(outcome.subject)
        self._post(notice)

    def trouble(self, message: str) -> None:
        """Protection is degraded (a full disk, the screen unavailable): told once per message."""
        if message in self._told_troubles:
            return
        self._told_troubles.add(message)
        self._post(Notice("trouble", message))

    def _post(self, notice: Notice) -> None:
        if self.backend is None:
            return
        with self._wake:
            now = self._clock()
            if not self._pending:
                self._first_at = now
            self._pending.append(notice)
            self._last_at = now
            self._wake.notify()

    # -- the notifying thread -------------------------------------------------------------

    def _due(self, now: float) -> float:
        """Seconds until the pending notices may be shown (<= 0: now): once quiet for SETTLE_S, or
        once the first has waited min_interval_s; and never sooner than min_interval_s after the last."""
        ready = min(self._last_at + SETTLE_S, self._first_at + max(self.section.min_interval_s, SETTLE_S))
        return max(ready, self._shown_at + self.section.min_interval_s) - now

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and (not self._pending or self._due(self._clock()) > 0):
                    self._wake.wait(None if not self._pending else max(0.01, self._due(self._clock())))
                batch, self._pending = self._pending, []
                stopping = self._stopping
            if batch:
                self._show(batch)
            if stopping:
                return

    def _show(self, batch: list[Notice]) -> None:
        summary, body = wording(batch)
        try:
            assert self.backend is not None
            self._shown_id = self.backend.show(summary, body, self._shown_id)
            self._shown_at = self._clock()
        except Exception as err:  # the notification service went away: protection goes on, said once
            if not self._trouble_logged:
                log.warning("cannot show a desktop notification: %s", str(err).splitlines()[0] if str(err) else type(err).__name__)
                self._trouble_logged = True


class DBusBackend:
    """org.freedesktop.Notifications on the session bus, through Jeepney. The service may start
    after Veil (it is D-Bus activated at login): it is asked for at each notification, and a
    broken connection is opened again next time."""

    name = "desktop notifications (D-Bus)"

    def __init__(self):
        from jeepney import DBusAddress

        self._address = DBusAddress("/org/freedesktop/Notifications", bus_name="org.freedesktop.Notifications",
                                    interface="org.freedesktop.Notifications")
        self._connection = None
        self._markup: bool | None = None
        self._connect()  # no session bus at all: the caller learns it now

    def _connect(self):
        from jeepney.io.blocking import open_dbus_connection

        if self._connection is None:
            self._connection = open_dbus_connection(bus="SESSION")
        return self._connection

    def _call(self, method: str, signature: str, body: tuple) -> tuple:
        from jeepney import new_method_call
        from jeepney.wrappers import unwrap_msg

        try:
            reply = self._connect().send_and_get_reply(new_method_call(self._address, method, signature, body), timeout=5)
            return unwrap_msg(reply)
        except Exception as err:
            if not hasattr(err, "name"):  # not a D-Bus error reply: the connection itself failed
                self.close()
            raise OSError(str(err) or type(err).__name__) from None

    def show(self, summary: str, body: str, replaces: int) -> int:
        if self._markup is None:
            self._markup = "body-markup" in self._call("GetCapabilities", "", ())[0]
        if self._markup:  # a server that reads markup would read a file named "<b>x.png" as bold
            body = body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        hints = {"urgency": ("y", 1)}  # normal
        (notification_id,) = self._call("Notify", "susssasa{sv}i", (APP_NAME, replaces, "security-high", summary, body, [], hints, -1))
        return int(notification_id)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def system_backend() -> tuple[Backend | None, str]:
    """This platform's notification service, or None and why not."""
    if not sys.platform.startswith("linux"):
        return None, "desktop notifications are wired for Linux (D-Bus) only so far"
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS") and not os.path.exists(f"/run/user/{os.getuid()}/bus"):
        return None, "no D-Bus session bus"
    try:
        return DBusBackend(), ""
    except Exception as err:  # no bus, or no notification service on it
        return None, f"no notification service on the session bus ({str(err).splitlines()[0] if str(err) else type(err).__name__})"
