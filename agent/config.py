"""TOML config → validated, typed, frozen config (design: style 5; INTERFACES.md "Config").

Every key is checked by name: unknown keys and bad values raise ``ConfigError`` naming the key.
With no file at all Veil runs on the built-in defaults below, which are exactly what
``config.example.toml`` spells out (a test holds them together).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from agent.classifier.scores import LABELS
from agent.dirs import audit_path, data_dir, quarantine_path
from agent.errors import ConfigError
from agent.policy import BUILTIN_PROFILES, Profile

ACCELERATORS = ("auto", "cpu", "gpu")
BACKENDS = ("auto", "litert", "tflite_runtime", "tensorflow")
# What each source can do with a flagged item.
ACTIONS = {
    "folder": ("none", "log", "quarantine", "blur"),
    "screen": ("none", "log", "blur"),
    "video": ("none", "log", "quarantine"),
}


MAX_STALLED_DOWNLOAD_S = 86400.0


@dataclass(frozen=True)
class AgentSection:
    profile: str = "child"
    data_dir: str = ""  # "" = the platform's user data dir
    stalled_download_s: float = 600.0  # a file under a download name nobody wrote to for this long is judged


@dataclass(frozen=True)
class ModelSection:
    path: str = ""  # "" = the bundled int8 model
    accelerator: str = "auto"
    threads: int = 0  # 0 = all cores
    backend: str = "auto"
    regions: bool = True  # also score a still's regions: a picture inside a picture (costs ~9 inferences a picture)


@dataclass(frozen=True)
class WatchSection:
    path: str = "~/Downloads"
    recursive: bool = True
    scan_existing: bool = True
    include: tuple[str, ...] = ()  # globs; empty = every supported image and video type
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScreenSection:
    enabled: bool = True
    interval_s: float = 1.0
    max_interval_s: float = 5.0  # a static screen or a busy machine stretches the interval up to this
    flag_after: int = 2  # an episode starts when flag_after of the last of_last samples are flagged
    of_last: int = 3
    clear_after: int = 3  # and ends after this many clean samples in a row


@dataclass(frozen=True)
class AuditSection:
    path: str = ""  # "" = <data_dir>/audit/audit.csv
    log_benign: bool = False
    rotate_mb: float = 10.0
    heartbeat_min: float = 10.0  # an agent/heartbeat row this often: a stretch with none is visible


@dataclass(frozen=True)
class QuarantineSection:
    path: str = ""  # "" = <data_dir>/quarantine
    retention_days: int = 30


@dataclass(frozen=True)
class NotifySection:
    enabled: bool = True
    min_interval_s: float = 30.0  # at most one desktop notification this often; a burst becomes one summary


@dataclass(frozen=True)
class Config:
    agent: AgentSection = field(default_factory=AgentSection)
    model: ModelSection = field(default_factory=ModelSection)
    profiles: dict[str, Profile] = field(default_factory=lambda: dict(BUILTIN_PROFILES))
    watch: tuple[WatchSection, ...] = (WatchSection(),)
    screen: ScreenSection = field(default_factory=ScreenSection)
    audit: AuditSection = field(default_factory=AuditSection)
    quarantine: QuarantineSection = field(default_factory=QuarantineSection)
    notify: NotifySection = field(default_factory=NotifySection)
    source: Path | None = field(default=None, compare=False)  # None for built-in defaults

    @property
    def data_path(self) -> Path:
        return data_dir(self.agent.data_dir)

    @property
    def audit_file(self) -> Path:
        return audit_path(self.audit.path, self.data_path)

    @property
    def quarantine_dir(self) -> Path:
        return quarantine_path(self.quarantine.path, self.data_path)

    @property
    def active_profile(self) -> Profile:
        return self.profiles[self.agent.profile]

    def profile(self, name: str | None) -> Profile:
        """The named profile (the active one for None); ``ConfigError`` if there is none."""
        name = name or self.agent.profile
        if name not in self.profiles:
            raise ConfigError(f"unknown profile {name!r} (known: {', '.join(self.profiles)})")
        return self.profiles[name]


def _check_keys(table: dict[str, Any], allowed: set[str] | list[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _typed(value: Any, kind: Any, where: str) -> Any:
    """``value`` as ``kind`` (str, int, float, bool, tuple[str, ...]), or ConfigError."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == tuple[str, ...]:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    # bool is an int in Python; threads = true is still a mistake.
    if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def _table(raw: Any, cls: type, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table")
    kinds = get_type_hints(cls)
    _check_keys(raw, {f.name for f in fields(cls)}, where)
    return cls(**{key: _typed(value, kinds[key], f"{where}.{key}") for key, value in raw.items()})


def _positive(value: float, where: str, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{where}: must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def _profiles(raw: Any) -> dict[str, Profile]:
    """Built-in profiles, overridden key by key and added to by ``[profiles.NAME]`` tables."""
    if not isinstance(raw, dict):
        raise ConfigError("profiles: expected a table of profiles")
    profiles = dict(BUILTIN_PROFILES)
    for name, table in raw.items():
        where = f"profiles.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table")
        _check_keys(table, {"malign_classes", "threshold", "actions"}, where)
        base = profiles.get(name)
        if base is None and not {"malign_classes", "threshold"} <= set(table):
            raise ConfigError(f"{where}: a new profile needs malign_classes and threshold")
        if "malign_classes" in table:
            classes = _typed(table["malign_classes"], tuple[str, ...], f"{where}.malign_classes")
        else:
            assert base is not None  # checked above: a new profile names both
            classes = base.malign_classes
        for label in classes:
            if label not in LABELS:
                raise ConfigError(f"{where}.malign_classes: {label!r} is not one of {', '.join(LABELS)}")
        if not classes:
            raise ConfigError(f"{where}.malign_classes: must name at least one class")
        if "threshold" in table:
            threshold = _typed(table["threshold"], float, f"{where}.threshold")
        else:
            assert base is not None
            threshold = base.threshold
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"{where}.threshold: must be in (0, 1], got {threshold}")
        actions = dict(base.actions if base else BUILTIN_PROFILES["child"].actions)
        given = table.get("actions", {})
        if not isinstance(given, dict):
            raise ConfigError(f"{where}.actions: expected a table such as {{ folder = \"quarantine\" }}")
        _check_keys(given, set(ACTIONS), f"{where}.actions")
        for source, action in given.items():
            if action not in ACTIONS[source]:
                raise ConfigError(f"{where}.actions.{source}: {action!r} is not one of {', '.join(ACTIONS[source])}")
            actions[source] = action
        profiles[name] = Profile(name, tuple(classes), threshold, actions)
    return profiles


def parse_config(raw: dict[str, Any], source: Path | None = None) -> Config:
    """Validate a parsed TOML document."""
    _check_keys(raw, {"agent", "model", "profiles", "watch", "screen", "audit", "quarantine", "notify"}, "config")
    agent = _table(raw.get("agent", {}), AgentSection, "agent")
    _positive(agent.stalled_download_s, "agent.stalled_download_s")
    if agent.stalled_download_s > MAX_STALLED_DOWNLOAD_S:  # else a download name would be a hiding place again
        raise ConfigError(f"agent.stalled_download_s: at most {MAX_STALLED_DOWNLOAD_S:g} s (one day), got {agent.stalled_download_s:g}")
    model = _table(raw.get("model", {}), ModelSection, "model")
    if model.accelerator not in ACCELERATORS:
        raise ConfigError(f"model.accelerator: {model.accelerator!r} is not one of {', '.join(ACCELERATORS)}")
    if model.backend not in BACKENDS:
        raise ConfigError(f"model.backend: {model.backend!r} is not one of {', '.join(BACKENDS)}")
    _positive(model.threads, "model.threads (0 = all cores)", allow_zero=True)
    profiles = _profiles(raw.get("profiles", {}))
    if agent.profile not in profiles:
        raise ConfigError(f"agent.profile: no profile named {agent.profile!r} (known: {', '.join(profiles)})")
    watch_raw = raw.get("watch", [{}])
    if not isinstance(watch_raw, list):
        raise ConfigError("watch: expected [[watch]] tables")
    watch = tuple(_table(entry, WatchSection, f"watch[{i}]") for i, entry in enumerate(watch_raw))
    screen = _table(raw.get("screen", {}), ScreenSection, "screen")
    _positive(screen.interval_s, "screen.interval_s")
    if screen.max_interval_s < screen.interval_s:
        raise ConfigError("screen.max_interval_s: must be >= screen.interval_s")
    if not 1 <= screen.flag_after <= screen.of_last or screen.clear_after < 1:
        raise ConfigError("screen.flag_after/of_last/clear_after: need 1 <= flag_after <= of_last and clear_after >= 1")
    audit = _table(raw.get("audit", {}), AuditSection, "audit")
    _positive(audit.rotate_mb, "audit.rotate_mb")
    _positive(audit.heartbeat_min, "audit.heartbeat_min")
    quarantine = _table(raw.get("quarantine", {}), QuarantineSection, "quarantine")
    _positive(quarantine.retention_days, "quarantine.retention_days", allow_zero=True)
    notify = _table(raw.get("notify", {}), NotifySection, "notify")
    _positive(notify.min_interval_s, "notify.min_interval_s", allow_zero=True)
    config = Config(agent, model, profiles, watch, screen, audit, quarantine, notify, source)
    check_own_folders(config)
    return config


def check_own_folders(config: Config) -> None:
    """Veil never judges its own folders (data dir, vault, audit log's folder), so none of them
    may be, or hold, a watched folder: that would quietly switch the watch off."""
    own = {"agent.data_dir": config.data_path, "quarantine.path": config.quarantine_dir, "audit.path": config.audit_file.parent}
    for watch in config.watch:
        root = Path(watch.path).expanduser().resolve()
        for key, folder in own.items():
            folder = folder.expanduser().resolve()
            if folder == root or folder in root.parents:
                raise ConfigError(f"{key}: Veil's own folder {folder} would hide the watched folder {root} "
                                  "(Veil never judges its own files); choose a folder outside it")


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


def example_text() -> str:
    """The commented example config shipped with Veil (``veil config init`` writes it)."""
    from importlib import resources

    return (resources.files("agent") / "config.example.toml").read_text(encoding="utf-8")
