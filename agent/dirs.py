"""Where Veil keeps its files: the platform's user dirs for "veil", overridable by config."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "veil"


def user_config_file() -> Path:
    """The user config file (``VEIL_CONFIG`` overrides)."""
    env = os.environ.get("VEIL_CONFIG")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def data_dir(configured: str) -> Path:
    """``[agent] data_dir`` if set, else the platform default."""
    return Path(configured).expanduser() if configured else default_data_dir()


def audit_path(configured: str, data: Path) -> Path:
    """``[audit] path`` if set, else ``<data_dir>/audit/audit.csv``."""
    return Path(configured).expanduser() if configured else data / "audit" / "audit.csv"


def quarantine_path(configured: str, data: Path) -> Path:
    """``[quarantine] path`` if set, else ``<data_dir>/quarantine``."""
    return Path(configured).expanduser() if configured else data / "quarantine"
