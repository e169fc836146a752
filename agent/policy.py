"""Probabilities + profile → decision. Pure: no I/O, no clocks (design: data flow).

A profile turns the five probabilities into one number and one decision (INTERFACES.md):
``malign = sum(p[c] for c in malign_classes)``; ``malign >= threshold`` → ``"malign"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    prediction: str  # "benign" | "malign"
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
