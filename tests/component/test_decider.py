"""FileDecider in-process: decision → action → audit row → done, exactly once, also when the
sequence is cut at each of its fault points and a fresh decider (a restart) recovers."""

import shutil
from pathlib import Path

import pytest

import agent.decider
from agent.actions.files import FileActions
from agent.audit import AuditLog, verify
from agent.decider import FileDecider
from agent.outcome import Outcome
from agent.policy import BUILTIN_PROFILES
from agent.state import StateDB
from agent.vault import Vault
from tests.agent_process import audit_of, vault_entries
from tests.conftest import CANARIES, PHOTOS

CHILD = BUILTIN_PROFILES["child"]


class Cut(BaseException):
    """Where the subprocess tests SIGKILL the agent, this stops the sequence in-process. A
    BaseException, as a kill is: nothing in the agent may catch and carry on after it."""


def _decider(data: Path, classifier, outcomes: list[Outcome]) -> FileDecider:
    audit = AuditLog(data / "audit" / "audit.csv")
    state = StateDB(data / "state.sqlite3")
    actions = FileActions(audit, Vault(data / "quarantine"), classifier.model.name, "folder", on_standin=state.add_standin)
    return FileDecider(classifier, state, actions, lambda: CHILD, ignored=(data,), on_outcome=outcomes.append)


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "Downloads"
    folder.mkdir()
    canary = folder / "c.png"
    shutil.copy(CANARIES / "porn-a.png", canary)
    photo = folder / "p.jpg"
    shutil.copy(sorted(PHOTOS.glob("*.jpg"))[0], photo)
    return tmp_path / "data", canary, photo


def test_each_file_is_decided_acted_on_and_audited_once(files, classifier):
    data, canary, photo = files
    outcomes: list[Outcome] = []
    decider = _decider(data, classifier, outcomes)
    for _ in range(2):  # the second time, both are known and unchanged: nothing happens
        decider.handle(canary)
        decider.handle(photo)
    assert [(o.subject, o.decision, o.action) for o in outcomes] == [(str(canary), "malign", "quarantine"),
                                                                     (str(photo), "benign", "none")]
    assert not canary.exists() and photo.exists()
    rows = [r for r in audit_of(data) if r["source"] == "folder"]
    assert [(r["subject"], r["action"]) for r in rows] == [(str(canary), "quarantine")]  # benign rows only with log_benign
    assert len(vault_entries(data)) == 1 and verify(data / "audit" / "audit.csv").ok
    decider.state.close()


@pytest.mark.parametrize(("point", "note"), [("folder:decided", "quarantine interrupted; deciding it again"),
                                             ("folder:acted", "audit row written after an interrupted run"),
                                             ("folder:audited", None)])
def test_a_sequence_cut_anywhere_is_finished_once_by_the_next_decider(files, classifier, monkeypatch, point, note):
    data, canary, _ = files

    def cut_at(where: str) -> None:
        if where == point:
            raise Cut(where)

    monkeypatch.setattr(agent.decider, "kill_point", cut_at)
    first = _decider(data, classifier, [])
    with pytest.raises(Cut):
        first.handle(canary)
    first.state.close()
    monkeypatch.undo()

    outcomes: list[Outcome] = []
    second = _decider(data, classifier, outcomes)
    again: list[Path] = []
    notes = second.recover(resubmit=again.append)
    assert notes == ([f"{canary}: {note}"] if note else [])
    for path in again:  # a move that never happened is decided again
        second.handle(path)
    second.handle(canary)  # and a finished one is not
    assert not canary.exists() and len(vault_entries(data)) == 1
    rows = [r for r in audit_of(data) if r["source"] == "folder"]
    assert [(r["subject"], r["decision"], r["action"]) for r in rows] == [(str(canary), "malign", "quarantine")]
    assert verify(data / "audit" / "audit.csv").ok
    assert second.state.pending() == []
    second.state.close()


def _collage_with(tmp_path: Path, canary: str, name: str) -> bytes:
    from tests import media

    cells = [media.photo(n) for n in media.BENIGN[:3]]
    cells.insert(2, media.canary(canary))
    out = tmp_path / name
    media.collage(cells).save(out, format="PNG")
    return out.read_bytes()


def test_a_cached_picture_is_judged_again_for_what_the_cache_cannot_answer(tmp_path, classifier):
    """The content cache keeps the whole picture's scores and every region's: the same bytes
    under another profile, or with regions turned on after they were off, are judged as fresh
    bytes would be — never waved through on an answer given to another question."""
    from agent.decode import DecodeLimits

    folder = tmp_path / "Downloads"
    folder.mkdir()
    content = _collage_with(tmp_path, "sexy-b", "collage.png")  # sexy is malign for child, not for teen
    data = tmp_path / "data"
    audit = AuditLog(data / "audit" / "audit.csv")
    state = StateDB(data / "state.sqlite3")
    actions = FileActions(audit, Vault(data / "quarantine"), classifier.model.name, "folder", on_standin=state.add_standin)
    active = {"profile": BUILTIN_PROFILES["teen"]}
    outcomes: list[Outcome] = []

    def decider(regions: bool) -> FileDecider:
        return FileDecider(classifier, state, actions, lambda: active["profile"], ignored=(data,), on_outcome=outcomes.append,
                           limits=DecodeLimits(regions=regions))

    try:
        (folder / "a.png").write_bytes(content)
        decider(True).handle(folder / "a.png")
        active["profile"] = CHILD
        (folder / "b.png").write_bytes(content)  # the same bytes: known content
        decider(True).handle(folder / "b.png")
        assert [(Path(o.subject).name, o.decision) for o in outcomes] == [("a.png", "benign"), ("b.png", "malign")]
        assert not (folder / "b.png").exists()  # quarantined, as fresh bytes would be

        other = _collage_with(tmp_path, "porn-b", "other.png")
        (folder / "c.png").write_bytes(other)
        decider(False).handle(folder / "c.png")  # regions off: the whole picture passes
        (folder / "d.png").write_bytes(other)
        decider(True).handle(folder / "d.png")  # on again: the cached answer does not cover the regions
        (folder / "e.png").write_bytes(other)
        decider(False).handle(folder / "e.png")  # off again: the cached regions are not used either
        assert [(Path(o.subject).name, o.decision) for o in outcomes[2:]] == [("c.png", "benign"), ("d.png", "malign"), ("e.png", "benign")]
    finally:
        state.close()


def test_blur_covers_every_flagged_cell_and_the_stand_in_passes(tmp_path, classifier):
    """Two flagged pictures in one collage: the blurred stand-in must not leave the second one."""
    import numpy as np
    from PIL import Image

    from agent.actions.blur import blurred
    from agent.scan import scan
    from tests import media

    cells = [media.canary("porn-a"), media.photo(media.BENIGN[0]), media.photo(media.BENIGN[1]), media.canary("porn-b")]
    path = tmp_path / "two.png"
    media.collage(cells).save(path)
    result = next(scan([path], classifier, CHILD, threads=1))
    assert result.prediction == "malign" and result.region is not None
    stand_in = tmp_path / "stand-in.png"
    stand_in.write_bytes(blurred(path.read_bytes(), region=result.region))
    before, after = (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in (path, stand_in))
    assert np.abs(after[100:500, 100:500] - before[100:500, 100:500]).mean() > 10  # top left cell
    assert np.abs(after[700:1100, 700:1100] - before[700:1100, 700:1100]).mean() > 10  # bottom right cell
    assert next(scan([stand_in], classifier, CHILD, threads=1)).prediction == "benign"
