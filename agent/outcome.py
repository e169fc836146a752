"""What happened to one thing Veil judged, and the one place where that fans out.

The names a decision and an action can have are defined here once (INTERFACES.md, the audit
log's ``decision`` and ``action`` columns); every module spells them through these types.

The folder decider and the screen guard each emit an ``Outcome`` to one ``Fanout``; whoever
wants to know (counters and the tray's status today, notifications and reports next) is one
sink added where the agent is wired (agent/app.py). The audit row is not a sink: it is written
inside the decider's exactly-once sequence, before the decision is marked done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

log = logging.getLogger(__name__)

# What the model and the profile said of a file or a screen.
Prediction = Literal["benign", "malign", "error"]
# What the agent records for a file it did not judge: not media, Veil's own blurred stand-in,
# or content a parent restored from the quarantine (allowed).
Skipped = Literal["ignored", "standin", "allowed"]
# What was done about it. ``log`` leaves a flagged file in place with an audit row.
ActionName = Literal["none", "log", "quarantine", "blur"]
ACTION_NAMES: tuple[ActionName, ...] = get_args(ActionName)
MOVING_ACTIONS: frozenset[ActionName] = frozenset({"quarantine", "blur"})
# Who judged it: the folder agent, `veil scan`, the screen guard.
Source = Literal["folder", "scan", "screen"]


def action_name(value: str, where: str) -> ActionName:
    """A config or command-line string as an action; ValueError names the place and the choices."""
    if value not in ACTION_NAMES:
        raise ValueError(f"{where}: {value!r} is not one of {', '.join(ACTION_NAMES)}")
    return value  # narrowed to the Literal by the test above


@dataclass(frozen=True)
class Outcome:
    """One judged file or screen episode, after its action and audit row."""

    subject: str  # as the audit log names it: a file's path, or ``screen:N``
    decision: Prediction | Skipped
    action: ActionName = "none"
    detail: str = ""
    source: Source = "folder"
    path: Path | None = None  # the file, for sources that judge files
    attempted: ActionName = "none"  # an action that was tried and failed (the file is still there)
    final: bool = True  # False: the file could not be read or acted on, and is tried again later
    other_names: int = 0  # hard links to a moved file that still hold its bytes

    @property
    def flagged(self) -> bool:
        return self.decision == "malign"


OutcomeSink = Callable[[Outcome], None]


class Fanout:
    """Hands each outcome to every sink, in the order they were added. A sink that raises is
    logged and skipped: a broken notifier must never stop a file from being decided."""

    def __init__(self, sinks: Iterable[OutcomeSink] = ()):
        self._sinks: list[OutcomeSink] = list(sinks)

    def add(self, sink: OutcomeSink) -> None:
        self._sinks.append(sink)

    def __call__(self, outcome: Outcome) -> None:
        for sink in self._sinks:
            try:
                sink(outcome)
            except Exception:
                log.exception("outcome sink %r failed on %s", sink, outcome.subject)
