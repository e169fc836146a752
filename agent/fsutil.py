"""Small, durable file operations shared by the audit log, the vault and the model checks."""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO


def fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes | Iterable[bytes], mode: int = 0o600, replace: bool = True) -> bool:
    """Write to a fresh temporary name, fsync, rename over ``path``, fsync the folder.

    The temporary name is unique and created exclusively, so concurrent writers (threads or
    processes) never share one, and a neighbour of the user's that happens to be called like a
    temporary is never touched. With ``replace=False`` the first writer wins: an existing
    ``path`` is left alone and False returned (how a key pair is created exactly once).
    ``data`` may come in pieces (a sealed video, a chunk at a time); whatever they raise
    removes the temporary and is raised.
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # exactly ``mode``: Veil runs under a private umask (agent/cli), a stand-in keeps the original's
        with os.fdopen(fd, "wb") as handle:
            for piece in [data] if isinstance(data, bytes) else data:
                handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temp, path)
        else:
            written = _link_if_absent(temp, path)
            temp.unlink(missing_ok=True)
            if not written:
                return False
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return True


def _link_if_absent(temp: Path, path: Path) -> bool:
    """Atomically give ``temp``'s content the name ``path`` unless that name exists."""
    try:
        os.link(temp, path)
        return True
    except FileExistsError:
        return False
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
    # a file system without hard links (FAT, some network mounts): a check, then a rename —
    # racy in theory, and such a data folder is rare
    if path.exists():
        return False
    os.replace(temp, path)
    return True


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_private(folder: Path, walk: bool = True) -> None:
    """``folder`` (Veil's data dir or one of its own folders) readable by its owner only: 0700,
    and, with ``walk``, everything in it 0700/0600, including what was made before Veil was this
    strict. Symlinks are left alone. (A data dir itself is not walked: it may be set to a folder
    that holds other things; 0700 on it is enough to keep others out.)"""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    if not walk:
        return
    for root, dirs, files in os.walk(folder):
        for name, mode in [(d, 0o700) for d in dirs] + [(f, 0o600) for f in files]:
            path = os.path.join(root, name)
            try:
                if not os.path.islink(path) and stat.S_IMODE(os.lstat(path).st_mode) & 0o077:
                    os.chmod(path, mode)
            except FileNotFoundError:
                continue  # gone meanwhile (a temporary of the audit head): nothing to protect


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading as it is now: a symlink put in its place is not followed (ELOOP)
    and a FIFO does not block the open; OSError unless it is a regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def display_path(path: Path) -> str:
    """The path as text; bytes that are not UTF-8 are shown as \\xNN instead of failing."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
