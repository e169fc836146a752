"""The one action layer for files: quarantine, blur or log a judged file, and its audit row.

The agent's decider (inside its exactly-once sequence, agent/decider.py) and ``veil scan
--action`` both act through ``FileActions``, so a row means the same whoever wrote it: the
``action`` column says what was done (``quarantine``/``blur``; ``log`` for a flagged file left
in place; ``none`` for a benign or unreadable one), and a blurred stand-in is registered as
Veil's own output before it is written, whoever wrote it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from agent.actions.blur import BlurError, blurred
from agent.actions.thumbnails import forget_thumbnails
from agent.audit import AuditLog, AuditRecord
from agent.fsutil import display_path, sha256_file
from agent.outcome import MOVING_ACTIONS, ActionName, Outcome, Prediction, Source
from agent.policy import Profile
from agent.regions import Region
from agent.scan import ScanResult
from agent.vault import Sealed, Vault, VaultError


def audited_action(flagged: bool, requested: ActionName) -> ActionName:
    """What the audit row says was done when no move failed."""
    if not flagged:
        return "none"
    return requested if requested in MOVING_ACTIONS else "log"


def _file_sha256(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError:
        return ""  # vanished or unreadable: the row says so in its decision


def file_record(result: ScanResult, profile: Profile, model: str, action: ActionName, detail: str = "", *,
                error: bool = False, sha256: str | None = None, source: Source = "scan") -> AuditRecord:
    """The audit row for a judged file (``error``: its action failed, whatever the model said)."""
    decision = result.decision
    failed = error or result.prediction == "error"
    if result.region is not None and not failed:  # where in the picture: a parent can look at that part
        r = result.region
        detail = "; ".join(filter(None, [detail, f"region {r.left},{r.top},{r.width},{r.height}"]))
    return AuditRecord(
        source=source,
        subject=display_path(result.path),
        decision="error" if failed else (decision.prediction if decision else ""),
        action=action,
        detail=detail or result.error or "",
        sha256=_file_sha256(result.path) if sha256 is None else sha256,
        profile=profile.name,
        model=model,
        malign=f"{decision.malign:.4f}" if decision else "",
        threshold=f"{profile.threshold:.2f}",
        latency_ms=f"{result.latency_ms:.1f}",
    )


class FileActions:
    def __init__(self, audit: AuditLog, vault: Vault | None, model: str, source: Source, *, log_benign: bool = False,
                 on_standin: Callable[[str], None] | None = None, warn: Callable[[str], None] = lambda line: None):
        self.audit, self.vault, self.model, self.source = audit, vault, model, source
        self.log_benign = log_benign
        self.on_standin = on_standin  # records a stand-in's sha256 as Veil's own output
        self.warn = warn  # one line when a flagged file could not be moved

    def move(self, result: ScanResult, profile: Profile, action: ActionName, *, entry_id: str | None = None,
             content_sha: str | None = None) -> Sealed:
        """Quarantine the file, or blur it (the original sealed, a stand-in in its place).
        VaultError or BlurError, with the file untouched, when that cannot be done."""
        if self.vault is None or result.decision is None or action not in MOVING_ACTIONS:
            raise ValueError(f"move needs a vault and a decided file, and quarantine or blur (got {action})")
        info = {"malign": result.decision.malign, "profile": profile.name, "action": action, "source": self.source}
        def stand_in(content: bytes) -> bytes:
            return self._blurred(content, result.region)

        sealed = self.vault.quarantine(result.path, info, stand_in=stand_in if action == "blur" else None,
                                       entry_id=entry_id, content_sha=content_sha)
        forget_thumbnails(result.path)  # a file manager's cached copy of the picture goes with it
        return sealed

    def failed(self, result: ScanResult, profile: Profile, action: ActionName, err: VaultError | BlurError,
               sha256: str | None = None, audit: bool = True) -> Outcome:
        """A move that could not be made: said in one line and audited as an error (``audit``:
        once per failure; a caller retrying the same failure says so)."""
        detail = f"{action} failed: {err}"
        self.warn(f"{display_path(result.path)}: not {'blurred' if action == 'blur' else 'quarantined'}: {err}")
        if audit:
            self.record(result, profile, "none", detail, error=True, sha256=sha256)
        return Outcome(display_path(result.path), "error", "none", detail, self.source, result.path, attempted=action)

    def record(self, result: ScanResult, profile: Profile, action: ActionName, detail: str = "", *, error: bool = False,
               sha256: str | None = None) -> None:
        self.audit.append(file_record(result, profile, self.model, action, detail, error=error, sha256=sha256, source=self.source))

    def wants_row(self, result: ScanResult) -> bool:
        """Flagged and unreadable files always get an audit row; benign ones with ``log_benign``."""
        return result.flagged or result.prediction == "error" or self.log_benign

    def apply(self, result: ScanResult, profile: Profile, action: ActionName) -> Outcome:
        """Act on one result and audit it (``veil scan --action``; the agent's decider runs the
        same steps with its state records between them)."""
        subject = display_path(result.path)
        if result.flagged and action in MOVING_ACTIONS:
            try:
                sealed = self.move(result, profile, action)
            except (VaultError, BlurError) as err:
                return self.failed(result, profile, action, err)
            detail = f"vault entry {sealed.id}"
            self.record(result, profile, action, detail, sha256=sealed.sha256)
            return Outcome(subject, "malign", action, detail, self.source, result.path)
        done = audited_action(result.flagged, action)
        if self.wants_row(result):
            self.record(result, profile, done)
        decision: Prediction = "error" if result.prediction == "error" else ("malign" if result.flagged else "benign")
        return Outcome(subject, decision, done, result.error or "", self.source, result.path)

    def _blurred(self, content: bytes, region: Region | None = None) -> bytes:
        """The blur stand-in (of the flagged region only, when a region decided), its hash on record
        before it is written: Veil's own output is never judged again, even after a kill between
        writing it and the audit row."""
        stand_in = blurred(content, region=region)
        if self.on_standin is not None:
            self.on_standin(hashlib.sha256(stand_in).hexdigest())
        return stand_in
