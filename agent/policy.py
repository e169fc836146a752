"""Probabilities + profile → decision. Pure: no I/O, no clocks (design: data flow).

A profile turns the five probabilities into one number and one decision (INTERFACES.md):
``malign = sum(p[c] for c in malign_classes)``; ``malign >= threshold`` → ``"malign"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from agent.classifier.scores import LABELS, Scores


@dataclass(frozen=True)
class Profile:
    name: str
    malign_classes: tuple[str, ...]
    threshold: float
    # action per source (folder, screen, video); the actions issue gives these meaning
    actions: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        unknown = [c for c in self.malign_classes if c not in LABELS]
        if unknown or not self.malign_classes:
            raise ValueError(f"profile {self.name}: malign_classes must be among {list(LABELS)}, got {list(self.malign_classes)}")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"profile {self.name}: threshold must be in (0, 1], got {self.threshold}")


BUILTIN_PROFILES: dict[str, Profile] = {
    "child": Profile("child", ("porn", "hentai", "sexy"), 0.30, {"folder": "quarantine", "screen": "blur", "video": "quarantine"}),
    "teen": Profile("teen", ("porn", "hentai"), 0.50, {"folder": "quarantine", "screen": "blur", "video": "quarantine"}),
    "adult": Profile("adult", ("porn", "hentai"), 0.80, {"folder": "log", "screen": "blur", "video": "log"}),
}


@dataclass(frozen=True)
class Decision:
    prediction: Literal["benign", "malign"]
    malign: float
    profile: str

    @property
    def benign(self) -> float:
        return 1.0 - self.malign

    @property
    def flagged(self) -> bool:
        return self.prediction == "malign"


def decide(scores: Scores, profile: Profile) -> Decision:
    malign = scores.malign(profile.malign_classes)
    return Decision("malign" if malign >= profile.threshold else "benign", malign, profile.name)


def worst_frame(frame_scores: list[Scores], profile: Profile) -> int:
    """Index of the most malign frame under the profile (first one on ties)."""
    values = [s.malign(profile.malign_classes) for s in frame_scores]
    return max(range(len(values)), key=values.__getitem__)


class Smoother:
    """Screen samples → episodes (design: running modes). An episode starts when ``k`` of the
    last ``n`` samples are flagged and ends after ``m`` clean samples in a row, so one noisy
    frame neither blurs nor unblurs. Pure: the caller feeds one decision per sample."""

    def __init__(self, k: int = 2, n: int = 3, m: int = 3):
        if not 1 <= k <= n or m < 1:
            raise ValueError(f"need 1 <= k <= n and m >= 1 (k={k}, n={n}, m={m})")
        self.k, self.n, self.m = k, n, m
        self._recent: list[bool] = []
        self._clean_run = 0
        self.active = False

    @property
    def pending(self) -> bool:
        """Flagged samples seen, episode not started yet: worth confirming soon."""
        return not self.active and any(self._recent)

    def update(self, flagged: bool) -> str | None:
        """"start" or "end" when the episode state changes with this sample, else None."""
        self._recent = (self._recent + [flagged])[-self.n:]
        self._clean_run = 0 if flagged else self._clean_run + 1
        if not self.active and sum(self._recent) >= self.k:
            self.active = True
            return "start"
        if self.active and self._clean_run >= self.m:
            self.active = False
            self._recent = []
            return "end"
        return None
