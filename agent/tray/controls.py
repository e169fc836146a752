"""What the tray's menu entries do. Every doing goes through the ``App`` facade; asking the user
(PIN, folder, lists) goes through ``Prompts`` (the Tk dialogs in agent/tray/dialogs.py).

Anything that lowers protection — pause, profile change, opening the quarantine (to restore),
quit — asks for the PIN when one is set. The App checks it against the vault's keyring, which
audits each wrong PIN (``pin-failed``) and locks further tries out after repeated failures; the
dialog says so and may be tried again or cancelled. Resuming and scanning need no PIN: they
only add protection.

Each action runs in a thread of its own: neither the tray's event loop nor Tk waits on a PIN.
One action at a time: a second click while a PIN dialog is open is told so.
"""

from __future__ import annotations

import logging
import threading
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from agent.audit import readable
from agent.facade import AgentFacade
from agent.setup_flow import SetupChoice

log = logging.getLogger(__name__)


class Prompts(Protocol):
    def ask_pin(self, purpose: str, problem: str) -> str | None:
        """The PIN typed, or None if the user cancelled. ``problem`` explains a retry."""

    def choose_folder(self) -> Path | None: ...

    def choose_picture(self, title: str) -> Path | None: ...

    def show_quarantine(self, rows: list[tuple[str, str]], restore: Callable[[str], str], forget: Callable[[], None]) -> None:
        """(entry id, line) pairs; ``restore(entry_id)`` returns one line saying what happened;
        ``forget()`` when the window closes (by the user, or after ``QUARANTINE_IDLE_S`` idle):
        the unlocked key is dropped with it."""

    def show_text(self, title: str, lines: list[str]) -> None: ...

    def show_setup(self, choice: SetupChoice, profiles: dict[str, str], pin_set: bool,
                   save: Callable[[SetupChoice], str]) -> None:
        """The setup window; ``save(choice)`` returns "saved…" or the problem in one line."""

    def tell(self, message: str) -> None: ...


class Controls:
    def __init__(self, app: AgentFacade, prompts: Prompts, quit: Callable[[str], None], about: Callable[[], list[str]],
                 open_page: Callable[[str], bool] = webbrowser.open):
        self.app = app
        self.open_page = open_page  # the default browser (a test passes its own)
        self.prompts = prompts
        self._quit = quit
        self._about = about
        self._busy = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- the menu's entries (any thread; each returns at once) ----------------------------

    def pause(self, minutes: float) -> None:
        self._in_background(self._pause, minutes)

    def resume(self) -> None:
        self._in_background(lambda: self.app.resume(by="from the tray"))

    def set_profile(self, name: str) -> None:
        self._in_background(self._set_profile, name)

    def scan_folder(self) -> None:
        self._in_background(self._scan_folder)

    def open_quarantine(self) -> None:
        self._in_background(self._open_quarantine)

    def open_audit_log(self) -> None:
        self._in_background(self._open_audit_log)

    def setup(self) -> None:
        self._in_background(self._setup)

    def block_picture(self) -> None:
        self._in_background(self._correct, "block")

    def allow_picture(self) -> None:
        self._in_background(self._correct, "allow")

    def open_report(self) -> None:
        self._in_background(self._open_report)

    def about(self) -> None:
        self._in_background(lambda: self.prompts.show_text("About Veil", self._about()))

    def quit(self) -> None:
        self._in_background(self._quit_with_pin)

    def wait(self, timeout: float | None = None) -> None:
        """Until the action in hand is over (for tests and shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # -- the doings -----------------------------------------------------------------------

    def _in_background(self, action: Callable[..., None], *args: Any) -> None:
        if not self._busy.acquire(blocking=False):
            self.prompts.tell("Veil is still busy with the last request (a PIN dialog may be open).")
            return

        def run() -> None:
            try:
                action(*args)
            except Exception as err:  # one failed request must not end the tray
                log.exception("tray request failed")
                self.prompts.tell(f"That did not work: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
            finally:
                self._busy.release()

        self._thread = threading.Thread(target=run, name="veil-tray-action", daemon=True)
        self._thread.start()

    def _authorised(self, purpose: str) -> tuple[Any, str, str | None] | None:
        """(the vault's private key, how it was authorised, the PIN) once the PIN is proven; None
        if the user cancelled. Without a PIN set there is nothing to ask."""
        from agent.vault import PinError

        if not self.app.pin_set:
            return self.app.unlock(None, purpose), "from the tray (no PIN set)", None
        problem = ""
        while True:
            pin = self.prompts.ask_pin(purpose, problem)
            if pin is None:
                return None
            try:
                return self.app.unlock(pin, f"tray: {purpose}"), "from the tray with the PIN", pin
            except PinError as err:
                problem = str(err)

    def _pause(self, minutes: float) -> None:
        granted = self._authorised(f"pause protection for {minutes:g} minutes")
        if granted is not None:
            self.app.pause(minutes, by=granted[1])

    def _set_profile(self, name: str) -> None:
        if name == self.app.profile.name:
            return
        granted = self._authorised(f"switch to the {name} profile")
        if granted is not None:
            self.app.set_profile(name, by=granted[1])

    def _scan_folder(self) -> None:
        folder = self.prompts.choose_folder()
        if folder is None:
            return
        queued = self.app.scan_folder(folder)
        self.prompts.tell(f"Checking {queued} files in {folder} with the {self.app.profile.name} profile; "
                          "what is flagged is handled as in a watched folder and written to the audit log.")

    def _open_quarantine(self) -> None:
        from agent.fsutil import display_path
        from agent.vault import VaultError

        granted = self._authorised("open the quarantine")
        if granted is None:
            return
        key, how = [granted[0]], granted[1]  # held only while the window is open (``forget``)
        rows = []
        for entry in self.app.quarantined(key[0]):
            malign = entry.meta.get("malign")
            score = f"{malign:.2f}" if isinstance(malign, float) else "-"
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.time))
            rows.append((entry.id, f"{when}  {score}  {display_path(entry.original)}"))

        def restore(entry_id: str) -> str:
            if not key:
                return "not restored: the window was closed; open the quarantine again"
            try:
                return f"restored {display_path(self.app.restore(entry_id, key[0], by=how))}"
            except VaultError as err:
                return f"not restored: {err}"

        self.prompts.show_quarantine(rows, restore, forget=key.clear)

    def _open_audit_log(self) -> None:
        rows = self.app.audit_tail(200)
        lines = [self.app.audit_check(), ""] + [readable(row) for row in reversed(rows)]
        self.prompts.show_text("Veil — audit log (newest first)", lines)

    def _setup(self) -> None:
        """The setup window; with a PIN set, only after it is given (kept until the window saves,
        as setting a new PIN needs the current one)."""
        current_pin = None
        if self.app.pin_set:
            granted = self._authorised("change Veil's settings or PIN")
            if granted is None:
                return
            current_pin = granted[2]
        choice, profiles = self.app.setup_choice()
        self.prompts.show_setup(choice, profiles, self.app.pin_set, lambda chosen: self.app.apply_setup(chosen, current_pin))

    def _correct(self, kind: str) -> None:
        """A parent's correction from the tray: a picture chosen, the PIN, and then it and its
        copies are always flagged (block) or never (allow)."""
        words = "Always block a picture" if kind == "block" else "Never flag a picture"
        picture = self.prompts.choose_picture(f"Veil — {words.lower()}")
        if picture is None or self._authorised(f"{'block' if kind == 'block' else 'allow'} {picture.name}") is None:
            return
        self.prompts.tell(self.app.correct(kind, picture))

    def _open_report(self) -> None:
        """The last week's page, written to the data dir and opened in the default browser."""
        page = self.app.write_report()
        if not self.open_page(page.as_uri()):
            self.prompts.tell(f"The report is in {page}; no web browser could be opened here.")

    def _quit_with_pin(self) -> None:
        granted = self._authorised("quit Veil")
        if granted is not None:
            self._quit(f"quit ({granted[1]})")
