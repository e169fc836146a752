"""The corrections' own rules, on a real state database: matching by any view, a block winning
over an allow, numbers never reused, and the audit log as the record that puts the database right."""

from agent.corrections import Correction, Corrections, audit_detail_added, audit_detail_removed, highest_number, reconcile, replay
from agent.state import StateDB


def _row(detail: str) -> dict[str, str]:
    return {"source": "agent", "subject": "config", "detail": detail}


def test_a_copy_matches_any_view_and_a_block_wins(tmp_path):
    state = StateDB(tmp_path / "state.sqlite3")
    corrections = Corrections(state)
    allowed = corrections.add("allow", (0x0F0F0F0F0F0F0F0F, 0xFFFF000000000000), "a.jpg")
    assert corrections.match(0x0F0F0F0F0F0F0F0F ^ 0b111).correction == allowed  # 3 bits from the picture
    assert corrections.match(0xFFFF000000000000 ^ 0b1).distance == 1  # 1 bit from its second view (the mirror image)
    assert corrections.match(0xAAAAAAAAAAAAAAAA) is None  # another picture
    blocked = corrections.add("block", (0x0F0F0F0F0F0F0F0F ^ 0b11111,), "b.jpg")
    assert corrections.match(0x0F0F0F0F0F0F0F0F).correction == blocked  # nearer allow, but a block wins
    state.close()


def test_numbers_are_never_reused_and_another_process_is_seen(tmp_path):
    state = StateDB(tmp_path / "state.sqlite3")
    mine = Corrections(state)
    first = mine.add("block", (1,), "a.jpg", after=5)  # the log has seen #5 already
    assert first.number == 6
    other = Corrections(StateDB(tmp_path / "state.sqlite3"))  # as `veil block` in another process
    other.add("allow", (2,), "b.jpg")
    assert [c.number for c in mine.all()] == [6, 7]  # seen at the next look
    mine.remove(6)
    assert [c.number for c in mine.all()] == [7]
    state.close()


def test_the_audit_log_puts_the_database_right(tmp_path):
    state = StateDB(tmp_path / "state.sqlite3")
    corrections = Corrections(state)
    kept = corrections.add("block", (0x1234, 0x5678), "kept.jpg")
    gone = corrections.add("allow", (0x9999,), "gone.jpg")
    rows = [_row(audit_detail_added(kept)), _row(audit_detail_added(gone)), _row(audit_detail_removed(gone)),
            {"source": "folder", "subject": "/x", "detail": "blocked by picture #9 (phash 00000000000000ff): not the agent's row"}]
    assert set(replay(rows)) == {kept.number} and highest_number(rows) == gone.number
    state.drop_correction(kept.number)  # lost from the database
    state.put_correction(42, "allow", (0xABC,), "smuggled.jpg", 0)  # never audited
    notes = reconcile(state, rows)
    assert len(notes) == 3 and any("#1 (block: kept.jpg) was missing" in n for n in notes)  # gone and smuggled: dropped
    assert [(c.number, c.kind, c.hashes) for c in Corrections(state).all()] == [(1, "block", (0x1234, 0x5678))]
    assert reconcile(state, rows) == []  # in step now
    state.close()


def test_an_allow_only_the_database_knows_is_not_used_by_a_running_agent(tmp_path):
    from agent.audit import AuditLog, AuditRecord

    state = StateDB(tmp_path / "state.sqlite3")
    log = AuditLog(tmp_path / "audit.csv")
    running = Corrections(state, tmp_path / "audit.csv", check_every_s=0)
    honest = Correction(1, "allow", (0xF0F0,), "ok.jpg", 0.0)
    log.append(AuditRecord("agent", "config", detail=audit_detail_added(honest)))
    running.put(honest)
    state.put_correction(2, "allow", (0xFFFF0000,), "sneaky.jpg", 0.0)  # written by hand while the agent runs
    assert running.match(0xF0F0) is not None and running.match(0xFFFF0000) is None
    state.close()
