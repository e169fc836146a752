"""``veil audit verify|tail``."""

from __future__ import annotations

import argparse
import sys

from agent.cli.common import config_of
from agent.errors import EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from agent.audit import log_files, readable, tail, verify
    from agent.errors import EXIT_FLAGGED, FatalError

    if args.audit_command == "verify":
        path = args.file or config_of(args).audit_file
        if args.file is not None and not path.exists():
            raise FatalError(f"{path}: no such audit log")
        if args.file is None and not log_files(path) and not path.with_name(path.name + ".head").exists():
            print(f"{path}: no audit log yet")
            return EXIT_OK
        result = verify(path, whole_chain=args.file is None)
        if result.ok:
            print(f"{path}: intact ({result.rows} rows)")
            return EXIT_OK
        print(f"veil: audit log broken: {result.problem}", file=sys.stderr)
        return EXIT_FLAGGED
    for row in tail(config_of(args).audit_file, args.n):
        print(readable(row))
    return EXIT_OK

