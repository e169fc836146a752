"""What several commands share: the config, the audit log, the vault, the PIN prompt."""

from __future__ import annotations

import argparse
import sys


def config_of(args: argparse.Namespace):
    """``--config FILE``, else the user config file, else built-in defaults."""
    from agent.config import resolve_config
    from agent.dirs import user_config_file

    return resolve_config(getattr(args, "config", None), user_config_file())


def open_audit(config):
    from agent.audit import AuditLog

    return AuditLog(config.audit_file, int(config.audit.rotate_mb * 1024 * 1024))


def open_state(config):
    from agent.state import StateDB

    return StateDB(config.data_path / "state.sqlite3")


def open_vault(config, audit):
    """The vault, with whatever a crash left half done finished or undone first. Its key must
    be the one on record in the state DB (agent/vault.py, ``Keyring``)."""
    from agent.audit import AuditRecord
    from agent.vault import Vault

    state = []  # opened on first use: most commands never touch the keys

    def on_record():
        if not state:
            state.append(open_state(config))
        return state[0]

    vault = Vault(config.quarantine_dir, trusted=lambda: on_record().get("key_fingerprint"),
                  on_new_key=lambda fp: on_record().put(key_fingerprint=fp))
    for note in vault.recover():
        print(f"veil: quarantine: {note}", file=sys.stderr)
        audit.append(AuditRecord("agent", "error", detail=f"quarantine recovery: {note}"))
    return vault


def read_pin(prompt: str, env: str = "VEIL_PIN", twice: bool = False) -> str | None:
    """The PIN from the environment (scripts) or the terminal; None when neither can answer."""
    import getpass
    import os

    if env in os.environ:
        return os.environ[env]
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass(prompt)
    if twice and getpass.getpass("again: ") != first:
        from agent.errors import FatalError

        raise FatalError("the two PINs differ")
    return first


def parent_controls(config, audit, vault):
    """The parent's controls (agent/controls.py) on this data dir."""
    from agent.controls import ParentControls

    return ParentControls(vault, audit, state=lambda: open_state(config))


def unlock(controls, purpose: str):
    """The vault's private key; the PIN comes from VEIL_PIN or the terminal. A wrong one is audited and fatal."""
    return controls.unlock(read_pin("PIN: ") if controls.pin_set else None, purpose)

