"""An outcome sink (agent/outcome.py): what the agent has decided since it started, for its
status, the tray and ``veil run --once``'s summary."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.outcome import Outcome

log = logging.getLogger(__name__)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Tally:
    decided: int
    flagged: int
    errors: int
    last_event: str
    last_flag_at: float | None  # when something was last blocked (file or screen)


class Counters:
    def __init__(self, keep_outcomes: bool = False):
        self._lock = threading.Lock()
        self.decided = self.flagged = self.errors = 0
        self.last_event = ""
        self.last_flag_at: float | None = None
        self.keep_outcomes = keep_outcomes
        self.outcomes: list[Outcome] = []  # kept only for --once (bounded by the folders)

    def __call__(self, outcome: Outcome) -> None:
        now = time.time()
        with self._lock:
            if outcome.source == "screen":
                if outcome.flagged:
                    self.last_flag_at = now
                self.last_event = f"{iso(now)} {outcome.subject}: {outcome.detail}" + (f"; {outcome.action}" if outcome.flagged else "")
                log.info(self.last_event)
                return
            if outcome.decision in ("benign", "malign", "error"):
                self.decided += 1
            self.flagged += outcome.decision == "malign"
            self.errors += outcome.decision == "error"
            if outcome.decision == "malign":
                self.last_flag_at = now
            if outcome.decision in ("malign", "error") and outcome.path is not None:
                self.last_event = f"{iso(now)} {outcome.path.name}: {outcome.decision}, {outcome.action}"
            if self.keep_outcomes:
                self.outcomes.append(outcome)

    def note(self, event: str) -> None:
        """Something worth showing as the last event that is not an outcome (a scan started)."""
        with self._lock:
            self.last_event = f"{iso(time.time())} {event}"

    def tally(self) -> Tally:
        with self._lock:
            return Tally(self.decided, self.flagged, self.errors, self.last_event, self.last_flag_at)
