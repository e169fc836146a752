"""The tamper-evident audit log: an append-only, hash-chained CSV (INTERFACES.md "Audit log").

Each row's ``hash = sha256(prev_hash + "," + the other columns as written)``; the first row of
the first file chains from 64 zeros, and rotation carries the chain into the next file. The
chain head (file, row count, last hash) is also kept beside the log, so a cut-off tail — which
leaves a valid chain — is detected too. Every row is flushed and fsynced.

Several processes may write one log (the agent, and a ``veil scan`` or ``veil quarantine
restore`` beside it): each append holds ``audit.csv.lock`` and first catches up with rows another
process wrote since, so the chain stays one chain.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from agent.fsutil import fsync_dir
from agent.lock import exclusive

COLUMNS = ("time", "source", "subject", "sha256", "profile", "model", "malign", "threshold",
           "decision", "action", "detail", "latency_ms", "prev_hash", "hash")
GENESIS = "0" * 64
SOURCES = ("scan", "folder", "screen", "video", "agent")
DECISIONS = ("benign", "malign", "error", "")
ACTIONS = ("none", "log", "quarantine", "blur", "restore", "")


@dataclass(frozen=True)
class AuditRecord:
    """One row, minus the chain columns. Numbers are pre-formatted strings, as written."""

    source: str
    subject: str
    decision: str = ""
    action: str = ""
    detail: str = ""
    sha256: str = ""
    profile: str = ""
    model: str = ""
    malign: str = ""
    threshold: str = ""
    latency_ms: str = ""
    time: str = ""  # filled in when written (ISO 8601 UTC)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"audit source {self.source!r} is not one of {SOURCES}")
        if self.decision not in DECISIONS or self.action not in ACTIONS:
            raise ValueError(f"audit decision/action {self.decision!r}/{self.action!r} not allowed")

    def columns(self) -> list[str]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return [values[c] for c in COLUMNS[:-2]]


def _encode(values: list[str]) -> str:
    """The CSV text of ``values``, exactly as the log writes it (no line end)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


def chain_hash(prev_hash: str, columns: list[str]) -> str:
    return hashlib.sha256(f"{prev_hash},{_encode(columns)}".encode()).hexdigest()


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    """Appends records to ``path`` (and rotated siblings), keeping the chain and its head."""

    def __init__(self, path: Path, rotate_bytes: int = 10 * 1024 * 1024):
        self.path = path
        self.head_path = path.with_name(path.name + ".head")
        self.lock_path = path.with_name(path.name + ".lock")
        self.rotate_bytes = rotate_bytes
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._seen: tuple[int, int] | None = None  # (inode, size) of the log as this writer left it
        self._hash_before_last = GENESIS
        with exclusive(self.lock_path):  # never mistake another process's row in progress for a torn one
            self._catch_up()
            self.discrepancy = self._head_mismatch()

    def _head_mismatch(self) -> str:
        """What the chain head says was written and the disk no longer has (a cut tail, a deleted
        current file or head), in words; empty when they agree. Said as the next row, so what
        was done while no writer was looking is on record before anything else is."""
        head = read_head(self.head_path)
        if head is None:
            return f"the chain head {self.head_path.name} was missing while the log has {self._rows} rows" if self._rows else ""
        if head.get("file") != self.path.name:
            return ""
        if head.get("hash") == self._last_hash or (head.get("hash") == self._hash_before_last and head.get("rows") == self._rows - 1):
            return ""  # as recorded, or the head one row behind (a crash between a row and its head)
        if not self.path.exists():
            return f"the current log {self.path.name} was missing: the chain head recorded {head.get('rows')} rows in it"
        return (f"the log ends after {self._rows} rows but its chain head recorded {head.get('rows')} rows ending "
                f"{str(head.get('hash'))[:12]}…: rows were cut off or replaced")

    def _file_state(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_size

    def _catch_up(self) -> None:
        """Take up the chain where the log really ends, if another writer moved it on."""
        current = self._file_state()
        if self._seen is None or current != self._seen:
            self._last_hash, self._rows = self._recover()
            self._seen = self._file_state()

    def _recover(self) -> tuple[str, int]:
        """Continue the chain from the newest row on disk (the head may lag a crash by a row)."""
        self._drop_torn_line()
        for file in reversed(log_files(self.path)):
            last, before, rows = None, GENESIS, 0
            for row in _rows(file):
                last, before, rows = row["hash"], row["prev_hash"], rows + 1
            if last is not None:
                self._hash_before_last = before
                return last, rows if file == self.path else 0
        return GENESIS, 0

    def _drop_torn_line(self) -> None:
        """A crash mid-write can leave a last line without its end: it was never acknowledged,
        so it is cut off (everything before it was fsynced and stays)."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)
                os.fsync(handle.fileno())

    def append(self, record: AuditRecord) -> str:
        """Write one row durably; returns its hash."""
        with self._lock, exclusive(self.lock_path):
            self._catch_up()
            if self.path.exists() and self.path.stat().st_size >= self.rotate_bytes:
                self._rotate()
            columns = record.columns()
            if not columns[0]:
                columns[0] = utc_now()
            new_hash = chain_hash(self._last_hash, columns)
            new_file = not self.path.exists() or self.path.stat().st_size == 0
            with open(self.path, "a", encoding="utf-8", newline="") as handle:
                if new_file:
                    handle.write(_encode(list(COLUMNS)) + "\n")
                handle.write(_encode([*columns, self._last_hash, new_hash]) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            if new_file:
                fsync_dir(self.path.parent)
            self._last_hash, self._rows = new_hash, self._rows + 1
            self._write_head()
            self._seen = self._file_state()
            return new_hash

    def _rotate(self) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        rotated = self.path.with_name(f"{self.path.stem}-{stamp}{self.path.suffix}")
        os.replace(self.path, rotated)
        fsync_dir(self.path.parent)
        self._rows = 0  # the chain (self._last_hash) carries on into the new file

    def _write_head(self) -> None:
        """Record the chain's end beside the log. The row is already durable when this runs, so a
        head that cannot be written (a full disk) is removed rather than left stale: a stale head
        would make ``verify`` report a cut-off tail that never happened. The next row writes it
        again."""
        temp = self.head_path.with_name(self.head_path.name + ".tmp")
        try:
            with open(temp, "w", encoding="utf-8") as handle:
                json.dump({"file": self.path.name, "rows": self._rows, "hash": self._last_hash}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.head_path)
        except OSError:
            temp.unlink(missing_ok=True)
            self.head_path.unlink(missing_ok=True)


def read_head(head_path: Path) -> dict | None:
    try:
        return json.loads(head_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def log_files(path: Path) -> list[Path]:
    """The rotated files (oldest first), then the current one."""
    rotated = sorted(path.parent.glob(f"{path.stem}-*{path.suffix}"))
    return [*rotated, path] if path.exists() else rotated


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows: int
    problem: str = ""  # names the file and row of the first break


def verify(path: Path, whole_chain: bool = True, earlier_activity: str = "") -> VerifyResult:
    """Recompute the chain of ``path`` (and, with ``whole_chain``, of its rotated predecessors),
    holding the writers' lock so that a row and its chain head are seen together.

    Deletions count as breaks too: rows without their chain head, rotated files without the
    current one, and no log at all where ``earlier_activity`` (what the data dir shows Veil has
    done, in words) says there was one."""
    with contextlib.ExitStack() as holding:
        try:
            holding.enter_context(exclusive(path.with_name(path.name + ".lock")))
        except OSError:
            pass  # a read-only copy of a log: nobody writes it
        return _verify(path, whole_chain, earlier_activity)


def _verify(path: Path, whole_chain: bool, earlier_activity: str = "") -> VerifyResult:
    files = log_files(path) if whole_chain else [path]
    head_path = path.with_name(path.name + ".head")
    if not files:
        if earlier_activity or head_path.exists():
            why = earlier_activity or f"its chain head {head_path.name} is there"
            return VerifyResult(False, 0, f"{path}: no audit log, but {why}: deleted")
        return VerifyResult(False, 0, f"{path}: no audit log")
    rotated_only = whole_chain and path not in files
    expected_prev = GENESIS if whole_chain else None
    before_last = None
    total = 0
    for file in files:
        try:
            with open(file, encoding="utf-8", newline="") as handle:
                reader = csv.reader(handle)
                header = next(reader, None)
                if header != list(COLUMNS):
                    return VerifyResult(False, total, f"{file}: header is not the audit columns")
                for number, values in enumerate(reader, start=1):
                    where = f"{file}: row {number}"
                    if len(values) != len(COLUMNS):
                        return VerifyResult(False, total, f"{where}: {len(values)} columns, expected {len(COLUMNS)}")
                    prev, stated = values[-2], values[-1]
                    if expected_prev is not None and prev != expected_prev:
                        return VerifyResult(False, total, f"{where}: prev_hash does not match the row before (row deleted, inserted or moved)")
                    if chain_hash(prev, values[:-2]) != stated:
                        return VerifyResult(False, total, f"{where}: hash does not match its content (row edited)")
                    before_last, expected_prev, total = expected_prev, stated, total + 1
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            return VerifyResult(False, total, f"{file}: unreadable ({err})")
    head = read_head(head_path)
    if rotated_only and not (head is not None and head.get("hash") == expected_prev):
        # (a crash between a rotation and the first row of the new file leaves the head at the
        # rotated file's last row: that is not a deletion)
        return VerifyResult(False, total, f"{path}: rotated logs exist ({files[-1].name}, …) but the current log is missing: deleted")
    if head is None and total:
        return VerifyResult(False, total, f"{head_path}: the chain head is missing or unreadable while the log has {total} rows "
                                          "(deleted, or the disk was full at the last row): a cut-off tail could not be seen")
    if head is not None and head.get("file") not in (path.name, None) and not rotated_only:
        return VerifyResult(False, total, f"{head_path}: the chain head names {head.get('file')!r}, not {path.name} (edited)")
    if head is not None and head.get("file") == path.name and path in files:
        # the head one row behind the log is a crash between a row and its head, not a cut
        if head.get("hash") != expected_prev and head.get("hash") != before_last:
            return VerifyResult(False, total, f"{path}: the log ends at hash {str(expected_prev)[:12]}… but its chain head records "
                                              f"{head.get('rows')} rows ending {str(head.get('hash'))[:12]}… (tail cut off or replaced)")
    return VerifyResult(True, total)


def tail(path: Path, count: int = 20) -> list[dict[str, str]]:
    """The last ``count`` rows (across rotation), oldest first."""
    rows: list[dict[str, str]] = []
    for file in reversed(log_files(path)):
        rows = list(_rows(file)) + rows
        if len(rows) >= count:
            break
    return rows[-count:] if count > 0 else []


def readable(row: dict[str, str]) -> str:
    """One audit row as a line for people (``veil audit tail``, the tray's audit window)."""
    what = " ".join(v for v in (row["decision"], row["action"]) if v)
    score = f" malign {row['malign']} ≥ {row['threshold']} ({row['profile']})" if row["malign"] and row["decision"] == "malign" else ""
    detail = f" — {row['detail']}" if row["detail"] else ""
    return f"{row['time']}  {row['source']:<6} {what:<16} {row['subject']}{score}{detail}"
