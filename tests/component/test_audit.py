"""The hash-chained audit log: writing, rotation, and every kind of tampering detected."""

import csv
import io
import json
from pathlib import Path

import pytest

from agent.audit import COLUMNS, GENESIS, AuditLog, AuditRecord, chain_hash, log_files, tail, verify


def _fill(path: Path, rows: int = 6, rotate_bytes: int = 10**7) -> AuditLog:
    log = AuditLog(path, rotate_bytes)
    log.append(AuditRecord("agent", "start", detail="veil 0.1.0"))
    for i in range(rows - 1):
        log.append(AuditRecord("scan", f"/photos/img,{i}.jpg", "malign" if i % 2 else "benign", "log", sha256="ab" * 32,
                               profile="child", model="nsfw-mobilenet-v2-int8", malign=f"0.{i}", threshold="0.30",
                               latency_ms="2.1", detail='a "quoted", detail'))
    return log


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def test_rows_chain_from_genesis_and_verify(tmp_path):
    path = tmp_path / "audit.csv"
    _fill(path)
    rows = list(csv.DictReader(path.open(newline="")))
    assert list(rows[0]) == list(COLUMNS) and len(rows) == 6
    assert rows[0]["prev_hash"] == GENESIS
    for before, row in zip(rows, rows[1:]):
        assert row["prev_hash"] == before["hash"]
        assert row["hash"] == chain_hash(row["prev_hash"], [row[c] for c in COLUMNS[:-2]])
    assert rows[0]["time"].endswith("Z") and "T" in rows[0]["time"]
    assert verify(path).ok and verify(path).rows == 6


def test_reopening_continues_the_chain(tmp_path):
    path = tmp_path / "audit.csv"
    _fill(path, 3)
    AuditLog(path).append(AuditRecord("agent", "stop"))
    result = verify(path)
    assert result.ok and result.rows == 4


def test_rotation_carries_the_chain(tmp_path):
    path = tmp_path / "audit.csv"
    _fill(path, 40, rotate_bytes=2000)
    files = log_files(path)
    assert len(files) > 2
    firsts = [next(csv.DictReader(f.open(newline=""))) for f in files]
    lasts = [list(csv.DictReader(f.open(newline="")))[-1] for f in files]
    assert firsts[0]["prev_hash"] == GENESIS
    for previous_last, first in zip(lasts, firsts[1:]):
        assert first["prev_hash"] == previous_last["hash"]
    assert verify(path) == verify(path) and verify(path).ok and verify(path).rows == 40
    assert [r["subject"] for r in tail(path, 3)] == ["/photos/img,36.jpg", "/photos/img,37.jpg", "/photos/img,38.jpg"]


@pytest.mark.parametrize("tamper,expect", [
    ("edit", "row 3: hash does not match its content"),
    ("delete", "row 3: prev_hash does not match"),
    ("insert", "row 3: prev_hash does not match"),
    ("reorder", "row 2: prev_hash does not match"),
    ("truncate", "tail cut off or replaced"),
])
def test_tampering_is_detected_and_named(tmp_path, tamper, expect):
    path = tmp_path / "audit.csv"
    _fill(path)
    lines = _lines(path)  # header + 6 rows
    if tamper == "edit":
        lines[3] = lines[3].replace("malign", "benign", 1) if "malign" in lines[3] else lines[3].replace("benign", "malign", 1)
    elif tamper == "delete":
        del lines[3]
    elif tamper == "insert":
        lines.insert(3, lines[5])
    elif tamper == "reorder":
        lines[2], lines[3] = lines[3], lines[2]
    elif tamper == "truncate":
        lines = lines[:-2]
    path.write_text("".join(lines))
    result = verify(path)
    assert not result.ok
    assert expect in result.problem and str(path) in result.problem


def test_a_forged_chain_still_fails_against_the_head(tmp_path):
    """Someone who rewrites the whole file with a fresh valid chain is caught by the head."""
    path = tmp_path / "audit.csv"
    _fill(path)
    forged = io.StringIO()
    writer = csv.writer(forged, lineterminator="\n")
    writer.writerow(COLUMNS)
    prev = GENESIS
    for row in list(csv.DictReader(path.open(newline="")))[:3]:
        values = [row[c] for c in COLUMNS[:-2]]
        writer.writerow([*values, prev, chain_hash(prev, values)])
        prev = chain_hash(prev, values)
    path.write_text(forged.getvalue())
    assert not verify(path).ok


def test_torn_last_line_from_a_crash_is_dropped_on_reopen(tmp_path):
    path = tmp_path / "audit.csv"
    _fill(path, 3)
    with open(path, "a") as handle:
        handle.write("2026-11-21T00:00:00.000Z,scan,/half")
    AuditLog(path).append(AuditRecord("agent", "start"))
    assert verify(path).ok and verify(path).rows == 4


def test_head_records_rows_and_hash(tmp_path):
    path = tmp_path / "audit.csv"
    log = _fill(path, 4)
    head = json.loads(path.with_name("audit.csv.head").read_text())
    assert head == {"file": "audit.csv", "rows": 4, "hash": log._last_hash}


def test_records_are_validated():
    with pytest.raises(ValueError):
        AuditRecord("printer", "x")
    with pytest.raises(ValueError):
        AuditRecord("scan", "x", decision="maybe")


_WRITER = """
import sys, time
from pathlib import Path
from agent.audit import AuditLog, AuditRecord
path, name, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
log = AuditLog(path, rotate_bytes=4000)
while not go.exists():
    time.sleep(0.001)
for i in range(60):
    log.append(AuditRecord("scan", f"/{name}/{i}.jpg", "benign", "none", detail="x" * (i % 7)))
"""


def test_processes_writing_one_log_keep_one_chain(tmp_path):
    """The agent and a `veil scan` or `veil quarantine restore` beside it append to the same log:
    four processes racing (with rotation between them) must still leave one unbroken chain."""
    import subprocess
    import sys

    path, go = tmp_path / "audit.csv", tmp_path / "go"
    repo = Path(__file__).resolve().parents[2]
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), f"w{n}", str(go)], cwd=repo) for n in range(4)]
    go.touch()
    assert [w.wait(60) for w in writers] == [0, 0, 0, 0]
    result = verify(path)
    assert result.ok, result.problem
    assert result.rows == 240 and len(log_files(path)) > 2
    subjects = [r["subject"] for f in log_files(path) for r in csv.DictReader(f.open(newline=""))]
    assert sorted(subjects) == sorted(f"/w{n}/{i}.jpg" for n in range(4) for i in range(60))
    for n in range(4):  # each writer's own rows stay in its order
        mine = [s for s in subjects if s.startswith(f"/w{n}/")]
        assert mine == [f"/w{n}/{i}.jpg" for i in range(60)]


def test_a_chain_head_that_cannot_be_written_is_dropped_not_left_stale(tmp_path, monkeypatch):
    """A full disk can refuse the small head file after the row itself was written: a stale head
    would make verify report a cut-off tail that never happened. Without a head, verify says the
    head is missing (it cannot see a cut tail then) until the next row writes it again."""
    import errno

    import agent.audit as audit_module

    path = tmp_path / "audit.csv"
    log = _fill(path, 3)
    real_dump = audit_module.json.dump

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audit_module.json, "dump", full_disk)
    log.append(AuditRecord("agent", "stop"))  # the row is written; its head cannot be
    assert not path.with_name("audit.csv.head").exists() and not list(tmp_path.glob("*.tmp"))
    result = verify(path)
    assert not result.ok and result.rows == 4 and "chain head is missing" in result.problem and "disk was full" in result.problem
    monkeypatch.setattr(audit_module.json, "dump", real_dump)
    log.append(AuditRecord("agent", "start"))  # room again: the head is back
    assert json.loads(path.with_name("audit.csv.head").read_text())["rows"] == 5 and verify(path).ok
