"""What the agent has decided, kept across restarts (SQLite in the data dir).

- ``files``: one row per path: the stat identity (device, inode, size, mtime, ctime) it was decided at, the
  content hash, decision and action, and a ``status``: ``acting`` while its action and audit row
  are under way, ``done`` after. A file whose identity still matches a ``done`` row is not read
  again after a restart; a row left ``acting`` by a kill is finished at the next start
  (``pending``), so nothing is decided twice and nothing is lost.
- ``contents``: the model's scores per content hash, so a duplicate is classified once (its
  decision under the active profile is recomputed from the scores: profiles can change).
- ``standins``: hashes of the blurred stand-ins Veil wrote: its own output, never judged again.
- ``meta``: the agent's own heartbeat and how it last stopped (for audit ``gap`` rows).

One connection in WAL mode, shared by the agent's threads behind a lock; every write commits.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from agent.classifier.scores import Scores
from agent.picture_hash import from_signed, to_signed
from agent.regions import Region, RegionScores

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path BLOB PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, sha256 TEXT,
    decision TEXT, malign REAL, action TEXT, detail TEXT, status TEXT, decided_at REAL, ctime_ns INTEGER, dev INTEGER);
CREATE TABLE IF NOT EXISTS contents (
    sha256 TEXT PRIMARY KEY, scores TEXT, frames INTEGER, worst_frame INTEGER, note TEXT, video INTEGER, decided_at REAL);
CREATE TABLE IF NOT EXISTS regions (sha256 TEXT PRIMARY KEY, boxes TEXT, tiles TEXT, mirrors TEXT);
CREATE TABLE IF NOT EXISTS standins (sha256 TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS allowed (sha256 TEXT PRIMARY KEY, allowed_at REAL, why TEXT);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS picture_hashes (sha256 TEXT PRIMARY KEY, hash INTEGER);
CREATE TABLE IF NOT EXISTS corrections (id INTEGER PRIMARY KEY, kind TEXT, hashes TEXT, label TEXT, added_at REAL);
"""


@dataclass(frozen=True)
class Identity:
    """A file as ``stat`` sees it: if any of these changed, it is another file to decide.
    ``ctime_ns`` is what a user cannot set back: bytes overwritten in place with the size kept
    and the mtime restored (``touch -d``) still change it, and so does a chmod."""

    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int = 0
    dev: int = 0

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_dev)


@dataclass(frozen=True)
class FileRow:
    path: Path
    identity: Identity
    sha256: str
    decision: str  # benign | malign | error | standin (Veil's own blurred copy)
    malign: float | None
    action: str
    detail: str
    status: str  # acting | done
    decided_at: float


def _regions_to_row(regions: RegionScores) -> tuple[str, str, str]:
    return (json.dumps([[b.left, b.top, b.width, b.height] for b in regions.boxes]),
            json.dumps([list(t.probs) for t in regions.tiles]),
            json.dumps({str(i): list(m.probs) for i, m in regions.mirrors.items()}))


def _regions_from_row(row: tuple[str, str, str]) -> RegionScores:
    boxes = tuple(Region(left, top, width, height) for left, top, width, height in json.loads(row[0]))
    tiles = tuple(Scores(tuple(t)) for t in json.loads(row[1]))
    return RegionScores(boxes, tiles, {int(i): Scores(tuple(m)) for i, m in json.loads(row[2]).items()})


@dataclass(frozen=True)
class KnownContent:
    scores: Scores
    frames: int
    worst_frame: int
    note: str | None  # e.g. where a partial video stopped decoding
    video: bool  # decides which action applies (actions.video or actions.folder)
    regions: RegionScores | None = None  # a still's regions (None: not judged for regions)


class StateDB:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a decision on record survives a power cut
        self._db.executescript(_SCHEMA)
        # Columns a database from an earlier version lacks: the identity's ctime and device. (New
        # data goes in new tables, as the regions did: an older build can still write its rows.)
        for column in ("ctime_ns", "dev"):
            if column not in {row[1] for row in self._db.execute("PRAGMA table_info(files)")}:
                try:
                    self._db.execute(f"ALTER TABLE files ADD COLUMN {column} INTEGER")
                except sqlite3.OperationalError as err:  # another process (a CLI beside the agent) added it first
                    if "duplicate column" not in str(err):
                        raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- files ----------------------------------------------------------------------------

    def lookup(self, path: Path) -> FileRow | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM files WHERE path = ?", (os.fsencode(path),)).fetchone()
        return _file_row(row) if row else None

    def is_decided(self, path: Path, identity: Identity) -> bool:
        row = self.lookup(path)
        return row is not None and row.status == "done" and row.identity == identity

    def record(self, path: Path, identity: Identity, sha256: str, decision: str, malign: float | None,
               action: str, detail: str = "", status: str = "done") -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO files (path, size, mtime_ns, inode, sha256, decision, malign, action, detail, status, "
                "decided_at, ctime_ns, dev) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (os.fsencode(path), identity.size, identity.mtime_ns, identity.inode, sha256, decision, malign,
                 action, detail, status, time.time(), identity.ctime_ns, identity.dev))

    def finish(self, path: Path) -> None:
        with self._lock:
            self._db.execute("UPDATE files SET status = 'done' WHERE path = ?", (os.fsencode(path),))

    def forget(self, path: Path) -> None:
        with self._lock:
            self._db.execute("DELETE FROM files WHERE path = ?", (os.fsencode(path),))

    def add_standin(self, sha256: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO standins VALUES (?)", (sha256,))

    def is_standin(self, sha256: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM standins WHERE sha256 = ?", (sha256,)).fetchone() is not None

    def allow(self, sha256: str, why: str) -> None:
        """Content a parent restored from the quarantine (with the PIN): never quarantined again."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO allowed VALUES (?, ?, ?)", (sha256, time.time(), why))

    def disallow(self, sha256: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM allowed WHERE sha256 = ?", (sha256,))

    def is_allowed(self, sha256: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM allowed WHERE sha256 = ?", (sha256,)).fetchone() is not None

    def pending(self) -> list[FileRow]:
        """Rows a kill left between decision and audit row."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM files WHERE status = 'acting'").fetchall()
        return [_file_row(r) for r in rows]

    # -- contents -------------------------------------------------------------------------

    def known_content(self, sha256: str) -> KnownContent | None:
        with self._lock:
            row = self._db.execute("SELECT scores, frames, worst_frame, note, video FROM contents WHERE sha256 = ?",
                                   (sha256,)).fetchone()
            regions = self._db.execute("SELECT boxes, tiles, mirrors FROM regions WHERE sha256 = ?", (sha256,)).fetchone()
        if row is None:
            return None
        return KnownContent(Scores(tuple(json.loads(row[0]))), row[1], row[2], row[3], bool(row[4]),
                            _regions_from_row(regions) if regions else None)

    def remember_content(self, sha256: str, known: KnownContent) -> None:
        with self._lock:
            self._db.execute("BEGIN")  # the whole picture's scores and its regions' together, or neither
            try:
                self._db.execute("INSERT OR REPLACE INTO contents VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 (sha256, json.dumps(list(known.scores.probs)), known.frames, known.worst_frame, known.note,
                                  int(known.video), time.time()))
                self._db.execute("DELETE FROM regions WHERE sha256 = ?", (sha256,))
                if known.regions is not None:
                    self._db.execute("INSERT INTO regions VALUES (?, ?, ?, ?)", (sha256, *_regions_to_row(known.regions)))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- pictures and the parent's corrections (agent/corrections.py) ----------------------

    def remember_hash(self, sha256: str, value: int) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO picture_hashes VALUES (?, ?)", (sha256, to_signed(value)))

    def picture_hash(self, sha256: str) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT hash FROM picture_hashes WHERE sha256 = ?", (sha256,)).fetchone()
        return from_signed(row[0]) if row else None

    def corrections(self) -> list[tuple[int, str, tuple[int, ...], str, float]]:
        """(id, kind, the picture's hashes, label, added_at) of every allow/block correction, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT id, kind, hashes, label, added_at FROM corrections ORDER BY id").fetchall()
        found = []
        for i, k, hashes, label, at in rows:
            try:  # a row garbled by hand is passed over, not fatal: the audit log puts blocks back at start
                found.append((int(i), str(k), tuple(int(h, 16) for h in str(hashes).split()), str(label), float(at or 0)))
            except (TypeError, ValueError):
                continue
        return found

    def put_correction(self, number: int, kind: str, hashes: tuple[int, ...], label: str, added_at: float) -> None:
        """Store one correction under its number (a new one, or one put back from the audit log)."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO corrections VALUES (?, ?, ?, ?, ?)",
                             (number, kind, " ".join(f"{h:016x}" for h in hashes), label, added_at))
            self._bump_corrections()

    def drop_correction(self, number: int) -> bool:
        with self._lock:
            gone = self._db.execute("DELETE FROM corrections WHERE id = ?", (number,)).rowcount > 0
            self._bump_corrections()
            return gone

    def corrections_version(self) -> str:
        """Changes with every correction added or removed, by any process on this data dir."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'corrections_version'").fetchone()
        return row[0] if row else ""

    def _bump_corrections(self) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('corrections_version', ?)", (repr(time.time_ns()),))

    # -- meta -----------------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, **values: str) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            for key, value in values.items():
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
            self._db.execute("COMMIT")


def _file_row(row: tuple) -> FileRow:
    # columns in table order; ctime_ns and dev come last (added later) and are NULL in rows from before
    identity = Identity(row[1], row[2], row[3], row[11] if row[11] is not None else -1, row[12] if row[12] is not None else -1)
    return FileRow(Path(os.fsdecode(row[0])), identity, row[4], row[5], row[6], row[7], row[8], row[9], row[10])
