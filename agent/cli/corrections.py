"""``veil allow`` and ``veil block``: the parent's corrections by picture (agent/corrections.py)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from agent.cli.common import config_of, open_audit, open_state, open_vault, parent_controls, unlock
from agent.errors import EXIT_OK, EXIT_UNREADABLE, FatalError


def cmd_correct(args: argparse.Namespace) -> int:
    from agent.corrections import Corrections
    from agent.decode import DecodeError

    kind = args.command  # allow | block
    config = config_of(args)
    items: list[str] = args.items
    if items[0] == "list":
        state = open_state(config)
        try:
            found = [c for c in Corrections(state).all() if c.kind == kind]
        finally:
            state.close()
        for c in found:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(c.added_at))
            print(f"#{c.number}  {when}  {c.hashes[0]:016x}  {c.label}")
        if not found:
            print(f"no {'allowed' if kind == 'allow' else 'blocked'} pictures", file=sys.stderr)
        return EXIT_OK
    audit = open_audit(config)
    controls = parent_controls(config, audit, open_vault(config, audit))
    verb = "allow" if kind == "allow" else "block"
    if items[0] == "remove":
        try:
            numbers = [int(n.lstrip("#")) for n in items[1:]]
        except ValueError:
            raise FatalError(f"veil {verb} remove takes correction numbers (see veil {verb} list)") from None
        if not numbers:
            raise FatalError(f"veil {verb} remove: which? (see veil {verb} list)")
        unlock(controls, f"remove {verb} corrections")
        for number in numbers:
            removed = controls.uncorrect(number, kind)
            if removed is None:
                raise FatalError(f"no {verb} correction #{number} (see veil {verb} list)")
            print(f"removed #{number} ({removed.label})")
        return EXIT_OK
    paths = [Path(item) for item in items]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FatalError(f"{missing[0]}: no such file")
    unlock(controls, f"{verb} pictures")
    status = EXIT_OK
    for path in paths:
        try:
            correction = controls.correct(kind, path)
        except DecodeError as err:
            print(f"veil: {path}: not a picture Veil can read ({err}); nothing {verb}ed", file=sys.stderr)
            status = EXIT_UNREADABLE
            continue
        said = ("allowed: it and its copies are not flagged from now on" if kind == "allow" else
                "blocked: it and its copies are flagged from now on (files already decided are judged again when they change; "
                "veil scan PATH --action quarantine acts on them now)")
        print(f"#{correction.number} {correction.label} {said}")
    return status
