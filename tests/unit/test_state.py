"""The state database: what identifies a decided file, and databases from earlier versions."""

import os
import sqlite3
from pathlib import Path

from agent.classifier.scores import Scores
from agent.regions import Region, RegionScores
from agent.state import Identity, KnownContent, StateDB


def test_an_overwrite_that_keeps_size_and_mtime_is_another_identity(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"a" * 100)
    before = Identity.of(os.lstat(path))
    mtime = os.lstat(path).st_mtime_ns
    with open(path, "r+b") as handle:
        handle.write(b"b" * 100)
    os.utime(path, ns=(mtime, mtime))  # what `touch -d` does
    after = Identity.of(os.lstat(path))
    assert (after.size, after.mtime_ns, after.inode) == (before.size, before.mtime_ns, before.inode)
    assert after != before  # the ctime moved, and nobody can set it back


def test_a_database_from_before_ctime_gains_the_columns_and_judges_its_files_once_more(tmp_path):
    old = tmp_path / "state.sqlite3"
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE files (path BLOB PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, sha256 TEXT, "
               "decision TEXT, malign REAL, action TEXT, detail TEXT, status TEXT, decided_at REAL)")
    db.execute("INSERT INTO files VALUES (?, 10, 20, 30, 's', 'benign', 0.1, 'none', '', 'done', 1.0)", (os.fsencode("/x/a.jpg"),))
    db.commit()
    db.close()
    state = StateDB(old)
    again = StateDB(old)  # a second process opening it at once finds the columns there
    now = Identity(10, 20, 30, 40, 50)
    assert state.lookup(Path("/x/a.jpg")) is not None and not state.is_decided(Path("/x/a.jpg"), now)
    state.record(Path("/x/a.jpg"), now, "s", "benign", 0.1, "none")
    assert again.is_decided(Path("/x/a.jpg"), now)
    state.close()
    again.close()


def test_a_database_from_before_regions_opens_and_keeps_them(tmp_path):
    """A state file written by the previous version (no ``regions`` table) opens as it is: what it
    knows stays known, marked as judged without regions; new contents keep their regions' scores
    (and the mirror views taken) in a table of their own, so the older version can still write."""
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE contents (sha256 TEXT PRIMARY KEY, scores TEXT, frames INTEGER, worst_frame INTEGER, note TEXT,
                               video INTEGER, decided_at REAL);
        INSERT INTO contents VALUES ('aa', '[0.1, 0.1, 0.6, 0.1, 0.1]', 1, 0, NULL, 0, 0);
    """)
    old.commit()
    old.close()
    state = StateDB(path)
    try:
        assert state.known_content("aa").regions is None
        whole, tile, mirror = Scores((0.0, 0.0, 0.9, 0.05, 0.05)), Scores((0.0, 0.0, 0.05, 0.9, 0.05)), Scores((0.0, 0.0, 0.1, 0.85, 0.05))
        regions = RegionScores((Region(0, 0, 600, 400), Region(600, 0, 600, 400)), (whole, tile), {1: mirror})
        state.remember_content("bb", KnownContent(whole, 1, 0, None, False, regions))
        assert state.known_content("bb") == KnownContent(whole, 1, 0, None, False, regions)
        state.remember_content("bb", KnownContent(whole, 1, 0, None, False, None))  # judged again without regions
        assert state.known_content("bb").regions is None
    finally:
        state.close()
    older = sqlite3.connect(path)  # what the previous version's insert looks like still works
    older.execute("INSERT OR REPLACE INTO contents VALUES ('cc', '[0.2, 0.2, 0.2, 0.2, 0.2]', 1, 0, NULL, 0, 0)")
    older.commit()
    older.close()
