"""The classifier's output: five probabilities, nothing about profiles (design: style 1)."""

from __future__ import annotations

from dataclasses import dataclass

LABELS: tuple[str, ...] = ("drawing", "hentai", "neutral", "porn", "sexy")


@dataclass(frozen=True)
class Scores:
    """Probabilities in LABELS order; they sum to 1 ± 0.01."""

    probs: tuple[float, ...]  # one per label

    def __getitem__(self, label: str) -> float:
        return self.probs[LABELS.index(label)]

    def as_dict(self) -> dict[str, float]:
        return dict(zip(LABELS, self.probs))

    @property
    def top(self) -> str:
        return LABELS[max(range(len(LABELS)), key=self.probs.__getitem__)]

    def malign(self, classes: tuple[str, ...] | list[str]) -> float:
        """Sum of the given classes' probabilities, clipped to [0, 1]."""
        return min(1.0, max(0.0, sum(self[c] for c in classes)))
