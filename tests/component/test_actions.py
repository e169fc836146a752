"""Actions under faults: a full disk, a file deleted between decision and action, blur end to end."""

import csv
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from agent.actions.files import FileActions
from agent.audit import AuditLog, verify
from agent.policy import BUILTIN_PROFILES
from agent.scan import scan
from agent.vault import Vault
from tests.conftest import CANARIES

REPO = Path(__file__).resolve().parents[2]
CHILD = BUILTIN_PROFILES["child"]


def _flagged(tmp_path: Path, classifier, name: str = "porn-a"):
    path = tmp_path / "in" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(CANARIES / f"{name}.png", path)
    [result] = list(scan([path], classifier, CHILD, threads=1))
    assert result.flagged
    return path, result


def test_file_deleted_between_decision_and_action(tmp_path, classifier):
    path, result = _flagged(tmp_path, classifier)
    audit = AuditLog(tmp_path / "audit.csv")
    warnings: list[str] = []
    actions = FileActions(audit, Vault(tmp_path / "vault"), "m", "scan", warn=warnings.append)
    path.unlink()
    outcome = actions.apply(result, CHILD, "quarantine")
    [warning] = warnings
    assert "vanished" in warning and "\n" not in warning and "not quarantined" in warning
    assert (outcome.decision, outcome.action) == ("error", "none")
    [row] = list(csv.DictReader((tmp_path / "audit.csv").open(newline="")))
    assert (row["decision"], row["action"]) == ("error", "none") and "quarantine failed" in row["detail"]
    assert verify(tmp_path / "audit.csv").ok


def test_blur_action_leaves_a_stand_in_and_audits(tmp_path, classifier):
    path, result = _flagged(tmp_path, classifier, "hentai-b")
    original = path.read_bytes()
    audit = AuditLog(tmp_path / "audit.csv")
    vault = Vault(tmp_path / "vault")
    standins: list[str] = []
    outcome = FileActions(audit, vault, "m", "scan", on_standin=standins.append).apply(result, CHILD, "blur")
    assert (outcome.decision, outcome.action) == ("malign", "blur")
    assert path.exists() and path.read_bytes() != original
    # the stand-in was registered as Veil's own output, by the hash of what is now at the path
    assert standins == [hashlib.sha256(path.read_bytes()).hexdigest()]
    [after] = list(scan([path], classifier, CHILD, threads=1))
    assert after.prediction == "benign"
    [row] = list(csv.DictReader((tmp_path / "audit.csv").open(newline="")))
    assert row["action"] == "blur" and row["decision"] == "malign"
    [entry] = vault.entries(vault.keyring.unlock(None))
    vault.restore(entry.id, vault.keyring.unlock(None))
    assert path.read_bytes() == original


def test_rows_say_what_was_done_whoever_writes_them(tmp_path, classifier):
    """The scan CLI and the agent act through one layer: a flagged file left in place is
    ``log``, a benign or unreadable one ``none``; benign rows only with log_benign."""
    flagged_path, flagged = _flagged(tmp_path, classifier)
    benign_path = tmp_path / "in" / "photo.jpg"
    shutil.copy(sorted((REPO / "tests" / "fixtures" / "photos").glob("*.jpg"))[0], benign_path)
    broken_path = tmp_path / "in" / "broken.jpg"
    broken_path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    results = {r.path.name: r for r in scan([benign_path, broken_path], classifier, CHILD, threads=1)}
    assert results["photo.jpg"].prediction == "benign" and results["broken.jpg"].prediction == "error"
    for log_benign in (False, True):
        audit_file = tmp_path / f"audit-{log_benign}.csv"
        actions = FileActions(AuditLog(audit_file), None, "m", "scan", log_benign=log_benign)
        outcomes = [actions.apply(r, CHILD, "log") for r in (flagged, results["photo.jpg"], results["broken.jpg"])]
        assert [(o.decision, o.action) for o in outcomes] == [("malign", "log"), ("benign", "none"), ("error", "none")]
        rows = {Path(r["subject"]).name: (r["decision"], r["action"]) for r in csv.DictReader(audit_file.open(newline=""))}
        expected = {flagged_path.name: ("malign", "log"), "broken.jpg": ("error", "none")}
        if log_benign:
            expected["photo.jpg"] = ("benign", "none")
        assert rows == expected


_FULL_DISK = """
import resource, signal, sys
from pathlib import Path
from agent.vault import Vault, VaultError
vault = Vault(Path(sys.argv[1]))
vault.keyring.ensure()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
try:
    vault.quarantine(Path(sys.argv[2]))
except VaultError as err:
    print(err)
    sys.exit(7)
"""


def test_full_disk_leaves_the_file_in_place(tmp_path):
    path = tmp_path / "big.jpg"
    data = os.urandom(200_000)
    path.write_bytes(data)
    done = subprocess.run([sys.executable, "-c", _FULL_DISK, str(tmp_path / "vault"), str(path)], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 7, done.stderr
    assert "could not write the vault entry" in done.stdout and "file left in place" in done.stdout
    assert path.read_bytes() == data
    leftovers = [p.name for p in (tmp_path / "vault").iterdir() if p.name not in ("keys.json", "vault.lock")]
    assert leftovers == []
