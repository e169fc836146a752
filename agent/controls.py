"""The parent's controls over the quarantine and the PIN, each with its audit row: the tray
(through the running agent) and the command line use these same calls, so a restore or a wrong
PIN reads the same in the audit log whoever made it. Asking for the PIN is the caller's job
(a Tk dialog, a terminal prompt); checking and recording it is done here.

Pause and profile belong to the running agent (agent/app.py): only it has a state to change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from agent.audit import AuditLog, AuditRecord
from agent.corrections import Correction
from agent.fsutil import display_path
from agent.outcome import Source
from agent.state import StateDB
from agent.vault import Entry, KeyTrouble, PinError, Vault


def _views_or_none(path: Path) -> list[tuple[int, ...]]:
    """A file's picture views, or none for what is no picture Veil reads (a video, a broken file)."""
    from agent.corrections import hashes_of_file
    from agent.decode import DecodeError

    try:
        return [hashes_of_file(path)]
    except (DecodeError, OSError, ValueError):
        return []


class ParentControls:
    def __init__(self, vault: Vault, audit: AuditLog, state: Callable[[], StateDB], profile: Callable[[], str] = lambda: ""):
        self.vault, self.audit = vault, audit
        self._state = state  # opened when a restore needs it: the CLI has no agent's database open
        self._profile = profile

    @property
    def pin_set(self) -> bool:
        """Whether a PIN must be asked for: also while the key file cannot be trusted (deleted,
        replaced), when every PIN-gated control stays locked (``unlock`` refuses)."""
        keyring = self.vault.keyring
        return bool(keyring.trouble()) or (keyring.path.exists() and keyring.pin_set)

    def unlock(self, pin: str | None, purpose: str) -> X25519PrivateKey:
        """The vault's private key for ``pin``; a wrong one is audited (``pin-failed``) and
        raised as PinError, with the lock-out the keyring imposes after repeated failures. While
        the key file cannot be trusted, nothing unlocks (audited the same way)."""
        self.refuse_if_locked(purpose)
        self.vault.keyring.ensure()
        try:
            return self.vault.keyring.unlock(pin)
        except (PinError, KeyTrouble) as err:
            self._row("pin-failed", f"{purpose}: {err}")
            raise PinError(str(err)) from None

    def entries(self, private: X25519PrivateKey) -> list[Entry]:
        return self.vault.entries(private)

    def restore(self, entry_id: str, private: X25519PrivateKey, to: Path | None = None, by: str = "") -> Path:
        """Put a quarantined file back (VaultError, one line, if it cannot be). Its content is
        then allowed: restoring with the PIN is a parent's decision, which a running agent must
        not undo by quarantining the file again. Audited under the source that quarantined it."""
        state = self._state()
        allowed: list[str] = []
        sources: list[Source] = []
        views: list[tuple[int, ...]] = []

        def allow(entry: Entry, restored: Path) -> None:  # on record before the file is back, so the watcher leaves it be
            state.allow(entry.content_sha256, f"restored from vault entry {entry_id}")
            allowed.append(entry.content_sha256)
            sources.append(cast(Source, entry.meta.get("source") or "folder"))
            views.extend(_views_or_none(restored))  # from the restored bytes, before anyone else can reach them

        try:
            target = self.vault.restore(entry_id, private, to, before_write=allow)
        except Exception:
            for sha in allowed:
                state.disallow(sha)
            raise
        self.audit.append(AuditRecord(sources[0] if sources else "folder", display_path(target), action="restore",
                                      profile=self._profile(), detail=f"restored from vault entry {entry_id}" + (f"; {by}" if by else "")))
        if views:  # a restored still is allowed as a picture too: a resized or re-saved copy is not quarantined again
            self._add_correction("allow", views[0], f"{target.name} (restored from vault entry {entry_id})")
        return target

    def correct(self, kind: str, path: Path) -> Correction:
        """Allow or block the picture in ``path`` and its near copies (the caller has checked the
        PIN). DecodeError when the file is not a picture Veil reads."""
        from agent.corrections import hashes_of_file

        return self._add_correction(kind, hashes_of_file(path), path.name)

    def _add_correction(self, kind: str, views: tuple[int, ...], label: str) -> Correction:
        """Audited first, with its hashes (the record that makes it survive a deleted state
        database), then stored: a failed audit write leaves no correction in force."""
        from agent.corrections import Correction, Corrections, audit_detail_added, clean_label, highest_number

        corrections = Corrections(self._state())
        correction = Correction(corrections.next_number(highest_number(self._audit_rows())), kind, views, clean_label(label), time.time())
        self._row("config", audit_detail_added(correction))
        corrections.put(correction)
        return correction

    def uncorrect(self, number: int, kind: str) -> Correction | None:
        """Remove correction ``number`` if it is of ``kind`` (None, nothing removed, otherwise)."""
        from agent.corrections import Corrections, audit_detail_removed

        corrections = Corrections(self._state())
        found = next((c for c in corrections.all() if c.number == number and c.kind == kind), None)
        if found is not None:
            self._row("config", audit_detail_removed(found))
            corrections.remove(number)
        return found

    def _audit_rows(self) -> list[dict[str, str]]:
        from agent.report import is_correction_row, read_rows

        return read_rows(self.audit.path, is_correction_row)

    def purge(self, older_than_days: float) -> int:
        removed = self.vault.purge(older_than_days)
        self._row("config", f"quarantine purge: {removed} entries older than {older_than_days:g} days")
        return removed

    def set_pin(self, current: str | None, new: str) -> None:
        self._pin_change("set", lambda: self.vault.keyring.set_pin(current, new))

    def clear_pin(self, current: str | None) -> None:
        self._pin_change("clear", lambda: self.vault.keyring.clear_pin(current))

    def reset_keys(self) -> str:
        """``veil pin reset``: a new key pair and no PIN, for a parent whose key file or PIN is
        lost. Needs no PIN (there may be none to check), so it is audited loudly."""
        new, moved = self.vault.keyring.reset()
        detail = f"vault keys reset: new key {new}, no PIN"
        if moved:
            detail += f"; {moved} entr{'y' if moved == 1 else 'ies'} sealed under the old key kept in {self.vault.folder / 'old-keys'}"
        self._row("config", detail)
        return detail

    def note_config(self, detail: str) -> None:
        """A settings change made through Veil (``veil setup``, the tray's setup window), on record."""
        self._row("config", detail)

    def refuse_if_locked(self, purpose: str) -> None:
        """PinError (audited) while the key file cannot be trusted: nothing PIN-gated is done then."""
        trouble = self.vault.keyring.trouble()
        if trouble:
            self._row("pin-failed", f"{purpose}: locked: {trouble}")
            raise PinError(f"locked: {trouble}")

    def _pin_change(self, what: str, change: Callable[[], None]) -> None:
        self.refuse_if_locked(f"pin {what}")
        self.vault.keyring.ensure()
        try:
            change()
        except PinError:
            self._row("pin-failed", f"wrong or missing PIN for pin {what}")
            raise
        self._row("config", f"PIN {'set' if what == 'set' else 'cleared'}")

    def _row(self, event: str, detail: str) -> None:
        self.audit.append(AuditRecord("agent", event, detail=detail, profile=self._profile()))
