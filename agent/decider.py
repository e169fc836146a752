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

import errno
import hashlib
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import numpy as np

from agent.actions.blur import BlurError
from agent.actions.files import FileActions, audited_action
from agent.audit import AuditRecord, tail
from agent.classifier import Classifier
from agent.classifier.scores import Scores
from agent.corrections import Corrections
from agent.decode import SNIFF_BYTES, DecodeLimits, read_error_message, sniff
from agent.faults import kill_point, pause_point
from agent.fsutil import display_path, open_regular, sha256_file
from agent.outcome import MOVING_ACTIONS, ActionName, Outcome, action_name
from agent.picture_hash import phash
from agent.policy import Decision, Profile
from agent.regions import MirrorMissing, Region, decide_picture
from agent.scan import IMAGE_SUFFIXES, VIDEO_SUFFIXES, ScanItem, ScanResult, classify_prepared, prepare_held
from agent.sources.folder import is_temporary
from agent.state import FileRow, Identity, KnownContent, StateDB
from agent.vault import VaultError, new_entry_id

log = logging.getLogger(__name__)


def _identity_now(path: Path) -> Identity | None:
    try:
        return Identity.of(os.lstat(path))
    except OSError:
        return None


MAX_CHANGES = 3  # judgements in a row a change may cut short before the bytes read are judged anyway
KEPT_CHANGING = "kept changing while judged: judged as read"


def _read_held(handle: BinaryIO, head: bytes, kind: str, limits: DecodeLimits) -> tuple[bytes | BinaryIO, str]:
    """The rest of the file through the same handle, and the sha256 of every byte: an image up to
    ``max_image_bytes`` is held in memory (decoded from exactly these bytes); a video, or an image
    padded past that, is hashed in blocks and decoded from the handle afterwards (``_rehashed``
    then checks the bytes did not change under the decode)."""
    digest = hashlib.sha256(head)
    if kind == "image" and os.fstat(handle.fileno()).st_size <= limits.max_image_bytes:
        rest = handle.read(limits.max_image_bytes + 1 - len(head))
        if len(head) + len(rest) <= limits.max_image_bytes:
            digest.update(rest)
            return head + rest, digest.hexdigest()
        digest.update(rest)  # grew past the limit while read: hashed on as a stream
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return handle, digest.hexdigest()


def _rehashed(handle: BinaryIO) -> str:
    handle.seek(0)
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def _same_failure(row: FileRow | None, detail: str) -> bool:
    """Whether this very failure is already on record (and audited) for the path."""
    return row is not None and row.status == "failed" and row.detail == detail


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


def _hash_of(decoded) -> int | None:
    return phash(decoded.glance) if decoded.glance is not None else None


class FileDecider:
    def __init__(self, classifier: Classifier, state: StateDB, actions: FileActions, profile: Callable[[], Profile],
                 ignored: tuple[Path, ...] = (), limits: DecodeLimits = DecodeLimits(),
                 on_outcome: Callable[[Outcome], None] | None = None, again: Callable[[Path], object] | None = None):
        self.classifier = LockedClassifier(classifier)
        self.state, self.actions = state, actions
        self.corrections = Corrections(state, actions.audit.path)  # the parent's allow/block by picture
        self.audit = actions.audit
        self.profile = profile
        self.ignored = ignored
        self.limits = limits
        self.on_outcome = on_outcome or (lambda outcome: None)
        self.again = again or (lambda path: None)
        self.model = classifier.model.name
        self._changes: dict[Path, int] = {}  # path → judgements in a row cut short by a change

    # -- the pipeline's handler -----------------------------------------------------------

    def handle(self, path: Path) -> Outcome | None:
        """Decide one path (None: nothing to decide, e.g. gone or unchanged since decided).

        A bug or a codec's odd failure on one file must not take workers down again and again
        (the pipeline's restart budget is for the data disk and passing trouble): it becomes a
        ``failed`` file, audited once and tried again later. OSError and SQLite errors still go
        to the pipeline, whose crash path handles a full or failing data disk."""
        try:
            outcome = self._decide(path)
        except (OSError, sqlite3.Error):
            raise
        except Exception as err:
            log.exception("deciding %s failed", path)
            identity = _identity_now(path)
            if identity is None:
                return None
            outcome = self._error(path, identity, "", f"could not be judged ({type(err).__name__}: {err})", time.perf_counter(),
                                  final=False)
        if outcome is not None:
            self.on_outcome(outcome)
        return outcome

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
            handle = open_regular(path)
        except FileNotFoundError:
            return None
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.EINVAL):
                return None  # a symlink or a special file took the name: not a file to judge
            return self._error(path, identity, "", read_error_message(err), started, final=False)
        with handle:
            if Identity.of(os.fstat(handle.fileno())) != identity:
                return None  # another file took the name since the lstat: its own event brings it here
            return self._judge(path, identity, handle, before.st_nlink, started)

    def _judge(self, path: Path, identity: Identity, handle: BinaryIO, links: int, started: float) -> Outcome | None:
        """Judge the open file: the hash, the model and the content cache see the same bytes."""
        suffix = path.suffix.lower()
        try:
            # Any name can hold a picture: the first bytes decide, and a file that is neither an
            # image nor a video is passed over without reading the rest of it.
            head = handle.read(SNIFF_BYTES)
            kind = sniff(head) or ("video" if suffix in VIDEO_SUFFIXES else "image" if suffix in IMAGE_SUFFIXES else None)
            if kind is None:
                self.state.record(path, identity, "", "ignored", None, "none")
                return Outcome(display_path(path), "ignored", path=path)
            held, sha = _read_held(handle, head, kind, self.limits)
        except OSError as err:
            return self._error(path, identity, "", read_error_message(err), started, final=False)
        if self._changed(path, handle, identity) and self._again(path):
            return None
        pause_point("folder:hashed")
        if self.state.is_standin(sha):
            self.state.record(path, identity, sha, "standin", None, "none")
            return Outcome(display_path(path), "standin", path=path)
        if self.state.is_allowed(sha) and not self._blocked(path, sha, kind, held):  # a later block beats a restore
            self.state.record(path, identity, sha, "allowed", None, "none")
            return Outcome(display_path(path), "allowed", path=path)
        known = self.state.known_content(sha)
        profile = self.profile()
        verdict = self._verdict(known, profile) if known is not None else None
        picture: int | None = None
        if known is None or verdict is None:
            # with corrections on record, the still's picture hash comes with its decode (cheap then, and none otherwise)
            limits = replace(self.limits, glance=True) if self.corrections else self.limits
            prepared = prepare_held(ScanItem(path, explicit=False), kind, held, limits)
            if prepared.decoded is not None:  # remembered: a correction made later need not decode it again
                picture = _hash_of(prepared.decoded)
                if picture is not None:
                    self.state.remember_hash(sha, picture)
            result = classify_prepared(prepared, self.classifier, profile)
            # Written or replaced while judged: these scores belong to no file. (Bytes read twice
            # through the handle are hashed again: a write through a shared mapping may not move ctime.)
            changed = self._changed(path, handle, identity) or (not isinstance(held, bytes) and _rehashed(handle) != sha)
            if changed and self._again(path):
                return None
            if changed:
                result = replace(result, error="; ".join(filter(None, [result.error, KEPT_CHANGING]))) if result else None
            if result is None:
                self.state.record(path, identity, sha, "ignored", None, "none")
                return Outcome(display_path(path), "ignored", path=path)
            if result.prediction == "error":
                return self._error(path, identity, sha, result.error or "unreadable", started)
            assert result.scores is not None and result.decision is not None  # every result but an error has them
            whole = result.whole_scores if result.whole_scores is not None else result.scores
            known = KnownContent(whole, result.frames, result.worst_frame, result.error, prepared.kind == "video", result.regions)
            if not changed:  # never cached under a hash of other bytes
                self.state.remember_content(sha, known)
            verdict = (result.decision, result.scores, result.region)
        self._changes.pop(path, None)
        decision, scores, region = verdict
        correction = ""
        if not known.video and self.corrections:
            still = known.frames == 1  # an animation's other frames are not the picture that was allowed
            decision, region, correction = self._corrected(decision, region, picture if picture is not None else
                                                           self._hash(path, sha, kind, held), may_allow=still)
        result = ScanResult(path, decision.prediction, (time.perf_counter() - started) * 1000, decision, scores,
                            known.frames, known.worst_frame, known.note, region)
        kind = "video" if known.video else "folder"
        action = action_name(profile.actions.get(kind, "log"), f"profiles.{profile.name}.actions.{kind}") if decision.flagged else "none"
        return self._act(path, identity, sha, result, profile, action, links=links, correction=correction)

    def _hash(self, path: Path, sha: str, kind: str, held) -> int | None:
        """The picture hash of content judged before (from the cache, else decoded again)."""
        picture = self.state.picture_hash(sha)
        if picture is None:
            prepared = prepare_held(ScanItem(path, explicit=False), kind, held, replace(self.limits, glance=True, regions=False))
            picture = _hash_of(prepared.decoded) if prepared.decoded is not None else None
            if picture is not None:
                self.state.remember_hash(sha, picture)
        return picture

    def _blocked(self, path: Path, sha: str, kind: str, held) -> bool:
        """Whether the parent blocked this picture (checked before an exact-bytes allow is honoured)."""
        if kind == "video" or not self.corrections:
            return False
        picture = self._hash(path, sha, kind, held)
        match = self._match(picture)
        return match is not None and match.correction.kind == "block"

    def _match(self, picture: int | None):
        if picture is None:
            return None
        try:
            return self.corrections.match(picture)
        except Exception as err:  # a broken corrections table must not stop judging: the model's decision stands
            log.warning("cannot look up the parent's corrections: %s", err)
            return None

    def _corrected(self, decision: Decision, region: Region | None, picture: int | None,
                   may_allow: bool = True) -> tuple[Decision, Region | None, str]:
        """The parent's correction for this picture, where one applies and changes the outcome: an
        allowed still passes when the whole picture decided (a region that flagged is something
        else pasted into it), a blocked picture is flagged whatever the model said."""
        match = self._match(picture)
        if match is None:
            return decision, region, ""
        if match.correction.kind == "allow" and decision.flagged and may_allow and region is None:
            return Decision("benign", decision.malign, decision.profile), None, f"{match.words()}; the model said {decision.malign:.2f}"
        if match.correction.kind == "block" and not decision.flagged:
            return Decision("malign", decision.malign, decision.profile), None, f"{match.words()}; the model said {decision.malign:.2f}"
        return decision, region, ""

    def _verdict(self, known: KnownContent, profile: Profile) -> tuple[Decision, Scores, Region | None] | None:
        """The decision from what the model said about these bytes before, or None when that cannot
        answer now: a still judged without regions while they are on, or a profile whose regions
        need a second look (a mirror view) that was never taken."""
        if self.limits.regions and known.regions is None and not known.video and known.frames == 1:
            return None
        try:
            return decide_picture(known.scores, known.regions if self.limits.regions else None, profile)
        except MirrorMissing:
            return None

    @staticmethod
    def _changed(path: Path, handle: BinaryIO, identity: Identity) -> bool:
        """Whether the open file was written, or the name now leads to another file."""
        return Identity.of(os.fstat(handle.fileno())) != identity or _identity_now(path) != identity

    def _again(self, path: Path) -> bool:
        """Changed while judged: judged again from the start (its events would bring it back too,
        but a lost event must not leave it undecided) — True. After ``MAX_CHANGES`` tries in a
        row (someone keeps touching it, or a sync client keeps setting attributes) it is judged
        as read this time instead, with a note — False: a file kept busy is no hiding place."""
        tries = self._changes.get(path, 0) + 1
        if tries >= MAX_CHANGES:
            self._changes.pop(path, None)
            return False
        self._changes[path] = tries
        self.again(path)
        return True

    # -- acting, exactly once -------------------------------------------------------------

    def _act(self, path: Path, identity: Identity, sha: str, result: ScanResult, profile: Profile, action: ActionName,
             links: int = 1, correction: str = "") -> Outcome:
        assert result.decision is not None  # _decide made it
        malign, decision = result.decision.malign, result.decision.prediction
        moves = result.flagged and action in MOVING_ACTIONS
        done = action if moves else audited_action(result.flagged, action)
        subject = display_path(path)
        if not self.actions.wants_row(result) and not correction:  # a parent's correction at work is always on record
            self.state.record(path, identity, sha, decision, malign, done)
            return Outcome(subject, decision, done, "", "folder", path)
        entry_id = new_entry_id() if moves else ""
        previous = self.state.lookup(path) if moves else None  # a failed move already on record is not audited again
        detail = f"vault entry {entry_id}" if moves else ""  # on record before the move, to find it after a kill
        notes = [detail, correction]
        if is_temporary(path.name):
            notes.append("judged under a temporary download name nobody was writing to")
        if moves and links > 1:  # the same bytes stay reachable under the file's other names
            others = links - 1
            notes.append(f"{others} other name{'s' if others > 1 else ''} of this file (hard link{'s' if others > 1 else ''}) "
                         f"{'remain' if others > 1 else 'remains'}; those in watched folders are judged too")
        detail = "; ".join(filter(None, notes))
        self.state.record(path, identity, sha, decision, malign, done, detail, status="acting")
        kill_point("folder:decided")
        if moves:
            try:
                self.actions.move(result, profile, action, entry_id=entry_id, content_sha=sha)
            except (VaultError, BlurError) as err:
                detail = f"{action} failed: {err}"
                outcome = self.actions.failed(result, profile, action, err, sha256=sha, audit=not _same_failure(previous, detail))
                self.state.record(path, identity, sha, decision, malign, "none", detail, status="failed")
                return replace(outcome, final=False)
        kill_point("folder:acted")
        self.actions.record(result, profile, done, detail, sha256=sha)
        kill_point("folder:audited")
        self.state.finish(path)
        return Outcome(subject, decision, done, detail, "folder", path, other_names=links - 1 if moves else 0)

    def _error(self, path: Path, identity: Identity, sha: str, message: str, started: float, final: bool = True) -> Outcome:
        """An unreadable file. ``final``: its content is broken (decided: error); otherwise it could
        not be read at all (permissions, I/O): status ``failed``, audited once, tried again."""
        result = ScanResult(path, "error", (time.perf_counter() - started) * 1000, error=message)
        if final or not _same_failure(self.state.lookup(path), message):
            self.state.record(path, identity, sha, "error", None, "none", message, status="acting")
            self.actions.record(result, self.profile(), "none", message, error=True, sha256=sha)
        self.state.record(path, identity, sha, "error", None, "none", message, status="done" if final else "failed")
        return Outcome(display_path(path), "error", "none", message, "folder", path, final=final)

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
                    "folder", subject, decision=row.decision, action=audited_action(row.decision == "malign", action_name(row.action, "state")),
                    detail=f"{row.detail} (recorded after an interrupted run)".strip(), sha256=row.sha256,
                    profile=profile.name, model=self.model,
                    malign=f"{row.malign:.4f}" if row.malign is not None else "", threshold=f"{profile.threshold:.2f}"))
                notes.append(f"{subject}: audit row written after an interrupted run")
            self.state.finish(row.path)
        return notes
