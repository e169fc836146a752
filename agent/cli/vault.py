"""``veil quarantine`` and ``veil pin``: the parent's controls (agent/controls.py) at a terminal."""

from __future__ import annotations

import argparse

from agent.cli.common import config_of, open_audit, open_vault, parent_controls, read_pin, unlock
from agent.errors import EXIT_OK


def cmd_quarantine(args: argparse.Namespace) -> int:
    import json

    from agent.errors import FatalError
    from agent.fsutil import display_path
    from agent.vault import VaultError

    config = config_of(args)
    audit = open_audit(config)
    vault = open_vault(config, audit)
    if not vault.keyring.path.exists():
        if args.quarantine_command != "list":
            raise FatalError("the quarantine vault does not exist yet")
        print("the quarantine is empty")
        return EXIT_OK
    controls = parent_controls(config, audit, vault)
    private = unlock(controls, "quarantine vault")
    if args.quarantine_command == "purge":
        print(f"purged {controls.purge(args.older_than)} entries")
        return EXIT_OK
    if args.quarantine_command == "list":
        import time as _time

        for entry in controls.entries(private):
            row = {"id": entry.id, "time": _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(entry.time)),
                   "original": display_path(entry.original), "size": entry.meta["size"],
                   "malign": entry.meta.get("malign"), "profile": entry.meta.get("profile")}
            if args.format == "jsonl":
                print(json.dumps(row, ensure_ascii=False))
            else:
                malign = f"{row['malign']:.3f}" if isinstance(row["malign"], float) else "-"
                print(f"{row['id']}  {row['time']}  {row['size']:>10}  {malign:>6}  {row['profile'] or '-':<6}  {row['original']}")
        return EXIT_OK
    try:
        target = controls.restore(args.id, private, args.to)
    except VaultError as err:
        raise FatalError(str(err)) from None
    print(f"restored {display_path(target)}")
    return EXIT_OK


def cmd_pin(args: argparse.Namespace) -> int:
    from agent.errors import FatalError

    config = config_of(args)
    audit = open_audit(config)
    controls = parent_controls(config, audit, open_vault(config, audit))
    controls.vault.keyring.ensure()
    current = read_pin("current PIN: ") if controls.pin_set else None
    if args.pin_command == "set":
        new_env = "VEIL_NEW_PIN" if controls.pin_set else "VEIL_PIN"
        new = read_pin("new PIN: ", env=new_env, twice=True)
        if not new:
            raise FatalError(f"no PIN given (type it at a terminal, or set {new_env})")
        controls.set_pin(current, new)
    else:
        controls.clear_pin(current)
    print(f"PIN {'set' if args.pin_command == 'set' else 'cleared'}")
    return EXIT_OK

