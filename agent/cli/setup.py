"""``veil config``, ``veil install``/``uninstall`` and ``veil doctor``."""

from __future__ import annotations

import argparse
import sys

from agent.cli.common import config_of, open_audit, open_vault, parent_controls, unlock
from agent.errors import EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    from agent.config import example_text, load_config
    from agent.dirs import user_config_file
    from agent.errors import FatalError

    if args.config_command == "init":
        path = args.path or user_config_file()
        if path.exists():
            raise FatalError(f"{path}: already exists; not overwritten (remove it or give another path)")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(example_text(), encoding="utf-8")
        print(f"wrote {path}")
        return EXIT_OK
    config = load_config(args.path)
    watched = ", ".join(w.path for w in config.watch) or "nothing"
    print(f"{args.path}: ok (profile {config.agent.profile}; profiles {', '.join(config.profiles)}; watching {watched})")
    return EXIT_OK


def cmd_install(args: argparse.Namespace) -> int:
    from agent.audit import AuditRecord
    from agent.dirs import user_config_file
    from agent.install import install, uninstall

    config = config_of(args)
    audit = open_audit(config)
    if args.command == "uninstall":
        vault = open_vault(config, audit)
        if vault.keyring.path.exists():
            unlock(parent_controls(config, audit, vault), "uninstall")  # a wrong or missing PIN is audited and fatal
        report = uninstall()
        audit.append(AuditRecord("agent", "config", detail="autostart removed: " + (", ".join(map(str, report.removed)) or "nothing was installed")))
        for path in report.removed:
            print(f"removed {path}")
    else:
        config_file = args.config or (user_config_file() if user_config_file().exists() else None)
        report = install(config_file)
        audit.append(AuditRecord("agent", "config", detail="autostart installed: " + ", ".join(map(str, report.written))))
        for path in report.written:
            print(f"wrote {path}")
    for note in report.notes:
        print(f"veil: {note}", file=sys.stderr)
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from agent.doctor import format_report, run_doctor

    config = config_of(args)
    report = run_doctor(config)
    print(format_report(report, args.format))
    return EXIT_OK

