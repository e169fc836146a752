"""Desktop thumbnail caches keep a copy of a picture after the picture is gone: file managers
following the freedesktop.org thumbnail spec (GNOME, KDE, Xfce and the like) store one PNG per
file and size under ``$XDG_CACHE_HOME/thumbnails``, named by the MD5 of the file's URI. When
Veil quarantines or blurs a file, those copies go too (every size, and failure markers)."""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from pathlib import Path

SIZES = ("normal", "large", "x-large", "xx-large")
# How GLib writes a path into a URI (g_filename_to_uri): these stay as they are. Python's quote
# keeps fewer; both spellings are tried, so a thumbnail is found whichever wrote it.
_GLIB_SAFE = "/!$&'()*+,-.:=@_~"


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "thumbnails"


def thumbnail_names(path: Path) -> set[str]:
    raw = os.fsencode(path.absolute())
    uris = {"file://" + urllib.parse.quote(raw, safe=safe) for safe in (_GLIB_SAFE, "/")}
    return {hashlib.md5(uri.encode("ascii"), usedforsecurity=False).hexdigest() + ".png" for uri in uris}


def forget_thumbnails(path: Path) -> int:
    """Remove the cached thumbnails of ``path``; returns how many there were. Never raises: a
    cache Veil cannot clean is no reason to leave a file in place."""
    try:
        root = cache_root()
        names = thumbnail_names(path)
        failures = [folder for folder in (root / "fail").iterdir() if folder.is_dir()] if (root / "fail").is_dir() else []
    except (OSError, RuntimeError, ValueError):  # no home, an unreadable cache: nothing Veil can clean
        return 0
    removed = 0
    for name in names:
        for candidate in [root / size / name for size in SIZES] + [folder / name for folder in failures]:
            try:
                candidate.unlink()
                removed += 1
            except OSError:
                continue
    return removed
