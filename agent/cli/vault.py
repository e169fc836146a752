"""``veil quarantine`` and ``veil pin``: the parent's controls (agent/controls.py) at a terminal."""

from __future__ import annotations

import argparse

from agent.cli.common import config_of, open_audit, open_vault, parent_controls, read_pin, unlock
from agent.errors import EXIT_OK, EXIT_UNREADABLE


def cmd_quarantine(args: argparse.Namespace) -> int:
    import json

    from agent.errors import FatalError
    from agent.fsutil import display_path
    from agent.vault import VaultError

    config = config_of(args)
    audit = open_audit(config)
    vault = open_vault(config, audit)
    trouble = vault.keyring.trouble()
    if not trouble and not vault.keyring.path.exists():
        if args.quarantine_command != "list":
            raise FatalError("the quarantine vault does not exist yet")
        print("the quarantine is empty")
        return EXIT_OK
    controls = parent_controls(config, audit, vault)
    private = unlock(controls, "quarantine vault")  # refused, audited, with the trouble in one line
    if args.quarantine_command == "purge":
        print(f"purged {controls.purge(args.older_than)} entries")
        return EXIT_OK
    if args.quarantine_command == "list":
        import sys
        import time as _time

        entries, unopened = controls.vault.listing(private)
        for entry in entries:
            row = {"id": entry.id, "time": _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(entry.time)),
                   "original": display_path(entry.original), "size": entry.meta["size"],
                   "malign": entry.meta.get("malign"), "profile": entry.meta.get("profile")}
            if args.format == "jsonl":
                print(json.dumps(row, ensure_ascii=False))
            else:
                malign = f"{row['malign']:.3f}" if isinstance(row["malign"], float) else "-"
                print(f"{row['id']}  {row['time']}  {row['size']:>10}  {malign:>6}  {row['profile'] or '-':<6}  {row['original']}")
        if unopened:
            print(f"veil: {unopened} sealed entr{'y' if unopened == 1 else 'ies'} in {controls.vault.folder} cannot be opened "
                  "with this key (sealed under another key, or damaged)", file=sys.stderr)
            return EXIT_UNREADABLE
        old = sum(1 for _ in (controls.vault.folder / "old-keys").glob("*/*.veil"))
        if old:
            print(f"veil: {old} older entr{'y' if old == 1 else 'ies'} sealed under a key that was reset "
                  f"{'is' if old == 1 else 'are'} kept in {controls.vault.folder / 'old-keys'}", file=sys.stderr)
        if not entries:
            print("the quarantine is empty", file=sys.stderr)
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
    if args.pin_command == "reset":
        import sys

        if not args.yes and not (sys.stdin.isatty() and input("Make a new vault key with no PIN? Entries sealed under the "
                                                             "old key stay unreadable without it. Type RESET: ") == "RESET"):
            raise FatalError("not reset (confirm with --yes, or type RESET at a terminal)")
        print(controls.reset_keys())
        return EXIT_OK
    controls.refuse_if_locked(f"pin {args.pin_command}")  # said before any PIN is asked for
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

