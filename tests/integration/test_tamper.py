"""What a determined child does to Veil itself (issue 16), each done for real against the
command line or a running agent: delete or swap the vault's key file, delete the chain head or
the current log, squat the agent's lock, freeze the agent, edit the config while it is stopped,
and look for the flagged picture in a stand-in's EXIF or the desktop's thumbnail cache. Veil
cannot prevent all of it under the child's own account; each one must leave a trace."""

import fcntl
import hashlib
import io
import json
import os
import shutil
import signal
import stat
import time
from pathlib import Path

from PIL import Image

from agent.actions.thumbnails import SIZES, thumbnail_names
from tests import media
from tests.agent_process import Agent, audit_of, folder_rows, run_veil, vault_entries, wait_until
from tests.conftest import CANARIES

CANARY = CANARIES / "porn-a.png"
PIN = "246824"


def _agent_rows(data: Path, event: str) -> list[dict[str, str]]:
    return [r for r in audit_of(data) if r["source"] == "agent" and r["subject"] == event]


def _quarantined_once(watched) -> tuple[Path, Path, Path]:
    """A vault with one sealed entry (a canary quarantined by ``veil run --once``)."""
    folder, data, config = watched
    shutil.copy(CANARY, folder / "first.png")
    assert run_veil("run", "--once", "--config", str(config)).returncode == 1
    assert len(vault_entries(data)) == 1
    return folder, data, config


# -- the vault's keys ----------------------------------------------------------------------


def test_a_deleted_key_file_is_never_silently_replaced(watched):
    folder, data, config = _quarantined_once(watched)
    keys = data / "quarantine" / "keys.json"
    keys.unlink()
    listed = run_veil("quarantine", "list", "--config", str(config))
    assert listed.returncode == 2 and "1 sealed entry cannot be opened" in listed.stderr, listed.stderr
    assert "quarantine is empty" not in listed.stdout + listed.stderr
    shutil.copy(CANARY, folder / "second.png")
    done = run_veil("run", "--once", "--config", str(config))
    assert done.returncode == 3, done.stderr  # the flagged file could not be moved: said, not hidden
    assert (folder / "second.png").exists() and not keys.exists()  # no new key pair made behind the parent's back
    errors = [r["detail"] for r in _agent_rows(data, "error")]
    assert any("vault keys:" in e and "missing" in e for e in errors), errors
    assert any("quarantine failed" in r["detail"] for r in folder_rows(data, folder / "second.png"))
    # every PIN-gated control stays locked, though no PIN "is set" any more
    restore = run_veil("quarantine", "restore", "0" * 32, "--config", str(config))
    assert restore.returncode == 2 and "locked" in restore.stderr
    assert _agent_rows(data, "pin-failed")


def test_a_swapped_public_key_is_refused(watched):
    folder, data, config = _quarantined_once(watched)
    keys = data / "quarantine" / "keys.json"
    document = json.loads(keys.read_text())
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from agent.sealing import b64

    attacker = X25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    document["public"] = b64(attacker)  # new entries would be readable with the attacker's private key
    keys.write_text(json.dumps(document))
    shutil.copy(CANARY, folder / "second.png")
    done = run_veil("run", "--once", "--config", str(config))
    assert done.returncode == 3, done.stderr
    assert (folder / "second.png").exists() and len(vault_entries(data)) == 1  # nothing sealed to the attacker's key
    assert any("not the key on record" in r["detail"] for r in _agent_rows(data, "error"))
    listed = run_veil("quarantine", "list", "--config", str(config))
    assert listed.returncode == 2 and "replaced" in listed.stderr


def test_pin_reset_is_the_audited_way_out(watched):
    folder, data, config = _quarantined_once(watched)
    (data / "quarantine" / "keys.json").unlink()
    refused = run_veil("pin", "reset", "--config", str(config))  # no terminal, no --yes
    assert refused.returncode == 2
    done = run_veil("pin", "reset", "--yes", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert not vault_entries(data) and len(list((data / "quarantine" / "old-keys").glob("*/*.veil"))) == 1
    [row] = [r for r in _agent_rows(data, "config") if "vault keys reset" in r["detail"]]
    assert "1 entry sealed under the old key kept" in row["detail"]
    shutil.copy(CANARY, folder / "after.png")
    assert run_veil("run", "--once", "--config", str(config)).returncode == 1  # quarantining works again
    listed = run_veil("quarantine", "list", "--format", "jsonl", "--config", str(config))
    assert listed.returncode == 0 and "after.png" in listed.stdout


def test_a_start_row_names_config_policy_model_and_key(watched):
    _folder, data, config = _quarantined_once(watched)
    run_veil("run", "--once", "--config", str(config))
    detail = _agent_rows(data, "start")[-1]["detail"]
    config_sha = hashlib.sha256(config.read_bytes()).hexdigest()
    fingerprint = json.loads((data / "quarantine" / "keys.json").read_text())["fingerprint"]
    for part in (f"config {config} sha256 {config_sha}", "threshold 0.", "folder quarantine", "sha256 66bc8e26",
                 f"vault key {fingerprint}", "watching "):
        assert part in detail, (part, detail)

    # a child who turns the region tiles off in the config: said in the next start row
    config.write_text(config.read_text() + "\n[model]\nregions = false\n")
    run_veil("run", "--once", "--config", str(config))
    assert "regions OFF" in _agent_rows(data, "start")[-1]["detail"] and "regions on" in detail


# -- the PIN ---------------------------------------------------------------------------------


def test_a_short_pin_is_refused_and_the_lockout_survives_file_deletion(watched):
    _folder, data, config = _quarantined_once(watched)
    short = run_veil("pin", "set", "--config", str(config), env={"VEIL_PIN": "1234"})
    assert short.returncode == 2 and "at least 6" in short.stderr
    assert run_veil("pin", "set", "--config", str(config), env={"VEIL_PIN": PIN}).returncode == 0
    for _ in range(5):
        wrong = run_veil("quarantine", "list", "--config", str(config), env={"VEIL_PIN": "000000"})
        assert wrong.returncode == 2
    for name in ("pin-attempts.json", "pin-attempts.lock"):
        (data / "quarantine" / name).unlink(missing_ok=True)  # what a child tries first
    still = run_veil("quarantine", "list", "--config", str(config), env={"VEIL_PIN": PIN})
    assert still.returncode == 2 and "too many wrong PINs" in still.stderr


def test_a_version_1_vault_with_a_short_pin_still_opens_and_is_rewrapped(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    from agent.sealing import b64
    from agent.vault import Keyring

    folder = tmp_path / "vault"
    folder.mkdir()
    private = X25519PrivateKey.generate()
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    salt, nonce = os.urandom(16), os.urandom(12)
    key = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(b"2468")
    (folder / "keys.json").write_text(json.dumps({  # the first wave's format, as it is on disk today
        "version": 1, "public": b64(public), "pin_set": True,
        "wrap": {"kdf": "scrypt", "n": 2**15, "r": 8, "p": 1, "salt": b64(salt), "nonce": b64(nonce),
                 "key": b64(AESGCM(key).encrypt(nonce, raw, b"veil-vault-key"))}}))
    keyring = Keyring(folder)
    assert keyring.pin_too_short
    assert keyring.unlock("2468").public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == public
    document = json.loads((folder / "keys.json").read_text())
    assert document["version"] == 2 and document["wrap"]["kdf"] == "argon2id"
    assert keyring.pin_too_short  # still asked for a longer one until it is set
    keyring.unlock("2468")


# -- the audit chain -------------------------------------------------------------------------


def test_deleting_the_head_the_current_log_or_everything_is_seen(watched):
    _folder, data, config = _quarantined_once(watched)
    audit = data / "audit" / "audit.csv"
    verify = ("audit", "verify", "--config", str(config))
    assert run_veil(*verify).returncode == 0
    # a cut tail with the head deleted
    lines = audit.read_text().splitlines(keepends=True)
    audit.write_text("".join(lines[:-1]))
    (data / "audit" / "audit.csv.head").unlink()
    cut = run_veil(*verify)
    assert cut.returncode == 1 and "chain head is missing" in cut.stderr, cut.stderr
    # the current log deleted beside a rotated one
    audit.write_text("".join(lines))
    shutil.copy(audit, data / "audit" / "audit-20260101T000000000000Z.csv")
    audit.unlink()
    gone = run_veil(*verify)
    assert gone.returncode == 1 and "current log is missing" in gone.stderr, gone.stderr
    # everything deleted, while the state DB and the vault show Veil ran here
    shutil.rmtree(data / "audit")
    nothing = run_veil(*verify)
    assert nothing.returncode == 1 and "no audit log, but the vault holds 1 entry" in nothing.stderr, nothing.stderr


def test_a_tail_cut_while_the_agent_was_stopped_is_the_next_start_first_row(watched):
    _folder, data, config = _quarantined_once(watched)
    audit = data / "audit" / "audit.csv"
    lines = audit.read_text().splitlines(keepends=True)
    audit.write_text("".join(lines[:-2]))
    assert run_veil("run", "--once", "--config", str(config)).returncode == 0
    errors = [r["detail"] for r in _agent_rows(data, "error")]
    assert any("audit log damaged while no agent ran" in e and "cut off" in e for e in errors), errors


# -- silent stops ----------------------------------------------------------------------------


def test_a_frozen_agent_is_audited_with_how_long(watched):
    folder, data, config = watched
    agent = Agent(config)
    try:
        os.kill(agent.proc.pid, signal.SIGSTOP)
        time.sleep(15)
        os.kill(agent.proc.pid, signal.SIGCONT)
        assert wait_until(lambda: bool(_agent_rows(data, "frozen")), 15), agent.lines[-5:]
    finally:
        agent.stop()
    [row] = _agent_rows(data, "frozen")
    seconds = int(row["detail"].split("did not run for ")[1].split(" s")[0])
    assert 12 <= seconds <= 20, row["detail"]


def test_heartbeat_rows_mark_that_the_agent_ran(watched):
    folder, data, config = watched
    config.write_text(config.read_text().replace("[audit]\n", "[audit]\nheartbeat_min = 0.05\n", 1))  # every 3 s
    agent = Agent(config)
    try:
        assert wait_until(lambda: len(_agent_rows(data, "heartbeat")) >= 2, 30)
    finally:
        agent.stop()
    assert "protecting" in _agent_rows(data, "heartbeat")[0]["detail"]


def test_a_squatted_lock_is_audited_with_its_holder(watched, tmp_path):
    folder, data, config = watched
    data.mkdir(parents=True, exist_ok=True)
    with open(data / "agent.lock", "a+") as squat:  # a look-alike started first holds the data dir
        fcntl.flock(squat.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        squat.seek(0)
        squat.truncate()
        squat.write(str(os.getpid()))
        squat.flush()
        done = run_veil("run", "--once", "--config", str(config))
    assert done.returncode == 2 and "already running" in done.stderr
    [row] = [r for r in _agent_rows(data, "error") if r["detail"].startswith("not started")]
    assert f"held by pid {os.getpid()}" in row["detail"] and "pytest" in row["detail"]


def test_a_config_edited_while_the_agent_was_stopped_is_audited_at_the_next_start(watched):
    folder, data, config = watched
    agent = Agent(config)
    agent.stop()
    config.write_text(config.read_text().replace("[screen]\n", "[screen]\ninterval_s = 2\n", 1))
    agent = Agent(config)
    agent.stop()
    [row] = [r for r in _agent_rows(data, "config") if "changed while the agent was stopped" in r["detail"]]
    assert hashlib.sha256(config.read_bytes()).hexdigest() in row["detail"]


# -- privacy ---------------------------------------------------------------------------------


def test_a_blurred_stand_in_keeps_no_exif_thumbnail_and_shows_upright(tmp_path):
    from agent.actions.blur import blurred

    thumbnail = io.BytesIO()
    media.canary().resize((160, 120)).save(thumbnail, "JPEG")
    path = media.jpeg_with_exif_thumbnail(tmp_path / "x.jpg", media.canary().resize((400, 300)), thumbnail.getvalue())
    assert thumbnail.getvalue() in path.read_bytes()
    stand_in = blurred(path.read_bytes())
    assert thumbnail.getvalue()[:200] not in stand_in and b"Exif" not in stand_in
    with Image.open(io.BytesIO(stand_in)) as image:
        assert image.size == (300, 400)  # orientation 6 applied: shown as the original is shown
        assert not image.getexif() and "icc_profile" not in image.info and "xmp" not in image.info


def test_quarantine_removes_the_desktops_cached_thumbnails(watched, tmp_path):
    folder, data, config = watched
    cache = tmp_path / "cache"
    target = folder / "x.png"
    shutil.copy(CANARY, target)
    env = {"XDG_CACHE_HOME": str(cache)}
    cached = []
    for size in SIZES:
        for name in thumbnail_names(target):
            (cache / "thumbnails" / size).mkdir(parents=True, exist_ok=True)
            (cache / "thumbnails" / size / name).write_bytes(b"a 1024-px copy of the picture")
            cached.append(cache / "thumbnails" / size / name)
    (cache / "thumbnails" / "fail" / "gnome-thumbnail-factory").mkdir(parents=True)
    other = cache / "thumbnails" / "normal" / "0123456789abcdef0123456789abcdef.png"
    other.write_bytes(b"another file's thumbnail")
    done = run_veil("run", "--once", "--config", str(config), env=env)
    assert done.returncode == 1 and not target.exists()
    assert not any(p.exists() for p in cached) and other.exists()


def test_the_data_dir_is_private(watched):
    folder, data, config = _quarantined_once(watched)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in [data / "state.sqlite3", data / "audit" / "audit.csv", data / "audit" / "audit.csv.head",
                 data / "quarantine" / "keys.json", *vault_entries(data)]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in (data / "audit", data / "quarantine"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_gap_rows_do_not_trust_an_edited_or_deleted_state_database(watched):
    import sqlite3

    folder, data, config = watched
    agent = Agent(config)
    agent.kill()  # protection stops now...
    with sqlite3.connect(data / "state.sqlite3") as db:  # ...and the state is made to say it ran an hour longer
        db.execute("UPDATE meta SET value = ? WHERE key = 'heartbeat'", (str(time.time() + 3600),))
    Agent(config).stop()
    [edited] = _agent_rows(data, "gap")
    assert "the state database's times were changed" in edited["detail"], edited["detail"]
    for name in ("state.sqlite3", "state.sqlite3-wal", "state.sqlite3-shm"):
        (data / name).unlink(missing_ok=True)
    Agent(config).stop()
    missing = _agent_rows(data, "gap")[-1]
    assert "the state database was missing" in missing["detail"], missing["detail"]
