"""``veil audit verify|tail``."""

from __future__ import annotations

import argparse
import contextlib
import sys

from agent.cli.common import config_of
from agent.errors import EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from agent.audit import log_files, readable, tail, verify
    from agent.errors import EXIT_FLAGGED, FatalError

    if args.audit_command == "verify":
        config = config_of(args)
        path = args.file or config.audit_file
        if args.file is not None and not path.exists():
            raise FatalError(f"{path}: no such audit log")
        activity = "" if args.file is not None else earlier_activity(config)
        if args.file is None and not log_files(path) and not path.with_name(path.name + ".head").exists() and not activity:
            print(f"{path}: no audit log yet")
            return EXIT_OK
        result = verify(path, whole_chain=args.file is None, earlier_activity=activity)
        if result.ok:
            print(f"{path}: intact ({result.rows} rows)")
            return EXIT_OK
        print(f"veil: audit log broken: {result.problem}", file=sys.stderr)
        return EXIT_FLAGGED
    for row in tail(config_of(args).audit_file, args.n):
        print(readable(row))
    return EXIT_OK



def earlier_activity(config) -> str:
    """What the data dir shows Veil has done before (so a log should exist), in words; empty if nothing."""
    import sqlite3

    signs = []
    entries = sum(1 for _ in config.quarantine_dir.glob("*.veil")) if config.quarantine_dir.is_dir() else 0
    if entries:
        signs.append(f"the vault holds {entries} entr{'y' if entries == 1 else 'ies'}")
    state = config.data_path / "state.sqlite3"
    if state.exists():
        try:
            with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as db:
                started = db.execute("SELECT value FROM meta WHERE key = 'first_start'").fetchone()
                decided = db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        except sqlite3.Error:
            started, decided = None, 0
        if started or decided:
            signs.append(f"the state database records {decided} decided files")
    return " and ".join(signs)
