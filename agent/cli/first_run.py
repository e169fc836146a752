"""``veil setup``: the PIN, the profile, the watched folders and screen protection, at a terminal
or from options (scripts), written to the user config file with its comments kept."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.cli.common import config_of, open_audit, open_vault, parent_controls, read_pin
from agent.errors import EXIT_OK, FatalError


def _ask(prompt: str, default: str) -> str:
    answer = input(f"{prompt} [{default}]: ").strip()
    return answer or default


def cmd_setup(args: argparse.Namespace) -> int:
    from agent.config import Config, ConfigError
    from agent.dirs import user_config_file
    from agent.setup_flow import SetupChoice, apply_setup, current_choice, pin_problem
    from agent.vault import PinError

    path: Path = args.config or user_config_file()
    config = config_of(args) if path.exists() else Config()  # a file to be written: the defaults until then
    audit = open_audit(config)
    controls = parent_controls(config, audit, open_vault(config, audit))
    controls.refuse_if_locked("setup")
    controls.vault.keyring.ensure()
    interactive = sys.stdin.isatty() and not (args.profile or args.watch or args.screen)
    current_pin = read_pin("current PIN: ") if controls.pin_set else None
    if controls.pin_set and current_pin is None:
        raise FatalError("a PIN is set: type it at a terminal, or set VEIL_PIN")
    before = current_choice(config)
    # a folder named on the command line is taken from here; "~/…" is kept as written (each user's own home)
    given = tuple(f if f.startswith("~") else str(Path(f).resolve()) for f in args.watch or ())
    profile, folders, screen = args.profile or before.profile, given or before.folders, before.screen
    if args.screen:
        screen = args.screen == "on"
    if interactive:
        print(f"Veil setup: writes {path} (comments kept) and records the change in the audit log.")
        profile = _ask(f"profile ({', '.join(config.profiles)})", profile)
        folders = tuple(f.strip() for f in _ask("folders to watch, separated by ';'", "; ".join(folders)).split(";") if f.strip())
        screen = _ask("protect the screen too (yes/no)", "yes" if screen else "no").lower().startswith("y")
    new_pin = None
    if not controls.pin_set or args.new_pin:
        new_pin = read_pin("new PIN (at least 6 characters): ", env="VEIL_NEW_PIN", twice=True)
        if new_pin is None:
            raise FatalError("no new PIN given (type it at a terminal, or set VEIL_NEW_PIN)")
        problem = pin_problem(new_pin, new_pin)
        if problem:
            raise FatalError(problem)
    try:
        written = apply_setup(path, SetupChoice(profile, folders, screen, new_pin), controls, current_pin, by="veil setup")
    except (ConfigError, PinError, OSError) as err:
        raise FatalError(str(err).removeprefix(f"{path}: ")) from None
    if new_pin is not None:
        print("PIN set: pause, profile, quit, restore and setup now ask for it")
    print(f"wrote {path}: profile {written.agent.profile}; watching {', '.join(w.path for w in written.watch)}; "
          f"screen {'on' if written.screen.enabled else 'off'}")
    print("a running agent takes the profile now and the folders and screen setting at its next start")
    return EXIT_OK
