"""The parent's corrections, by picture: "not harmful" (allow) and "always block", matched by
perceptual hash (agent/picture_hash.py), so a resized, recompressed, re-saved, lightly cropped or
mirrored copy is the same picture. Only the hashes and a label (the file's name) are kept.

Where they live: the state database (owner-only) for lookups, and the audit log as the
authority. Each correction is an audited ``config`` row carrying its hashes; at every start the
agent replays those rows, puts back what the database lost (a deleted or edited database must
not quietly drop a block) and drops what the log never recorded (an allow slipped into the
database by hand), each with an ``error`` row saying so.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.picture_hash import distances, picture_views

KINDS = ("allow", "block")
# Measured (benchmarks/study_picture_hash.py, RESULTS.md): every copy of every test picture is
# within this distance of its original, and no two distinct pictures are.
MATCH_DISTANCE = 10

_ADDED = re.compile(r"(allowed|blocked) by picture #(\d+) \(phash ((?:[0-9a-f]{16} ?)+)\): (.*)\Z", re.S)
_REMOVED = re.compile(r"correction #(\d+) removed")
LABEL_CHARS = 120


def clean_label(name: str) -> str:
    """A file's name as a correction's label: printable, valid UTF-8, one line, not too long."""
    text = name.encode("utf-8", "replace").decode("utf-8")
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


@dataclass(frozen=True)
class Correction:
    number: int
    kind: str  # allow | block
    hashes: tuple[int, ...]  # the picture's views (agent/picture_hash.py: picture_views)
    label: str
    added_at: float


@dataclass(frozen=True)
class Match:
    correction: Correction
    distance: int

    def words(self) -> str:
        kind = "allowed" if self.correction.kind == "allow" else "blocked"
        return f"{kind} (parent's correction #{self.correction.number}, like {self.correction.label}, distance {self.distance})"


def audit_detail_added(correction: Correction) -> str:
    verb = "allowed" if correction.kind == "allow" else "blocked"
    return f"{verb} by picture #{correction.number} (phash {' '.join(f'{h:016x}' for h in correction.hashes)}): {correction.label}"


def audit_detail_removed(correction: Correction) -> str:
    return f"correction #{correction.number} removed ({correction.kind}: {correction.label})"


def hashes_of_file(path: Path) -> tuple[int, ...]:
    """The views a correction keeps of an image file's picture (its first frame), decoded as Veil
    decodes it; DecodeError (one line) when it is no picture Veil reads."""
    from PIL import Image, ImageOps

    from agent.classifier.preprocess import draft_for_model
    from agent.decode import DecodeError, read_error_message, to_rgb

    try:
        with Image.open(path) as image:
            draft_for_model(image)
            return picture_views(to_rgb(ImageOps.exif_transpose(image)))
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError, MemoryError) as err:
        raise DecodeError(read_error_message(err)) from None


class Corrections:
    """The corrections of one data dir, kept in step with the state database (another process,
    such as ``veil block``, may add one at any time)."""

    def __init__(self, state, audit_path: Path | None = None, check_every_s: float = 0.0):
        self._state = state
        self._audit_path = audit_path  # given: an allow counts only if the audit log records it (checked at each change)
        # the database's version is asked for at most this often: 0 for files (a correction made a moment
        # before a copy arrives must apply to it), longer for the screen (every region of every sample asks)
        self._check_every_s = check_every_s
        self._checked_at = -1e9
        self._lock = threading.Lock()
        self._version: str | None = None
        self._items: list[Correction] = []
        self._hashes = np.zeros(0, np.uint64)  # every view of every correction, flat
        self._owner = np.zeros(0, np.intp)  # which correction each view belongs to

    def _fresh(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self._check_every_s:
            return
        self._checked_at = now
        version = self._state.corrections_version()
        if version == self._version:
            return
        items = _stored(self._state)
        if self._audit_path is not None and any(c.kind == "allow" for c in items):
            from agent.report import is_correction_row, read_rows

            recorded = replay(read_rows(self._audit_path, is_correction_row))
            # an allow written into the database while the agent runs, never audited, is not used
            items = [c for c in items if c.kind == "block" or (c.number in recorded and recorded[c.number].hashes == c.hashes
                                                               and recorded[c.number].kind == "allow")]
        self._items = items
        self._hashes = np.array([h for c in items for h in c.hashes], np.uint64)
        self._owner = np.array([i for i, c in enumerate(items) for _ in c.hashes], np.intp)
        self._version = version

    def all(self) -> list[Correction]:
        with self._lock:
            self._fresh()
            return list(self._items)

    def __bool__(self) -> bool:
        return bool(self.all())

    def match(self, picture: int) -> Match | None:
        """The nearest correction with a view within ``MATCH_DISTANCE`` of this picture's hash; a
        block wins over an allow of the same picture."""
        with self._lock:
            self._fresh()
            if not self._items:
                return None
            near = distances(self._hashes, picture)
            within = np.flatnonzero(near <= MATCH_DISTANCE)
            if within.size == 0:
                return None
            best = min(within, key=lambda i: (self._items[self._owner[i]].kind != "block", int(near[i])))
            return Match(self._items[self._owner[best]], int(near[best]))

    def add(self, kind: str, hashes: tuple[int, ...], label: str, after: int = 0) -> Correction:
        """A new correction, numbered past every number in use or ever recorded (``after``: the
        highest the audit log has seen), so a number is never reused."""
        correction = Correction(self.next_number(after), kind, hashes, clean_label(label), time.time())
        self.put(correction)
        return correction

    def next_number(self, after: int = 0) -> int:
        """Past every number in use and ``after`` (the highest the audit log ever recorded)."""
        return max([after, *(c.number for c in self.all())]) + 1

    def put(self, correction: Correction) -> None:
        if correction.kind not in KINDS:
            raise ValueError(f"a correction is one of {KINDS}, not {correction.kind!r}")
        self._state.put_correction(correction.number, correction.kind, correction.hashes, correction.label, correction.added_at)
        self._checked_at = -1e9  # its own change is seen at once

    def remove(self, number: int) -> Correction | None:
        found = next((c for c in self.all() if c.number == number), None)
        if found is not None:
            self._state.drop_correction(number)
            self._checked_at = -1e9
        return found


def highest_number(rows: list[dict[str, str]]) -> int:
    """The highest correction number the audit log ever recorded (removed ones too)."""
    numbers = [int(m[2]) for row in rows if row.get("source") == "agent" and (m := _ADDED.match(row.get("detail") or ""))]
    return max(numbers, default=0)


def replay(rows: list[dict[str, str]]) -> dict[int, Correction]:
    """The corrections the audit log says exist now: each added row, minus each removed one."""
    known: dict[int, Correction] = {}
    for row in rows:
        if row.get("source") != "agent" or row.get("subject") != "config":
            continue
        detail = row.get("detail") or ""  # a short row has None there
        added = _ADDED.match(detail)
        if added:
            number = int(added[2])
            known[number] = Correction(number, "allow" if added[1] == "allowed" else "block",
                                       tuple(int(h, 16) for h in added[3].split()), added[4], 0.0)
            continue
        removed = _REMOVED.match(detail)
        if removed:
            known.pop(int(removed[1]), None)
    return known


def reconcile(state, rows: list[dict[str, str]]) -> list[str]:
    """Put the state database right from the audit log, failing safe: a block the log records
    and the database lacks is put back (the database was deleted or edited), and an allow the
    log does not record is dropped (slipped in by hand). Never the other way: an allow is not
    added from log rows alone (anyone can append a row whose chain checks out; the parent makes
    it again), and a block is not dropped. Returns what was put right, in words."""
    recorded = replay(rows)
    stored = {c.number: c for c in _stored(state)}
    notes = []
    for number, correction in recorded.items():
        have = stored.get(number)
        if correction.kind == "block" and (have is None or have.kind != "block" or have.hashes != correction.hashes):
            state.put_correction(number, "block", correction.hashes, correction.label, time.time())
            notes.append(f"correction #{number} (block: {correction.label}) was missing or changed in the state "
                         "database; put back from the audit log")
    for number, correction in stored.items():
        known = recorded.get(number)
        if correction.kind == "allow" and (known is None or known.kind != "allow" or known.hashes != correction.hashes):
            state.drop_correction(number)
            notes.append(f"correction #{number} (allow: {correction.label}) was in the state database but not so in the "
                         "audit log; removed")
    return notes


def _stored(state) -> list[Correction]:
    return [Correction(n, k, hashes, label, at) for n, k, hashes, label, at in state.corrections()]
