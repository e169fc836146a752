"""TOML config → validated, typed, frozen config (design: style 5).

Every key is checked by name; unknown keys and bad values are ``ConfigError`` naming the key.
With no file at all Veil runs on the built-in defaults below.

This module covers ``[agent]`` and ``[model]``; the other sections of INTERFACES.md are
accepted as tables and validated by the issues that give them meaning.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import ConfigError

ACCELERATORS = ("auto", "cpu", "gpu")
BACKENDS = ("auto", "litert", "tflite_runtime", "tensorflow")

# Sections whose full schema later issues add; until then they must at least be tables.
_PENDING_SECTIONS = {"profiles": dict, "watch": list, "screen": dict, "audit": dict, "quarantine": dict}


@dataclass(frozen=True)
class AgentSection:
    profile: str = "child"
    data_dir: str = ""  # "" = the platform's user data dir


@dataclass(frozen=True)
class ModelSection:
    path: str = ""  # "" = the bundled int8 model
    accelerator: str = "auto"
    threads: int = 0  # 0 = all cores
    backend: str = "auto"


@dataclass(frozen=True)
class Config:
    agent: AgentSection = field(default_factory=AgentSection)
    model: ModelSection = field(default_factory=ModelSection)
    source: Path | None = None  # the file it came from; None for built-in defaults
    pending: dict[str, Any] = field(default_factory=dict)


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _typed(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = table[key]
    # bool is an int in Python; a threads = true is still a mistake.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}.{key}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def _section(raw: dict[str, Any], name: str, cls: type) -> Any:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{name}: expected a table")
    defaults = cls()
    fields = {f: type(getattr(defaults, f)) for f in defaults.__dataclass_fields__}
    _check_keys(table, set(fields), name)
    return cls(**{key: _typed(table, key, fields[key], name) for key in table})


def parse_config(raw: dict[str, Any], source: Path | None = None) -> Config:
    """Validate a parsed TOML document."""
    known = {"agent", "model", *_PENDING_SECTIONS}
    _check_keys(raw, known, "config")
    agent = _section(raw, "agent", AgentSection)
    model = _section(raw, "model", ModelSection)
    if model.accelerator not in ACCELERATORS:
        raise ConfigError(f"model.accelerator: {model.accelerator!r} is not one of {', '.join(ACCELERATORS)}")
    if model.backend not in BACKENDS:
        raise ConfigError(f"model.backend: {model.backend!r} is not one of {', '.join(BACKENDS)}")
    if model.threads < 0:
        raise ConfigError(f"model.threads: must be >= 0 (0 = all cores), got {model.threads}")
    pending = {}
    for name, kind in _PENDING_SECTIONS.items():
        if name in raw:
            if not isinstance(raw[name], kind):
                raise ConfigError(f"{name}: expected {'an array of tables' if kind is list else 'a table'}")
            pending[name] = raw[name]
    return Config(agent=agent, model=model, source=source, pending=pending)


def load_config(path: Path | None) -> Config:
    """Load ``path``; ``None`` means built-in defaults."""
    if path is None:
        return Config()
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    try:
        return parse_config(raw, source=path)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def resolve_config(explicit: Path | None, user_file: Path) -> Config:
    """The config a command uses: ``--config FILE``, else the user file if it exists, else defaults."""
    if explicit is not None:
        return load_config(explicit)
    if user_file.is_file():
        return load_config(user_file)
    return Config()
