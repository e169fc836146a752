"""The quarantine vault with real files: sealing, restoring, refusing, PINs and crash recovery."""

import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from agent.errors import FatalError
from agent.fsutil import sha256_file
from agent.sealing import CHUNK, TAG, read_header, read_sealed_meta_length
from agent.vault import PinError, Vault, VaultError

REPO = Path(__file__).resolve().parents[2]


def _file(folder: Path, name: str = "photo.jpg", size: int = 50_000, mode: int = 0o640) -> tuple[Path, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    data = os.urandom(size)
    path.write_bytes(data)
    os.chmod(path, mode)
    os.utime(path, ns=(1_600_000_000_123_456_789, 1_650_000_000_987_654_321))
    return path, data


def test_quarantine_then_restore_is_byte_identical_with_mode_and_mtime(tmp_path):
    vault = Vault(tmp_path / "vault")
    path, data = _file(tmp_path / "downloads")
    entry_id = vault.quarantine(path, {"malign": 0.93, "profile": "child"}).id
    assert not path.exists()
    sealed = (tmp_path / "vault" / f"{entry_id}.veil").read_bytes()
    assert data[:64] not in sealed and b"downloads" not in sealed  # content and path are sealed
    private = vault.keyring.unlock(None)
    [entry] = vault.entries(private)
    assert (entry.id, entry.original, entry.meta["size"], entry.meta["malign"]) == (entry_id, path, len(data), 0.93)
    assert vault.restore(entry_id, private) == path
    assert path.read_bytes() == data
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o640)
    assert os.stat(path).st_mtime_ns == 1_650_000_000_987_654_321
    assert vault.entries(private) == []


def test_restore_never_overwrites(tmp_path):
    vault = Vault(tmp_path / "vault")
    path, data = _file(tmp_path / "d")
    entry_id = vault.quarantine(path).id
    path.write_bytes(b"a new file with the same name")
    with pytest.raises(VaultError, match="already exists; not overwritten"):
        vault.restore(entry_id, vault.keyring.unlock(None))
    assert path.read_bytes() == b"a new file with the same name"
    other = tmp_path / "elsewhere" / "copy.jpg"
    assert vault.restore(entry_id, vault.keyring.unlock(None), to=other) == other
    assert other.read_bytes() == data


def test_a_restore_that_cannot_write_says_so_and_keeps_the_entry(tmp_path):
    vault = Vault(tmp_path / "vault")
    path, data = _file(tmp_path / "d")
    entry_id = vault.quarantine(path).id
    private = vault.keyring.unlock(None)
    with pytest.raises(VaultError, match="could not write /proc/veil-test/photo.jpg .*; it stays in the vault"):
        vault.restore(entry_id, private, to=Path("/proc/veil-test/photo.jpg"))
    assert vault.restore(entry_id, private) == path and path.read_bytes() == data


def test_refuses_symlinks_and_special_files(tmp_path):
    vault = Vault(tmp_path / "vault")
    target, data = _file(tmp_path / "d")
    link = tmp_path / "d" / "link.jpg"
    link.symlink_to(target)
    with pytest.raises(VaultError, match="symlink"):
        vault.quarantine(link)
    fifo = tmp_path / "d" / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(VaultError, match="special file"):
        vault.quarantine(fifo)
    with pytest.raises(VaultError, match="vanished"):
        vault.quarantine(tmp_path / "d" / "gone.jpg")
    assert link.is_symlink() and target.read_bytes() == data and fifo.exists()


def test_pin_protects_the_private_key(tmp_path):
    vault = Vault(tmp_path / "vault")
    path, _ = _file(tmp_path / "d")
    entry_id = vault.quarantine(path).id  # no PIN needed to quarantine
    vault.keyring.set_pin(None, "246824")
    assert vault.keyring.pin_set
    with pytest.raises(PinError, match="wrong PIN"):
        vault.keyring.unlock("1357")
    with pytest.raises(PinError, match="a PIN is set"):
        vault.keyring.unlock(None)
    second, _ = _file(tmp_path / "d", "second.jpg")
    vault.quarantine(second)  # still no PIN needed
    private = vault.keyring.unlock("246824")
    assert {e.id for e in vault.entries(private)} >= {entry_id}
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    keys = (tmp_path / "vault" / "keys.json").read_bytes()
    assert base64.b64encode(raw) not in keys and raw not in keys  # never in the clear
    assert oct(os.stat(tmp_path / "vault" / "keys.json").st_mode & 0o777) == oct(0o600)
    vault.keyring.clear_pin("246824")
    assert not vault.keyring.pin_set and vault.keyring.unlock(None)


def test_purge_by_age(tmp_path):
    vault = Vault(tmp_path / "vault")
    path, _ = _file(tmp_path / "d")
    vault.quarantine(path)
    import time
    assert vault.purge(30) == 0
    assert vault.purge(30, now=time.time() + 31 * 86400) == 1
    assert list((tmp_path / "vault").glob("*.veil")) == []


def test_damaged_entry_is_reported(tmp_path):
    vault = Vault(tmp_path / "vault")
    path, _ = _file(tmp_path / "d")
    entry_id = vault.quarantine(path).id
    entry = tmp_path / "vault" / f"{entry_id}.veil"
    data = bytearray(entry.read_bytes())
    data[-5] ^= 0xFF
    entry.write_bytes(bytes(data))
    with pytest.raises(VaultError, match="damaged"):
        vault.restore(entry_id, vault.keyring.unlock(None))
    assert isinstance(PinError("x"), FatalError)


@pytest.mark.parametrize("size", [0, 1, CHUNK, 2 * CHUNK, 3 * CHUNK + 12_345])
def test_chunk_boundaries_round_trip(tmp_path, size):
    vault = Vault(tmp_path / "vault")
    path, data = _file(tmp_path / "d", size=size)
    entry_id = vault.quarantine(path).id
    entry = tmp_path / "vault" / f"{entry_id}.veil"
    assert vault._complete(entry, hashlib.sha256(data).hexdigest())
    assert vault.restore(entry_id, vault.keyring.unlock(None)) == path and path.read_bytes() == data


@pytest.mark.parametrize("change", ["rewritten in place", "grown"])
def test_a_file_changed_between_hashing_and_sealing_is_left_in_place(tmp_path, monkeypatch, change):
    """The file is hashed, then sealed in a second pass: a writer in between (a download still
    going) must not get a mix of old and new sealed, nor lose its file."""
    import agent.vault as vault_module

    vault = Vault(tmp_path / "vault")
    path, data = _file(tmp_path / "d", size=2 * CHUNK + 5)

    def writer_meanwhile(point: str) -> None:
        if point == "read":
            with open(path, "r+b" if change == "rewritten in place" else "ab") as handle:
                handle.write(b"new bytes")

    monkeypatch.setattr(vault_module, "kill_point", writer_meanwhile)
    with pytest.raises(VaultError, match="file changed while being read; left in place"):
        vault.quarantine(path)
    written = b"new bytes" + data[9:] if change == "rewritten in place" else data + b"new bytes"
    assert path.read_bytes() == written  # the writer's file, as the writer left it
    assert sorted(p.name for p in (tmp_path / "vault").iterdir()) == ["keys.json", "vault.lock"]  # no entry, no journal


def test_a_hash_the_caller_already_made_is_checked_not_trusted(tmp_path):
    """The agent passes the hash it judged the file by (saving a read of the file); a file that
    changed since is not sealed under that hash, and stays where it is."""
    vault = Vault(tmp_path / "vault")
    path, data = _file(tmp_path / "d", size=CHUNK + 77)
    judged = hashlib.sha256(data).hexdigest()
    path.write_bytes(data[:-1] + b"!")  # rewritten after it was judged, same size
    with pytest.raises(VaultError, match="file changed while being read; left in place"):
        vault.quarantine(path, content_sha=judged)
    assert path.read_bytes() == data[:-1] + b"!"
    assert sorted(p.name for p in (tmp_path / "vault").iterdir()) == ["keys.json", "vault.lock"]
    path.write_bytes(data)
    sealed = vault.quarantine(path, content_sha=judged)
    assert sealed.sha256 == judged and not path.exists()
    assert vault.restore(sealed.id, vault.keyring.unlock(None)) == path and path.read_bytes() == data


def _chunks_of(entry: Path) -> tuple[bytes, list[bytes]]:
    """An entry's bytes split into what precedes the content records, and the records."""
    data = entry.read_bytes()
    with open(entry, "rb") as handle:
        header = read_header(handle)
        start = header.length + 4 + read_sealed_meta_length(handle)
    records = [data[i:i + CHUNK + TAG] for i in range(start, len(data), CHUNK + TAG)]
    return data[:start], records


@pytest.mark.parametrize("tamper", ["cut off", "last record dropped", "records swapped", "record repeated", "bytes appended"])
def test_a_tampered_chunked_entry_is_refused_and_leaves_nothing_behind(tmp_path, tamper):
    """Every record is authenticated with its place and whether it is the last: an entry cut,
    shortened, reordered or extended is refused, and no partial file appears where it belonged."""
    vault = Vault(tmp_path / "vault")
    path, data = _file(tmp_path / "d", "film.mp4", size=3 * CHUNK + 999)
    entry_id = vault.quarantine(path).id
    entry = tmp_path / "vault" / f"{entry_id}.veil"
    before, records = _chunks_of(entry)
    changed = {
        "cut off": before + b"".join(records)[:-100],
        "last record dropped": before + b"".join(records[:-1]),
        "records swapped": before + records[1] + records[0] + b"".join(records[2:]),
        "record repeated": before + records[0] + b"".join(records),
        "bytes appended": before + b"".join(records) + b"\0" * 32,
    }[tamper]
    entry.write_bytes(changed)
    private = vault.keyring.unlock(None)
    assert [e.id for e in vault.entries(private)] == [entry_id]  # listing reads only the metadata
    with pytest.raises(VaultError):
        vault.restore(entry_id, private)
    assert sorted(p.name for p in path.parent.iterdir()) == []  # no partial copy, no temporary
    assert entry.exists()  # the entry stays for a closer look
    if tamper in ("cut off", "last record dropped", "bytes appended", "record repeated"):
        assert not vault._complete(entry, hashlib.sha256(data).hexdigest())  # recovery would not trust it either


def _seal_v1(vault: Vault, path: Path, entry_id: str) -> None:
    """An entry as Veil 0.1 sealed it (one AES-GCM message), to check old vaults still restore."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from agent.sealing import MAGIC_V1, _public_raw, _record_key, b64

    content, st = path.read_bytes(), path.stat()
    vault_public = vault.keyring.public_key()
    ephemeral = X25519PrivateKey.generate()
    eph = _public_raw(ephemeral.public_key())
    key = _record_key(ephemeral.exchange(vault_public), eph, _public_raw(vault_public))
    nonce = os.urandom(12)
    header = json.dumps({"id": entry_id, "time": 1.7e9, "eph": b64(eph), "nonce": b64(nonce),
                         "sha256": hashlib.sha256(content).hexdigest()}, sort_keys=True).encode()
    meta = json.dumps({"original_b64": b64(os.fsencode(path)), "size": st.st_size, "mode": 0o644, "mtime_ns": st.st_mtime_ns,
                       "atime_ns": st.st_atime_ns}).encode()
    plaintext = struct.pack(">I", len(meta)) + meta + content
    (vault.folder / f"{entry_id}.veil").write_bytes(MAGIC_V1 + header + b"\n" + AESGCM(key).encrypt(nonce, plaintext, header))
    path.unlink()


def test_entries_sealed_by_the_first_format_still_list_restore_and_purge(tmp_path):
    vault = Vault(tmp_path / "vault")
    vault.keyring.ensure()
    path, data = _file(tmp_path / "d")
    _seal_v1(vault, path, "ab" * 16)
    private = vault.keyring.unlock(None)
    [entry] = vault.entries(private)
    assert entry.original == path and entry.content_sha256 == hashlib.sha256(data).hexdigest()
    assert vault._complete(tmp_path / "vault" / f"{'ab' * 16}.veil", entry.content_sha256)
    assert vault.restore(entry.id, private) == path and path.read_bytes() == data
    _seal_v1(vault, path, "cd" * 16)
    assert vault.purge(1) == 1


_BIG = """
import resource, sys
from pathlib import Path
from agent.vault import Vault
vault, path = Vault(Path(sys.argv[1])), Path(sys.argv[2])
vault.keyring.ensure()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
entry = vault.quarantine(path)
sealed = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
vault.restore(entry.id, vault.keyring.unlock(None))
restored = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((sealed - base) // 1024, (restored - base) // 1024)
"""


@pytest.mark.slow
def test_a_large_video_is_sealed_and_restored_in_little_memory(tmp_path):
    """A 512 MiB file (a long video) goes through the vault in a few MiB: sealing it whole once
    took three copies of it in memory, enough to get a small machine's agent killed."""
    path = tmp_path / "d" / "long.mp4"
    path.parent.mkdir()
    block = os.urandom(1 << 20)
    with open(path, "wb") as handle:
        for i in range(512):
            handle.write(block[i:] + block[:i])
    digest = sha256_file(path)
    done = subprocess.run([sys.executable, "-c", _BIG, str(tmp_path / "vault"), str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    sealing_mib, restoring_mib = map(int, done.stdout.split())
    assert sealing_mib < 64 and restoring_mib < 64, done.stdout
    assert sha256_file(path) == digest


def test_recovery_leaves_a_move_in_progress_alone(tmp_path, monkeypatch):
    """A `veil scan` starting while the agent seals a file runs the vault's crash recovery: the
    agent's journal and temporary are not a crash's leftovers and must survive it (CI caught
    the agent's quarantine failing with "could not write the vault entry" this way)."""
    import threading

    import agent.vault as vault_module

    vault_dir = tmp_path / "vault"
    Vault(vault_dir).keyring.ensure()
    path, data = _file(tmp_path / "d", "long.mp4", size=64 * CHUNK)
    sealing, done, notes = threading.Event(), threading.Event(), []

    def seal_noticed(*args, **kwargs):
        sealing.set()
        yield from vault_module.seal.__wrapped__(*args, **kwargs)

    seal_noticed.__wrapped__ = vault_module.seal
    monkeypatch.setattr(vault_module, "seal", seal_noticed)

    def another_process_starting() -> None:  # its own Vault and lock file descriptor, as a process has
        sealing.wait(10)
        while not done.is_set():
            notes.extend(Vault(vault_dir).recover())

    sweeper = threading.Thread(target=another_process_starting)
    sweeper.start()
    try:
        vault = Vault(vault_dir)
        sealed = vault.quarantine(path)
    finally:
        done.set()
        sweeper.join()
    assert notes == [] and not path.exists()
    assert vault.restore(sealed.id, vault.keyring.unlock(None)) == path and path.read_bytes() == data
    assert Vault(vault_dir).recover() == []  # with nobody moving, recovery runs (and finds nothing)


_QUARANTINE = "import sys; from pathlib import Path; from agent.vault import Vault; Vault(Path(sys.argv[1])).quarantine(Path(sys.argv[2]))"
POINTS = ("read", "journal-written", "entry-written", "original-removed", "")


@pytest.mark.slow
def test_sigkill_at_every_step_never_loses_the_file(tmp_path):
    """200 quarantines killed (SIGKILL) at each step of the move, then recovered by a new process:
    every file ends in place, byte-identical, or restorable from the vault — never neither."""
    vault_dir = tmp_path / "vault"
    Vault(vault_dir).keyring.ensure()
    trials = 0
    for round_ in range(40):
        for point in POINTS:
            path, data = _file(tmp_path / "d", f"f{round_}-{point or 'none'}.jpg", size=20_000 + round_ * 997)
            env = {**os.environ, "VEIL_TEST_KILL_AT": point, "PYTHONPATH": str(REPO)}
            done = subprocess.run([sys.executable, "-c", _QUARANTINE, str(vault_dir), str(path)], env=env, cwd=REPO, capture_output=True)
            assert done.returncode == (-9 if point else 0), done.stderr
            Vault(vault_dir).recover()
            vault = Vault(vault_dir)
            private = vault.keyring.unlock(None)
            sealed = [e for e in vault.entries(private) if e.original == path]
            if path.exists():
                assert path.read_bytes() == data and sealed == [], point
            else:
                assert len(sealed) == 1, point
                assert vault.restore(sealed[0].id, private) == path and path.read_bytes() == data
            assert not list(vault_dir.glob("*.pending")) and not list(vault_dir.glob("*.tmp"))
            trials += 1
    assert trials == 200


def test_read_only_folder_leaves_the_file_in_place_and_the_vault_clean(tmp_path, monkeypatch):
    """The OS edge: root ignores permission bits, so the refusal is simulated at unlink."""
    vault = Vault(tmp_path / "vault")
    path, data = _file(tmp_path / "ro")
    real_unlink = Path.unlink

    def read_only(self, missing_ok=False):
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(VaultError, match="could not remove the original \\(Permission denied\\); file left in place"):
        vault.quarantine(path)
    assert path.read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "vault").iterdir()) == ["keys.json", "vault.lock"]


def test_wrong_pins_lock_unlocking_for_a_growing_time(tmp_path):
    from agent.vault import FREE_PIN_TRIES, Keyring, PinError

    now = [1000.0]
    keyring = Keyring(tmp_path, clock=lambda: now[0])
    keyring.ensure()
    keyring.set_pin(None, "246824")
    for _ in range(FREE_PIN_TRIES - 1):
        with pytest.raises(PinError, match="^wrong PIN$"):
            keyring.unlock("0000")
    with pytest.raises(PinError, match="locked for 30 s"):
        keyring.unlock("0000")
    with pytest.raises(PinError, match="too many wrong PINs"):
        keyring.unlock("246824")  # even the right PIN waits
    again = Keyring(tmp_path, clock=lambda: now[0])  # a restart does not reset the count
    with pytest.raises(PinError, match="too many wrong PINs"):
        again.unlock("246824")
    now[0] += 31
    with pytest.raises(PinError, match="locked for 60 s"):
        keyring.unlock("1111")  # the next wrong one doubles the wait
    now[0] += 61
    keyring.unlock("246824")  # right, after the wait: unlocked, and the count starts over
    with pytest.raises(PinError, match="^wrong PIN$"):
        keyring.unlock("0000")


def test_first_quarantines_racing_create_one_key_and_every_entry_restores(tmp_path):
    """The agent's workers (and a ``veil scan`` beside it) may quarantine at the same moment into
    a vault that has no keys yet: they must agree on one key pair, or a file sealed under a key
    that lost the race could never be restored."""
    import threading

    vault_dir = tmp_path / "vault"
    files = [_file(tmp_path / "d", f"f{i}.jpg", size=10_000 + i) for i in range(8)]
    start, failures = threading.Barrier(len(files)), []

    def quarantine(path: Path) -> None:
        start.wait()
        try:
            Vault(vault_dir).quarantine(path)
        except Exception as err:
            failures.append(f"{path.name}: {err!r}")

    threads = [threading.Thread(target=quarantine, args=(path,)) for path, _ in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    vault = Vault(vault_dir)
    private = vault.keyring.unlock(None)
    entries = vault.entries(private)
    assert sorted(e.original.name for e in entries) == sorted(path.name for path, _ in files)
    for entry in entries:
        vault.restore(entry.id, private)
    assert all(path.read_bytes() == data for path, data in files)
    assert sorted(p.name for p in vault_dir.iterdir()) == ["keys.json", "vault.lock"]  # no temporary left behind


def test_a_blurred_stand_in_never_touches_a_neighbour_named_like_its_temporary(tmp_path):
    vault = Vault(tmp_path / "vault")
    path, data = _file(tmp_path / "d")
    neighbour = path.with_name(path.name + ".tmp")
    neighbour.write_bytes(b"the user's own file")
    vault.quarantine(path, stand_in=lambda content: b"stand-in")
    assert path.read_bytes() == b"stand-in"
    assert neighbour.read_bytes() == b"the user's own file"
    assert sorted(p.name for p in path.parent.iterdir()) == ["photo.jpg", "photo.jpg.tmp"]


_GUESS = """
import sys, time
from pathlib import Path
from agent.vault import Keyring, PinError
folder, go = Path(sys.argv[1]), Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
try:
    Keyring(folder).unlock(sys.argv[3])
except PinError as err:
    print(err)
"""


def test_parallel_guesses_are_each_counted(tmp_path):
    """Eight wrong PINs tried at once by separate processes: all eight count, so the lock-out
    cannot be outrun by guessing in parallel."""
    from agent.vault import FREE_PIN_TRIES, Keyring

    keyring = Keyring(tmp_path / "vault")
    keyring.ensure()
    keyring.set_pin(None, "246824")
    go = tmp_path / "go"
    guesses = [subprocess.Popen([sys.executable, "-c", _GUESS, str(tmp_path / "vault"), str(go), f"{n:04d}"],
                                cwd=REPO, stdout=subprocess.PIPE, text=True) for n in range(8)]
    go.touch()
    said = [g.communicate(timeout=60)[0].strip() for g in guesses]
    assert sum(s.startswith("wrong PIN") for s in said) == FREE_PIN_TRIES  # the last of them starts the lock-out
    assert sum(s.startswith("too many wrong PINs") for s in said) == 8 - FREE_PIN_TRIES
    with pytest.raises(PinError, match="too many wrong PINs"):
        keyring.unlock("246824")
