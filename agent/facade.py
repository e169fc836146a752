"""What the tray (and any other shell) may ask of the running agent: a small typed facade
(design: style 9). ``App`` implements it; the tray depends on this Protocol, never on the App
itself, and its tests build a ``Status`` instead of a hand-made dict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from agent.policy import Profile
from agent.setup_flow import SetupChoice

AgentState = Literal["protecting", "paused", "failed"]


@dataclass(frozen=True)
class Status:
    state: AgentState
    profile: str
    profiles: tuple[str, ...]
    paused_until: float | None = None  # while paused
    watching: tuple[str, ...] = ()  # each watched root, marked "(polling)" or "(missing)" where so
    screen: str = "screen: off"
    decided: int = 0
    flagged: int = 0
    errors: int = 0
    backlog: int = 0  # queued for the workers
    pending: int = 0  # still being written
    last_event: str = ""
    last_flag_at: float | None = None  # when something was last blocked (file or screen)
    failure: str = ""  # why the workers gave up, if they did
    trouble: str = ""  # files that could not be handled yet, in words
    pin_set: bool = True  # False: anyone at the keyboard can pause, quit or change Veil (first run)


class AgentFacade(Protocol):
    """The agent as the tray sees it. PIN-guarded doings: the caller asks the person at the
    keyboard, the agent checks the PIN and audits (``unlock`` raises PinError)."""

    @property
    def profile(self) -> Profile: ...

    @property
    def pin_set(self) -> bool: ...

    def status(self) -> Status: ...

    def pause(self, minutes: float, by: str = "") -> None: ...

    def resume(self, by: str = "") -> None: ...

    def set_profile(self, name: str, by: str = "") -> None: ...

    def unlock(self, pin: str | None, purpose: str) -> Any: ...

    def quarantined(self, private: Any) -> list[Any]: ...

    def restore(self, entry_id: str, private: Any, by: str = "") -> Path: ...

    def scan_folder(self, folder: Path) -> int: ...

    def audit_tail(self, count: int = 200) -> list[dict[str, str]]: ...

    def audit_check(self) -> str: ...

    def write_report(self, days: float = 7.0) -> Path: ...

    def correct(self, kind: str, picture: Path) -> str: ...

    def setup_choice(self) -> tuple[SetupChoice, dict[str, str]]: ...

    def apply_setup(self, choice: SetupChoice, current_pin: str | None) -> str: ...

    def about(self) -> list[str]: ...
