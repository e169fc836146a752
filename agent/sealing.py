"""The vault's entry format: a file sealed for the vault's public key, in chunks.

An entry is ``MAGIC``, a clear JSON header line, then AES-256-GCM records under a key agreed
between a fresh X25519 key pair (its public half in the header) and the vault's public key:

    VEILQ2\\n {"id", "time", "eph", "nonce", "sha256", "size", "chunk"} \\n
    u32 length, sealed metadata            (record 0)
    sealed content, ``chunk`` bytes each   (records 1…n; the last may be shorter, or empty)

Every record is authenticated with the header as associated data, and its nonce is the
header's 7-byte prefix, the record's number and a last-record flag (the STREAM construction), so
records cannot be reordered, swapped between entries, cut off or extended unnoticed. Sealing and
opening hold one chunk at a time: a multi-gigabyte video is quarantined and restored in a few
MB of memory, and listing the vault reads only each entry's metadata.

The clear header holds only what needs no key: crash recovery checks an entry is whole by its
exact size, and purging goes by its time. Version 1 entries (one AES-GCM message, sealed whole)
are still read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"VEILQ2\n"
MAGIC_V1 = b"VEILQ1\n"
CHUNK = 1 << 20
TAG = 16
_HEADER_MAX = 64 * 1024  # a header line is a few hundred bytes; anything longer is not an entry


class SealError(ValueError):
    """Not an entry, a damaged one, or one sealed for another vault; or the content changed
    while it was being sealed."""


@dataclass(frozen=True)
class Header:
    fields: dict[str, Any]
    raw: bytes  # as written: the associated data of every record
    version: int

    @property
    def length(self) -> int:
        """Bytes from the start of the file to the first record."""
        return len(MAGIC) + len(self.raw) + 1


def _public_raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _record_key(shared: bytes, eph_public: bytes, vault_public: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"veil-vault-v1" + eph_public + vault_public).derive(shared)


def _nonce(prefix: bytes, number: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", number) + (b"\x01" if last else b"\x00")


def seal(source: IO[bytes], size: int, content_sha: str, meta: dict[str, Any], entry_id: str,
         vault_public: X25519PublicKey) -> Iterator[bytes]:
    """The entry for the ``size`` bytes ``source`` yields, piece by piece. Raises SealError when
    the content is not the ``content_sha`` it was said to be (it changed since it was hashed)."""
    ephemeral = X25519PrivateKey.generate()
    eph_public = _public_raw(ephemeral.public_key())
    aead = AESGCM(_record_key(ephemeral.exchange(vault_public), eph_public, _public_raw(vault_public)))
    prefix = secrets.token_bytes(7)
    header = json.dumps({"id": entry_id, "time": time.time(), "eph": b64(eph_public), "nonce": b64(prefix),
                         "sha256": content_sha, "size": size, "chunk": CHUNK}, sort_keys=True).encode()
    yield MAGIC + header + b"\n"
    sealed_meta = aead.encrypt(_nonce(prefix, 0, False), json.dumps(meta, sort_keys=True).encode(), header)
    yield struct.pack(">I", len(sealed_meta)) + sealed_meta
    digest, remaining, number = hashlib.sha256(), size, 1
    while True:
        want = min(CHUNK, remaining)
        block = source.read(want)
        if len(block) != want:
            raise SealError("file shrank while being read")
        digest.update(block)
        remaining -= want
        yield aead.encrypt(_nonce(prefix, number, remaining == 0), block, header)
        number += 1
        if remaining == 0:
            break
    if source.read(1) or digest.hexdigest() != content_sha:
        raise SealError("file changed while being read")


def read_header(handle: IO[bytes]) -> Header:
    """The clear header, leaving ``handle`` at the first record."""
    magic = handle.read(len(MAGIC))
    if magic not in (MAGIC, MAGIC_V1):
        raise SealError("not a vault entry")
    line = handle.readline(_HEADER_MAX)
    if not line.endswith(b"\n"):
        raise SealError("not a vault entry (no header)")
    try:
        fields = json.loads(line[:-1])
    except ValueError:
        raise SealError("not a vault entry (unreadable header)") from None
    return Header(fields, line[:-1], 2 if magic == MAGIC else 1)


def expected_size(header: Header, sealed_meta_length: int) -> int:
    """The exact size of a whole version 2 entry, from what is readable without the key."""
    size, chunk = int(header.fields["size"]), int(header.fields["chunk"])
    records = max(1, -(-size // chunk))
    return header.length + 4 + sealed_meta_length + size + records * TAG


def read_sealed_meta_length(handle: IO[bytes]) -> int:
    raw = handle.read(4)
    if len(raw) != 4:
        raise SealError("cut off before its metadata")
    return struct.unpack(">I", raw)[0]


class Opened:
    """An entry opened with the vault's private key: its metadata, and its content on demand."""

    def __init__(self, handle: IO[bytes], private: X25519PrivateKey):
        self.handle = handle
        self.header = read_header(handle)
        fields = self.header.fields
        eph = unb64(fields["eph"])
        key = _record_key(private.exchange(X25519PublicKey.from_public_bytes(eph)), eph, _public_raw(private.public_key()))
        self._aead = AESGCM(key)
        if self.header.version == 1:
            plaintext = self._decrypt(unb64(fields["nonce"]), handle.read())
            (length,) = struct.unpack(">I", plaintext[:4])
            self.meta = json.loads(plaintext[4 : 4 + length])
            self._v1_content: bytes | None = plaintext[4 + length :]
            return
        self._v1_content = None
        if not 0 < int(fields["chunk"]) <= 64 * CHUNK or int(fields["size"]) < 0:
            raise SealError("damaged (header)")  # and never a giant read on a hostile header's word
        self._prefix = unb64(fields["nonce"])
        length = read_sealed_meta_length(handle)
        if length > _HEADER_MAX:
            raise SealError("damaged (metadata length)")
        self.meta = json.loads(self._decrypt(_nonce(self._prefix, 0, False), handle.read(length)))

    def _decrypt(self, nonce: bytes, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(nonce, sealed, self.header.raw)
        except InvalidTag:
            raise SealError("damaged or not sealed for this vault") from None

    def content(self) -> Iterator[bytes]:
        """The content, a chunk at a time, each authenticated before it is given out; the sha256
        of the whole is checked against the header's at the end (SealError if anything is off)."""
        digest = hashlib.sha256()
        if self._v1_content is not None:
            chunks: Iterator[bytes] = iter([self._v1_content])
        else:
            chunks = self._v2_chunks()
        for block in chunks:
            digest.update(block)
            yield block
        if digest.hexdigest() != self.header.fields["sha256"]:
            raise SealError("sealed content does not match its hash")

    def _v2_chunks(self) -> Iterator[bytes]:
        size, chunk = int(self.header.fields["size"]), int(self.header.fields["chunk"])
        remaining, number = size, 1
        while True:
            want = min(chunk, remaining)
            sealed = self.handle.read(want + TAG)
            if len(sealed) != want + TAG:
                raise SealError("cut off")
            remaining -= want
            yield self._decrypt(_nonce(self._prefix, number, remaining == 0), sealed)
            number += 1
            if remaining == 0:
                break
        if self.handle.read(1):
            raise SealError("has data past its last record")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))
