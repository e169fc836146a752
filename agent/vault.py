"""The quarantine vault: flagged files sealed out of reach, restorable only by the PIN holder.

Sealing uses public-key encryption, so the agent can quarantine without the PIN: each entry is
encrypted (AES-256-GCM, in chunks: ``agent.sealing``) under a key agreed between a fresh X25519
key pair and the vault's public key. The vault's private key is stored wrapped (AES-GCM under a
scrypt key from the PIN; the empty PIN until one is set) in an owner-only file. Content and
metadata (original path, mode, times, score) are sealed; the clear header holds only what crash
recovery and age-based purging need: entry id, time, size, and the content's sha256 (also in
the audit log).

Moving a file in never loses it: the sealed copy is written to a temporary name, fsynced,
renamed, fsynced with its folder, and read back before the original is removed; a journal entry
records the move, so a crash at any instant leaves the file in place or restorable, and the next
start finishes or undoes what was half done (``Vault.recover``).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from agent.errors import FatalError, VeilError
from agent.faults import kill_point
from agent.fsutil import fsync_dir, sha256_file, write_durably
from agent.lock import exclusive, shared
from agent.sealing import CHUNK, TAG, Opened, SealError, b64, expected_size, read_header, read_sealed_meta_length, seal, unb64

# The PIN wraps the private key under Argon2id, memory-hard: one guess costs 64 MiB and about
# 0.35 s on a 2-core Xeon (benchmarks/RESULTS.md, "PIN"), so even a 6-digit PIN takes days offline.
_ARGON2 = {"kdf": "argon2id", "memory_kib": 65536, "iterations": 5, "lanes": 1}
_SCRYPT_V1 = {"n": 2**15, "r": 8, "p": 1}  # version 1 vaults; re-wrapped under Argon2id at the next unlock
# Without a PIN the wrap protects nothing (anyone may unwrap with the empty PIN), so it costs
# nothing either: no 64 MiB spike in the agent when it makes the vault's first key pair.
_NO_PIN_WRAP = {"kdf": "scrypt", "n": 2**10, "r": 8, "p": 1}
MIN_PIN_LENGTH = 6


class VaultError(VeilError):
    """One file could not be quarantined or restored; nothing was lost. One line."""


class KeyTrouble(VaultError):
    """The vault's key file is missing, unreadable or not the one on record: nothing is sealed
    with it, and PIN-gated controls stay locked, until a parent runs ``veil pin reset``."""


class PinError(FatalError):
    """The PIN was wrong (or missing where one is set)."""


FREE_PIN_TRIES = 5  # then each wrong PIN locks for 30 s, doubling, up to an hour
LOCKOUT_BASE_S, LOCKOUT_MAX_S = 30.0, 3600.0


def fingerprint(public: bytes) -> str:
    """A key's short name, recorded in the state DB and every start row."""
    return hashlib.sha256(public).hexdigest()[:16]


def _wrap_label(public: bytes) -> bytes:
    """The wrap's associated data: the public key, so neither half can be swapped alone."""
    return b"veil-vault-key:" + public


class Keyring:
    """The vault's key pair; the private half wrapped under the PIN (or the empty PIN).

    Wrong PINs are counted in the key file itself, so deleting one file cannot reset the
    lock-out without also losing the keys, which is never silent (``trouble``): after
    ``FREE_PIN_TRIES`` every further wrong PIN locks unlocking for a growing time.

    ``trusted`` gives the fingerprint on record (the state DB): a key file that is missing or not
    that key while one is on record, or while sealed entries exist, is ``KeyTrouble``, never a
    reason to make a new pair. ``on_new_key`` records a pair's fingerprint when one is made.
    """

    def __init__(self, folder: Path, clock: Callable[[], float] = time.time, trusted: Callable[[], str | None] = lambda: None,
                 on_new_key: Callable[[str], None] = lambda fp: None):
        self.folder = folder
        self.path = folder / "keys.json"
        self.old_attempts_path = folder / "pin-attempts.json"  # version 1 kept the count here
        self.lock_path = folder / "pin-attempts.lock"
        self.clock = clock
        self.trusted, self.on_new_key = trusted, on_new_key

    # -- the key file and what is on record ------------------------------------------------

    def sealed_entries(self) -> int:
        try:
            return sum(1 for _ in self.folder.glob("*.veil")) if self.folder.is_dir() else 0
        except OSError as err:
            raise KeyTrouble(f"the vault folder {self.folder} cannot be read ({err.strerror or err})") from None

    def _on_record(self) -> str | None:
        """The fingerprint on record; KeyTrouble when the record cannot be read (an edited or
        damaged state database must not read as "nothing on record")."""
        try:
            return self.trusted()
        except Exception as err:
            raise KeyTrouble(f"the vault key on record cannot be read ({type(err).__name__}: {err})") from None

    def _load(self) -> dict[str, Any]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            unb64(document["public"])
            wrap = document["wrap"]
            for field in ("salt", "nonce", "key"):
                unb64(wrap[field])
            return document
        except FileNotFoundError:
            raise KeyTrouble(self._missing()) from None
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise KeyTrouble(f"the vault key file {self.path} is unreadable ({type(err).__name__}); "
                             "a parent can run `veil pin reset`") from None

    def _missing(self) -> str:
        entries = self.sealed_entries()
        if entries or self._on_record():
            return (f"the vault key file {self.path} is missing; {entries} sealed entr{'y' if entries == 1 else 'ies'} cannot be "
                    "opened and nothing more is quarantined until a parent runs `veil pin reset`")
        return f"{self.path}: no vault keys yet"

    def trouble(self) -> str:
        """One line when the key file cannot be trusted (missing while expected, unreadable, or
        another key than the one on record); empty when all is well or no vault exists yet."""
        try:
            if not self.path.exists() and not self.sealed_entries() and not self._on_record():
                return ""
            self._trusted_document()
        except KeyTrouble as err:
            return str(err)
        except OSError as err:
            return f"the vault key file {self.path} cannot be read ({err.strerror or err})"
        return ""

    def _trusted_document(self) -> dict[str, Any]:
        document = self._load()
        on_record = self._on_record()
        found = fingerprint(unb64(document["public"]))
        if on_record and found != on_record:
            raise KeyTrouble(f"the vault key file {self.path} holds key {found}, not the key on record ({on_record}): "
                             "replaced; nothing is sealed with it until a parent runs `veil pin reset`")
        return document

    def fingerprint(self) -> str:
        return fingerprint(unb64(self._trusted_document()["public"]))

    def ensure(self) -> None:
        """Create the key pair on first use (no PIN) — only then: never over a missing one."""
        if self.path.exists():
            self._trusted_document()
            return
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Racing first users (the agent's workers, a `veil scan` beside it) must agree on one key
        # pair, and one of them must not take another's first entry for a sign of lost keys: the
        # look and the making happen under one lock.
        with exclusive(self.folder / "vault.lock"):  # (the vault takes it shared only after ensure)
            if self.path.exists():
                self._trusted_document()
                return
            if self.sealed_entries() or self._on_record():
                raise KeyTrouble(self._missing())
            if self._store(X25519PrivateKey.generate(), "", pin_set=False, replace=False):
                self.on_new_key(self.fingerprint())

    def reset(self) -> tuple[str, int]:
        """A new key pair with no PIN, for a parent who lost the key file or the PIN: entries
        sealed under the old key move to ``old-keys/<fingerprint or 'unknown'>/`` (kept, in case
        the old key file turns up). Returns the new fingerprint and how many entries moved."""
        old = "unknown"
        try:
            old = fingerprint(unb64(self._load()["public"]))
        except KeyTrouble:
            pass
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Under the vault's lock: no entry is sealed to the old key while the files move.
        with exclusive(self.folder / "vault.lock"):
            aside = self.folder / "old-keys" / f"{old}-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
            moved = 0
            for entry in sorted(self.folder.glob("*.veil")):
                aside.mkdir(parents=True, exist_ok=True, mode=0o700)
                os.replace(entry, aside / entry.name)
                moved += 1
            for leftover in (self.path, self.old_attempts_path):
                if leftover.exists():
                    aside.mkdir(parents=True, exist_ok=True, mode=0o700)
                    os.replace(leftover, aside / leftover.name)
            self._store(X25519PrivateKey.generate(), "", pin_set=False)
            fsync_dir(self.folder)
        new = fingerprint(unb64(self._load()["public"]))
        self.on_new_key(new)
        return new, moved

    def _store(self, private: X25519PrivateKey, pin: str, pin_set: bool, replace: bool = True,
               attempts: dict[str, float] | None = None) -> bool:
        """Write the key file; False when ``replace`` is off and one was there first."""
        raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        params = _ARGON2 if pin else _NO_PIN_WRAP
        wrapped = AESGCM(self._derive(pin, salt, params)).encrypt(nonce, raw, _wrap_label(public))
        document = {
            "version": 2,
            "public": b64(public),
            "fingerprint": fingerprint(public),
            "pin_set": pin_set,
            "pin_long_enough": not pin_set or len(pin) >= MIN_PIN_LENGTH,
            "wrap": {**params, "salt": b64(salt), "nonce": b64(nonce), "key": b64(wrapped)},
            "attempts": attempts or {"failures": 0, "locked_until": 0.0},
        }
        return write_durably(self.path, json.dumps(document, indent=1).encode(), mode=0o600, replace=replace)

    @staticmethod
    def _derive(pin: str, salt: bytes, params: dict[str, Any]) -> bytes:
        """The wrapping key. Only Veil's own parameter sets are accepted: a key file edited to ask
        for terabytes of memory or a million passes must not hang the parent's unlock."""
        known = [{k: v for k, v in option.items() if k != "kdf"} for option in (_ARGON2, _SCRYPT_V1, _NO_PIN_WRAP)]
        if {k: v for k, v in params.items() if k not in ("kdf", "salt", "nonce", "key")} not in known:
            raise KeyTrouble("the vault key file asks for key-wrap parameters Veil does not use (altered)")
        if params.get("kdf") == "argon2id":
            from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

            return Argon2id(salt=salt, length=32, iterations=params["iterations"], lanes=params["lanes"],
                            memory_cost=params["memory_kib"]).derive(pin.encode("utf-8"))
        return Scrypt(salt=salt, length=32, n=params["n"], r=params["r"], p=params["p"]).derive(pin.encode("utf-8"))

    # -- the PIN ---------------------------------------------------------------------------

    @property
    def pin_set(self) -> bool:
        return bool(self._load().get("pin_set"))

    @property
    def pin_too_short(self) -> bool:
        """A PIN from before the 6-character rule: it still works, and the tray and ``veil
        doctor`` ask for a longer one until it is changed."""
        document = self._load()
        return bool(document.get("pin_set")) and not document.get("pin_long_enough", False)

    def public_key(self) -> X25519PublicKey:
        return X25519PublicKey.from_public_bytes(unb64(self._trusted_document()["public"]))

    def _attempts(self, document: dict[str, Any]) -> dict[str, float]:
        recorded = document.get("attempts")
        attempts = {"failures": 0, "locked_until": 0.0}
        if isinstance(recorded, dict):
            failures, until = recorded.get("failures"), recorded.get("locked_until")
            attempts = {"failures": failures if isinstance(failures, int) and failures >= 0 else 0,
                        # never past the longest lock-out: an edited file must not lock the parent out for good
                        "locked_until": min(float(until), self.clock() + LOCKOUT_MAX_S) if isinstance(until, (int, float)) else 0.0}
        try:  # a version 1 count beside the keys still counts
            old = json.loads(self.old_attempts_path.read_text(encoding="utf-8"))
            attempts = {"failures": max(attempts["failures"], int(old.get("failures", 0))),
                        "locked_until": min(max(attempts["locked_until"], float(old.get("locked_until", 0.0))), self.clock() + LOCKOUT_MAX_S)}
        except (OSError, ValueError, AttributeError, TypeError):
            pass
        return attempts

    def _record_attempts(self, document: dict[str, Any], attempts: dict[str, float]) -> None:
        document = {**document, "attempts": attempts}
        write_durably(self.path, json.dumps(document, indent=1).encode(), mode=0o600)
        self.old_attempts_path.unlink(missing_ok=True)

    def unlock(self, pin: str | None) -> X25519PrivateKey:
        document = self._trusted_document()
        if not document.get("pin_set"):
            try:
                private = self._unwrap(document, "")
            except (InvalidTag, KeyTrouble):
                raise KeyTrouble(f"{self.path}: the vault key does not unwrap (a damaged or altered key file); "
                                 "a parent can run `veil pin reset`") from None
            if document.get("version", 1) < 2:
                self._store(private, "", pin_set=False, attempts=self._attempts(document))
            return private
        if not pin:
            raise PinError("a PIN is set: enter it (or set VEIL_PIN)")
        # One try at a time across processes: guesses run in parallel would each read the same
        # failure count, and the lock-out would count only some of them.
        with exclusive(self.lock_path):
            document = self._trusted_document()
            attempts = self._attempts(document)
            wait = attempts.get("locked_until", 0.0) - self.clock()
            if wait > 0:
                raise PinError(f"too many wrong PINs: try again in {wait:.0f} s")
            try:
                private = self._unwrap(document, pin)
            except InvalidTag:
                failures = int(attempts.get("failures", 0)) + 1
                locked_until = 0.0
                if failures >= FREE_PIN_TRIES:
                    locked_until = self.clock() + min(LOCKOUT_MAX_S, LOCKOUT_BASE_S * 2 ** (failures - FREE_PIN_TRIES))
                self._record_attempts(document, {"failures": failures, "locked_until": locked_until})
                raise PinError("wrong PIN" + (f"; locked for {locked_until - self.clock():.0f} s" if locked_until else "")) from None
            if document.get("version", 1) < 2 or attempts.get("failures"):
                # the right PIN: the count starts again, and a version 1 wrap moves to Argon2id
                self._store(private, pin, pin_set=True)
                self.old_attempts_path.unlink(missing_ok=True)
        return private

    def _unwrap(self, document: dict[str, Any], pin: str) -> X25519PrivateKey:
        wrap = document["wrap"]
        public = unb64(document["public"])
        version = document.get("version", 1)
        key = self._derive(pin, unb64(wrap["salt"]), wrap if version >= 2 else {**_SCRYPT_V1, **wrap})
        label = _wrap_label(public) if version >= 2 else b"veil-vault-key"
        private = X25519PrivateKey.from_private_bytes(AESGCM(key).decrypt(unb64(wrap["nonce"]), unb64(wrap["key"]), label))
        if private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) != public:
            raise KeyTrouble(f"{self.path}: the public key does not belong to the private key (the file was altered); "
                             "a parent can run `veil pin reset`")
        return private

    def set_pin(self, current: str | None, new: str) -> None:
        if len(new) < MIN_PIN_LENGTH:
            raise PinError(f"the new PIN is too short: at least {MIN_PIN_LENGTH} characters")
        self._store(self.unlock(current), new, pin_set=True)

    def clear_pin(self, current: str | None) -> None:
        self._store(self.unlock(current), "", pin_set=False)


@dataclass(frozen=True)
class Sealed:
    id: str
    sha256: str  # of the content: for the audit row, the original being gone


@dataclass(frozen=True)
class Entry:
    id: str
    time: float
    content_sha256: str
    meta: dict[str, Any]  # original, size, mode, mtime_ns, malign, profile, reason, standin_sha256

    @property
    def original(self) -> Path:
        return Path(os.fsdecode(unb64(self.meta["original_b64"])))


def new_entry_id() -> str:
    return uuid.uuid4().hex


class Vault:
    def __init__(self, folder: Path, trusted: Callable[[], str | None] = lambda: None, on_new_key: Callable[[str], None] = lambda fp: None):
        self.folder = folder
        self.lock_path = folder / "vault.lock"  # held shared by each move in, exclusive by recovery
        self.keyring = Keyring(folder, trusted=trusted, on_new_key=on_new_key)

    def _entry_path(self, entry_id: str) -> Path:
        if not entry_id or not all(c in "0123456789abcdef" for c in entry_id):
            raise VaultError(f"{entry_id!r} is not a quarantine id")
        return self.folder / f"{entry_id}.veil"

    # -- moving a file in -------------------------------------------------------------------

    def quarantine(self, path: Path, info: dict[str, Any] | None = None, stand_in: Callable[[bytes], bytes] | None = None,
                   entry_id: str | None = None, content_sha: str | None = None) -> Sealed:
        """Seal ``path`` into the vault and remove it — or, with ``stand_in``, atomically replace
        it by ``stand_in(content)`` (the blur action). ``VaultError`` (with the file untouched)
        for symlinks, devices, files that change while read, full disks. ``entry_id`` (hex) lets
        a caller record the id before the move, to find the entry again after a crash.

        The file is read twice (to hash it, then to seal it against that hash), a chunk at a
        time, so sealing a large video takes little memory; only a stand-in's image is whole.
        ``content_sha``, the hash the caller made when it judged the file (the agent does), saves
        the first read: the sealing read checks the content against it instead."""
        self.keyring.ensure()
        with shared(self.lock_path):  # a recovery in another process leaves this move alone (``recover``)
            return self._move_in(path, info, stand_in, entry_id, content_sha)

    def _move_in(self, path: Path, info: dict[str, Any] | None, stand_in: Callable[[bytes], bytes] | None,
                 entry_id: str | None, content_sha: str | None) -> Sealed:
        try:
            before = os.lstat(path)
        except FileNotFoundError:
            raise VaultError("file vanished before it could be quarantined") from None
        if stat.S_ISLNK(before.st_mode):
            raise VaultError("refusing a symlink (its target is not ours to move)")
        if not stat.S_ISREG(before.st_mode):
            raise VaultError("refusing a device, socket or other special file")
        try:
            source = open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW))
        except OSError as err:
            raise VaultError(f"cannot read: {err.strerror}") from None
        with source:
            replacement = None
            if content_sha is None or stand_in is not None:
                hashed, replacement = self._hash_unchanged(source, before, stand_in)
                if content_sha not in (None, hashed):
                    raise VaultError("file changed since it was judged; left in place")
                content_sha = hashed
            kill_point("read")
            entry_id = entry_id or new_entry_id()
            meta = {
                "original_b64": b64(os.fsencode(path.absolute())),
                "size": before.st_size,
                "mode": stat.S_IMODE(before.st_mode),
                "mtime_ns": before.st_mtime_ns,
                "atime_ns": before.st_atime_ns,
                **({"standin_sha256": hashlib.sha256(replacement).hexdigest()} if replacement is not None else {}),
                **(info or {}),
            }
            journal = self.folder / f"{entry_id}.pending"
            target = self._entry_path(entry_id)
            try:
                write_durably(journal, json.dumps({"original_b64": meta["original_b64"], "sha256": content_sha}).encode())
                kill_point("journal-written")
                source.seek(0)
                written = hashlib.sha256()
                write_durably(target, _hashed(seal(source, before.st_size, content_sha, meta, entry_id, self.keyring.public_key()),
                                              written))
                kill_point("entry-written")
                if sha256_file(target) != written.hexdigest():
                    raise OSError("the sealed copy read back differently")
            except (OSError, SealError) as err:
                target.unlink(missing_ok=True)
                journal.unlink(missing_ok=True)
                if isinstance(err, SealError):
                    raise VaultError(f"{err}; left in place") from None
                raise VaultError(f"could not write the vault entry ({err.strerror or err}); file left in place") from None
        try:
            self._remove_original(path, before, replacement)
        except (OSError, VaultError) as err:
            # A read-only folder, say: undo, so the file is in one place only — where it was.
            target.unlink(missing_ok=True)
            journal.unlink(missing_ok=True)
            fsync_dir(self.folder)
            reason = err if isinstance(err, VaultError) else (err.strerror or err)
            raise VaultError(f"could not remove the original ({reason}); file left in place") from None
        kill_point("original-removed")
        journal.unlink(missing_ok=True)
        fsync_dir(self.folder)
        return Sealed(entry_id, content_sha)

    @staticmethod
    def _hash_unchanged(source: BinaryIO, before: os.stat_result, stand_in: Callable[[bytes], bytes] | None
                        ) -> tuple[str, bytes | None]:
        """The content's sha256 (and its stand-in), if the file stays what ``before`` saw."""
        digest, size, replacement = hashlib.sha256(), 0, None
        try:
            if stand_in is not None:  # an image the decoder has already held whole
                content = source.read()
                digest.update(content)
                size = len(content)
            else:
                for block in iter(lambda: source.read(CHUNK), b""):
                    digest.update(block)
                    size += len(block)
            during = os.fstat(source.fileno())
        except OSError as err:
            raise VaultError(f"cannot read: {err.strerror}") from None
        if (during.st_size, during.st_mtime_ns, during.st_ino) != (before.st_size, before.st_mtime_ns, before.st_ino) or size != before.st_size:
            raise VaultError("file changed while being read; left in place")
        if stand_in is not None:
            replacement = stand_in(content)
        return digest.hexdigest(), replacement

    @staticmethod
    def _remove_original(path: Path, before: os.stat_result, replacement: bytes | None) -> None:
        """Unlink (or replace) the original only if it is still the file that was sealed."""
        try:
            now = os.lstat(path)
        except FileNotFoundError:
            return  # gone meanwhile: the sealed copy is the one left
        if (now.st_size, now.st_mtime_ns, now.st_ino) != (before.st_size, before.st_mtime_ns, before.st_ino):
            raise VaultError("file changed after it was sealed")
        if replacement is None:
            path.unlink()
            fsync_dir(path.parent)
        else:
            write_durably(path, replacement, mode=stat.S_IMODE(before.st_mode))

    # -- reading ----------------------------------------------------------------------------

    @staticmethod
    def _opened(handle: BinaryIO, path: Path, private: X25519PrivateKey) -> tuple[Entry, Opened]:
        try:
            opened = Opened(handle, private)
            fields = opened.header.fields
            return Entry(fields["id"], fields["time"], fields["sha256"], opened.meta), opened
        except (SealError, KeyError, ValueError) as err:
            raise VaultError(f"{path.name}: {err if isinstance(err, SealError) else 'damaged'}") from None

    def entries(self, private: X25519PrivateKey) -> list[Entry]:
        """Every entry's metadata (reading each entry's header and metadata record only)."""
        return self.listing(private)[0]

    def listing(self, private: X25519PrivateKey) -> tuple[list[Entry], int]:
        """The entries this key opens, and how many it does not (sealed under another key, or damaged)."""
        found, unopened = [], 0
        for path in sorted(self.folder.glob("*.veil")):
            try:
                with open(path, "rb") as handle:
                    found.append(self._opened(handle, path, private)[0])
            except (VaultError, OSError):
                unopened += 1
        return sorted(found, key=lambda e: e.time), unopened

    def restore(self, entry_id: str, private: X25519PrivateKey, to: Path | None = None,
                before_write: Callable[[Entry, Path], None] | None = None) -> Path:
        """Put the file back byte-identical with its mode and times; never overwrites.
        ``before_write(entry, temp)`` runs once the content is decrypted and verified into
        ``temp``, before the file appears under its name."""
        path = self._entry_path(entry_id)
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            raise VaultError(f"no quarantined file with id {entry_id}") from None
        with handle:
            entry, opened = self._opened(handle, path, private)
            target = to or entry.original
            replaces_stand_in = False
            if target.exists() or target.is_symlink():
                standin = entry.meta.get("standin_sha256")
                if not standin or target.is_symlink() or not target.is_file() or sha256_file(target) != standin:
                    raise VaultError(f"{target}: already exists; not overwritten (restore with --to PATH)")
                replaces_stand_in = True  # Veil's own blurred copy, unchanged since Veil wrote it
            temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.veil-restore")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(temp, "xb", opener=lambda name, flags: os.open(name, flags, 0o600)) as out:
                    for block in opened.content():
                        out.write(block)
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(temp, entry.meta["mode"])
                os.utime(temp, ns=(entry.meta["atime_ns"], entry.meta["mtime_ns"]))
                if before_write is not None:
                    before_write(entry, temp)
                if replaces_stand_in:
                    os.replace(temp, target)
                else:
                    os.link(temp, target)  # fails if the target appeared meanwhile: never overwrite
            except SealError as err:
                raise VaultError(f"{entry_id}: {err}") from None
            except FileExistsError:
                raise VaultError(f"{target}: already exists; not overwritten (restore with --to PATH)") from None
            except OSError as err:
                raise VaultError(f"could not write {target} ({err.strerror or err}); it stays in the vault") from None
            finally:
                temp.unlink(missing_ok=True)  # a damaged entry or a full disk leaves no partial copy behind
        fsync_dir(target.parent)
        path.unlink()
        fsync_dir(self.folder)
        return target

    def purge(self, older_than_days: float, now: float | None = None) -> int:
        """Delete entries sealed more than ``older_than_days`` ago (by their clear header)."""
        cutoff = (now or time.time()) - older_than_days * 86400
        removed = 0
        for path in self.folder.glob("*.veil"):
            try:
                with open(path, "rb") as handle:
                    sealed_at = read_header(handle).fields["time"]
            except (SealError, OSError, KeyError):
                continue
            if sealed_at < cutoff:
                path.unlink()
                removed += 1
        if removed:
            fsync_dir(self.folder)
        return removed

    # -- crash recovery ---------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Finish or undo moves a crash interrupted; returns one line per repair. Skipped while
        another process (the agent, a ``veil scan``) is moving a file in: its journal and
        temporary are not a crash's leftovers; the next start looks again."""
        if not self.folder.is_dir():
            return []
        with exclusive(self.lock_path, wait=False) as alone:
            return self._recover() if alone else []

    def _recover(self) -> list[str]:
        notes = []
        for temp in self.folder.glob("*.tmp"):
            temp.unlink(missing_ok=True)
            notes.append(f"removed a half-written {temp.name}")
        for journal in self.folder.glob("*.pending"):
            entry_id = journal.stem
            try:
                record = json.loads(journal.read_text())
            except (OSError, ValueError):
                record = None
            entry = self.folder / f"{entry_id}.veil"
            if record is None:
                notes.append(f"dropped an unreadable journal {journal.name}")
            elif entry.exists() and self._complete(entry, record["sha256"]):
                original = Path(os.fsdecode(unb64(record["original_b64"])))
                if original.exists() and not original.is_symlink() and sha256_file(original) == record["sha256"]:
                    try:
                        original.unlink()
                        fsync_dir(original.parent)
                        notes.append(f"finished quarantining {original} ({entry_id})")
                    except OSError as err:
                        entry.unlink(missing_ok=True)
                        notes.append(f"undid quarantining {original} ({err.strerror}); the file stayed in place")
                else:
                    notes.append(f"kept quarantine entry {entry_id}")
            else:
                entry.unlink(missing_ok=True)
                notes.append(f"undid an unfinished quarantine ({entry_id}); the file stayed in place")
            journal.unlink(missing_ok=True)
        if notes:
            fsync_dir(self.folder)
        return notes

    def _complete(self, entry: Path, content_sha: str) -> bool:
        """A whole, well-formed entry for that content (checked without the private key)."""
        try:
            with open(entry, "rb") as handle:
                header = read_header(handle)
                if header.fields.get("sha256") != content_sha:
                    return False
                if header.version == 1:
                    return os.fstat(handle.fileno()).st_size - header.length >= TAG
                return os.fstat(handle.fileno()).st_size == expected_size(header, read_sealed_meta_length(handle))
        except (SealError, OSError, KeyError, ValueError):
            return False


def _hashed(chunks: Iterator[bytes], digest: Any) -> Iterator[bytes]:
    """``chunks`` as they are, fed to ``digest`` on the way (to check the entry reads back)."""
    for chunk in chunks:
        digest.update(chunk)
        yield chunk
