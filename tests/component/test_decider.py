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
