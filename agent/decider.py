"""One watched file → decision → action → audit row → state, exactly once.

The order makes a kill at any point harmless:
1. classify (no side effects; a duplicate's scores come from the state database);
2. record the decision as ``acting`` (with the vault entry id it will get);
3. act (the vault's own journal makes the move atomic);
4. write the audit row;
5. mark the decision ``done``.
At the next start ``recover`` finishes every ``acting`` row: the action either happened (the file
is gone, or Veil's stand-in is in its place) or did not (the file is there, unchanged: decided
again), and the audit row is written unless the log already has it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.actions.blur import BlurError, blurred
from agent.audit import AuditLog, AuditRecord, tail
from agent.classifier import Classifier
from agent.classifier.scores import Scores
from agent.decode import DecodeLimits, read_error_message
from agent.faults import kill_point
from agent.fsutil import sha256_file
from agent.policy import Profile, decide
from agent.scan import ScanItem, ScanResult, classify_prepared, prepare_file
from agent.scan_output import display_path, scan_record
from agent.state import Identity, KnownContent, StateDB
from agent.vault import Vault, VaultError, new_entry_id

log = logging.getLogger(__name__)


def _identity_now(path: Path) -> Identity | None:
    try:
        return Identity.of(os.lstat(path))
    except OSError:
        return None


def _audit_action(flagged: bool, action: str) -> str:
    """The audit row's action: what was done, and ``log`` for a flagged file left in place."""
    return "log" if action == "none" and flagged else action


class LockedClassifier:
    """The model is shared by the worker threads; an interpreter runs one call at a time."""

    def __init__(self, classifier: Classifier):
        self._classifier = classifier
        self._lock = threading.Lock()
        self.backend = classifier.backend
        self.model = classifier.model

    def classify(self, frames: np.ndarray) -> list[Scores]:
        with self._lock:
            return self._classifier.classify(frames)


@dataclass(frozen=True)
class Outcome:
    """What happened to one file (for counters, ``--once``'s exit code and tests)."""

    path: Path
    decision: str  # benign | malign | error | ignored | standin | allowed (restored by a parent)
    action: str = "none"
    detail: str = ""


class FileDecider:
    def __init__(self, classifier: Classifier, state: StateDB, audit: AuditLog, vault: Vault,
                 profile: Callable[[], Profile], log_benign: bool = False, ignored: tuple[Path, ...] = (),
                 limits: DecodeLimits = DecodeLimits(), on_outcome: Callable[[Outcome], None] | None = None):
        self.classifier = LockedClassifier(classifier)
        self.state, self.audit, self.vault = state, audit, vault
        self.profile = profile
        self.log_benign = log_benign
        self.ignored = ignored
        self.limits = limits
        self.on_outcome = on_outcome or (lambda outcome: None)
        self.model = classifier.model.name

    # -- the pipeline's handler -----------------------------------------------------------

    def handle(self, path: Path) -> None:
        outcome = self._decide(path)
        if outcome is not None:
            self.on_outcome(outcome)

    def _decide(self, path: Path) -> Outcome | None:
        if any(path == i or i in path.parents for i in self.ignored):
            return None
        try:
            before = os.lstat(path)
        except OSError:
            return None  # gone before its turn: nothing to decide
        if not stat.S_ISREG(before.st_mode):
            return None  # symlinks are not followed; devices and folders are not files to judge
        identity = Identity.of(before)
        if self.state.is_decided(path, identity):
            return None
        started = time.perf_counter()
        try:
            sha = sha256_file(path)
            after = os.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as err:
            return self._error(path, identity, "", read_error_message(err), started)
        if Identity.of(after) != identity:
            return None  # still being written after all: its next event (or the reconcile) brings it back
        if self.state.is_standin(sha):
            self.state.record(path, identity, sha, "standin", None, "none")
            return Outcome(path, "standin")
        if self.state.is_allowed(sha):
            self.state.record(path, identity, sha, "allowed", None, "none")
            return Outcome(path, "allowed")
        known = self.state.known_content(sha)
        if known is None:
            prepared = prepare_file(ScanItem(path, explicit=False), self.limits)
            result = classify_prepared(prepared, self.classifier, self.profile())
            if result is None:
                self.state.record(path, identity, sha, "ignored", None, "none")
                return Outcome(path, "ignored")
            if _identity_now(path) != identity:
                return None  # changed while decoded: judged again once it settles
            if result.prediction == "error":
                return self._error(path, identity, sha, result.error or "unreadable", started)
            assert result.scores is not None  # every result but an error has scores
            known = KnownContent(result.scores, result.frames, result.worst_frame, result.error, prepared.kind == "video")
            self.state.remember_content(sha, known)
        profile = self.profile()
        decision = decide(known.scores, profile)
        result = ScanResult(path, decision.prediction, (time.perf_counter() - started) * 1000, decision, known.scores,
                            known.frames, known.worst_frame, known.note)
        action = profile.actions.get("video" if known.video else "folder", "log") if decision.flagged else "none"
        return self._act(path, identity, sha, result, profile, action)

    # -- acting, exactly once -------------------------------------------------------------

    def _act(self, path: Path, identity: Identity, sha: str, result: ScanResult, profile: Profile, action: str) -> Outcome:
        assert result.decision is not None  # _decide made it
        malign, decision = result.decision.malign, result.decision.prediction
        moves = action in ("quarantine", "blur")
        audited = result.flagged or self.log_benign or action != "none"
        if not audited:
            self.state.record(path, identity, sha, decision, malign, action)
            return Outcome(path, decision, action)
        entry_id = new_entry_id() if moves else ""
        detail = f"vault entry {entry_id}" if moves else ""  # on record before the move, to find it after a kill
        self.state.record(path, identity, sha, decision, malign, action, detail, status="acting")
        kill_point("folder:decided")
        if moves:
            try:
                self.vault.quarantine(path, {"malign": malign, "profile": profile.name, "action": action,
                                             "source": "folder"},
                                      stand_in=self._blurred if action == "blur" else None, entry_id=entry_id, content_sha=sha)
            except (VaultError, BlurError) as err:
                detail = f"{action} failed: {err}"
                log.warning("%s: not %s: %s", display_path(path), "blurred" if action == "blur" else "quarantined", err)
                self.audit.append(scan_record(result, profile, self.model, "none", detail, error=True, sha256=sha, source="folder"))
                self.state.record(path, identity, sha, decision, malign, "none", detail)
                return Outcome(path, "error", "none", detail)
        kill_point("folder:acted")
        self.audit.append(scan_record(result, profile, self.model, _audit_action(result.flagged, action), detail, sha256=sha,
                                      source="folder"))
        kill_point("folder:audited")
        self.state.finish(path)
        return Outcome(path, decision, action, detail)

    def _blurred(self, content: bytes) -> bytes:
        """The blur stand-in, its hash on record before it is written: Veil's own output is
        never judged again, even after a kill between writing it and the audit row."""
        stand_in = blurred(content)
        self.state.add_standin(hashlib.sha256(stand_in).hexdigest())
        return stand_in

    def _error(self, path: Path, identity: Identity, sha: str, message: str, started: float) -> Outcome:
        profile = self.profile()
        result = ScanResult(path, "error", (time.perf_counter() - started) * 1000, error=message)
        self.state.record(path, identity, sha, "error", None, "none", message, status="acting")
        self.audit.append(scan_record(result, profile, self.model, "none", message, error=True, sha256=sha, source="folder"))
        self.state.finish(path)
        return Outcome(path, "error", "none", message)

    # -- after a kill ---------------------------------------------------------------------

    def recover(self, resubmit: Callable[[Path], object]) -> list[str]:
        """Finish what a kill interrupted; returns one line per file, for the log."""
        notes = []
        recent = tail(self.audit.path, 2000) if self.audit.path.exists() else []
        logged = {(r["subject"], r["sha256"]) for r in recent if r["source"] == "folder"}
        for row in self.state.pending():
            subject = display_path(row.path)
            try:
                now_sha = sha256_file(row.path) if row.path.is_file() and not row.path.is_symlink() else None
            except OSError:
                now_sha = None
            if row.action in ("quarantine", "blur") and now_sha == row.sha256:
                # the move never happened (the vault rolled it back): decide the file again
                self.state.forget(row.path)
                resubmit(row.path)
                notes.append(f"{subject}: {row.action} interrupted; deciding it again")
                continue
            if (subject, row.sha256) not in logged:  # every acting row is one that gets an audit row
                profile = self.profile()
                self.audit.append(AuditRecord(
                    "folder", subject, decision=row.decision, action=_audit_action(row.decision == "malign", row.action),
                    detail=f"{row.detail} (recorded after an interrupted run)".strip(), sha256=row.sha256,
                    profile=profile.name, model=self.model,
                    malign=f"{row.malign:.4f}" if row.malign is not None else "", threshold=f"{profile.threshold:.2f}"))
                notes.append(f"{subject}: audit row written after an interrupted run")
            self.state.finish(row.path)
        return notes
