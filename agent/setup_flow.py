"""First-run setup, shared by ``veil setup`` (terminal) and the tray's setup window: the PIN, the
profile, the watched folders and screen protection, written to the user config file with its
comments kept (tomlkit edits the document in place), and audited.

A PIN already set guards every change here, as it guards pause and quit: the person at the
keyboard may be the child the settings are for.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agent.config import Config, ConfigError, example_text, parse_config
from agent.vault import MIN_PIN_LENGTH


@dataclass(frozen=True)
class SetupChoice:
    profile: str
    folders: tuple[str, ...]
    screen: bool
    new_pin: str | None = None  # None: the PIN stays as it is


def current_choice(config: Config) -> SetupChoice:
    return SetupChoice(config.agent.profile, tuple(w.path for w in config.watch), config.screen.enabled)


_LABEL_WORDS = {"porn": "explicit photos", "hentai": "explicit drawings", "sexy": "suggestive pictures", "drawing": "drawings",
                "neutral": "everyday pictures"}


def profile_words(profile) -> str:
    """A profile as a parent reads it: what it blocks, and from which score."""
    kinds = [_LABEL_WORDS.get(label, label) for label in profile.malign_classes]
    return f"blocks {', '.join(kinds[:-1]) + ' and ' + kinds[-1] if len(kinds) > 1 else kinds[0]} (from a score of {profile.threshold:.2f})"


def pin_problem(pin: str, again: str) -> str:
    """Why a new PIN typed twice cannot be taken, in words; "" when it can (``veil pin set``'s rules)."""
    if pin != again:
        return "the two PINs differ"
    if len(pin) < MIN_PIN_LENGTH:
        return f"the PIN is too short: at least {MIN_PIN_LENGTH} characters"
    return ""


def edited_config(existing: str | None, choice: SetupChoice) -> str:
    """The config text with the choice applied: the user's file (or the commented example) with
    only ``[agent] profile``, the ``[[watch]]`` list and ``[screen] enabled`` changed. A folder
    kept from before keeps its own options and comments."""
    import tomlkit

    document = tomlkit.parse(existing if existing is not None else example_text())
    agent = document.setdefault("agent", tomlkit.table())
    agent["profile"] = choice.profile
    screen = document.setdefault("screen", tomlkit.table())
    screen["enabled"] = choice.screen
    if "watch" not in document:
        document.append("watch", tomlkit.aot())
    watches = document["watch"]
    kept = {str(table.get("path")) for table in watches}
    for index in reversed(range(len(watches))):  # edited in place: the list keeps its place and comments
        if str(watches[index].get("path")) not in choice.folders:
            del watches[index]
    for folder in choice.folders:
        if folder not in kept:
            table = tomlkit.table()
            table["path"] = folder
            table.add(tomlkit.nl())
            watches.append(table)
    return tomlkit.dumps(document)


def write_config_file(path: Path, text: str) -> None:
    """Replace ``path`` atomically (a crash leaves the old file or the new one, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    handle, temp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def apply_setup(path: Path, choice: SetupChoice, controls, current_pin: str | None, by: str) -> Config:
    """Check the PIN (a wrong one is audited), validate the new config, set the new PIN, write the
    file and audit the change. Returns the config written. ConfigError or PinError, with nothing
    changed, when it cannot be done."""
    if controls.pin_set:
        controls.unlock(current_pin, f"setup ({by})")  # PinError, audited
    elif not choice.new_pin:
        raise ConfigError(f"set a PIN first (at least {MIN_PIN_LENGTH} characters): until then anyone can change Veil's settings")
    if choice.new_pin is not None and len(choice.new_pin) < MIN_PIN_LENGTH:
        raise ConfigError(f"the PIN is too short: at least {MIN_PIN_LENGTH} characters")
    if not choice.folders:
        raise ConfigError("choose at least one folder to watch")
    import tomllib

    import tomlkit.exceptions

    try:
        existing = path.read_text(encoding="utf-8") if path.exists() else None
        text = edited_config(existing, choice)
        config = parse_config(tomllib.loads(text), source=path)  # ConfigError before anything changes
    except (UnicodeDecodeError, tomlkit.exceptions.TOMLKitError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path} cannot be read as TOML ({err}); fix it or move it away, then set up again") from None
    except OSError as err:
        raise ConfigError(f"{path} cannot be read ({err.strerror or err})") from None
    if choice.new_pin is not None:
        controls.set_pin(current_pin, choice.new_pin)  # audited "PIN set"
    try:
        write_config_file(path, text)
    except OSError as err:
        changed = "the new PIN is set, but " if choice.new_pin is not None else ""
        raise ConfigError(f"{changed}{path} could not be written ({err.strerror or err}); the settings are unchanged") from None
    controls.note_config(f"setup ({by}): profile {choice.profile}; watching {', '.join(choice.folders)}; "
                         f"screen {'on' if choice.screen else 'off'}; written to {path}")
    return config
