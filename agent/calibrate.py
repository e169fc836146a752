"""``veil calibrate``: how well each profile separates a family's own benign pictures from pictures
that should be flagged, and which threshold gives a chosen false-alarm rate. Numbers only as good
as the folders given: the command says so.

A picture's score under a profile is its whole-picture malign score (the sum of the profile's
classes), as the threshold is applied; region tiles keep their own stricter rule (agent/regions.py)
and are not calibrated here. An animation or a video counts with its worst frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agent.policy import Profile


@dataclass
class Curve:
    """One profile's ROC: false-alarm rate and catch rate at each threshold (descending)."""

    profile: Profile
    benign: np.ndarray  # the benign pictures' scores under this profile
    flagged: np.ndarray
    thresholds: np.ndarray = field(init=False)
    false_alarms: np.ndarray = field(init=False)
    catches: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        cuts = np.unique(np.concatenate([self.benign, self.flagged, [0.0, 1.0 + 1e-9]]))[::-1]
        self.thresholds = cuts
        self.false_alarms = np.array([(self.benign >= t).mean() if self.benign.size else 0.0 for t in cuts])
        self.catches = np.array([(self.flagged >= t).mean() if self.flagged.size else 0.0 for t in cuts])

    @property
    def auc(self) -> float:
        """The chance that a flagged picture scores above a benign one (ties count half)."""
        if not self.benign.size or not self.flagged.size:
            return float("nan")
        # Mann–Whitney from average ranks: memory linear in the pictures, not their product
        values = np.concatenate([self.flagged, self.benign])
        _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        ends = np.cumsum(counts)
        ranks = (ends - (counts - 1) / 2)[inverse]  # 1-based, ties averaged
        n, m = self.flagged.size, self.benign.size
        return float((ranks[:n].sum() - n * (n + 1) / 2) / (n * m))

    def at(self, threshold: float) -> tuple[float, float]:
        """(false-alarm rate, miss rate) at ``threshold``."""
        false_alarm = float((self.benign >= threshold).mean()) if self.benign.size else 0.0
        miss = float((self.flagged < threshold).mean()) if self.flagged.size else 0.0
        return false_alarm, miss

    def threshold_for(self, max_false_alarms: float) -> float:
        """The lowest threshold (most catches) whose false-alarm rate is at most ``max_false_alarms``,
        just above the benign score it must not reach."""
        allowed = sorted(self.benign, reverse=True)
        k = int(np.floor(max_false_alarms * len(allowed) + 1e-9))  # benign pictures allowed to flag
        if k >= len(allowed):
            return 0.01
        return float(min(1.0, np.nextafter(allowed[k], 2.0)))


def curves(benign: list[np.ndarray], flagged: list[np.ndarray], profiles: dict[str, Profile]) -> dict[str, Curve]:
    """Each profile's curve from the pictures' class probabilities (one row each)."""
    from agent.classifier.scores import Scores

    def scores(rows: list[np.ndarray], profile: Profile) -> np.ndarray:
        return np.array([Scores(tuple(map(float, row))).malign(profile.malign_classes) for row in rows], np.float64)

    return {name: Curve(profile, scores(benign, profile), scores(flagged, profile)) for name, profile in profiles.items()}


def parse_rate(text: str) -> float:
    """``1%`` or ``0.01`` → 0.01."""
    value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    if not 0 <= value < 1:
        raise ValueError(f"--max-false-alarms {text!r}: give a rate such as 1% or 0.01")
    return value


def charts(found: dict[str, Curve], chosen: str, out: Path) -> tuple[Path, str]:
    """The ROC curves (each profile's threshold marked) and the chosen profile's score histograms:
    written as a PNG, returned as inline SVG too."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (roc, hist) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, curve in found.items():
        line = roc.plot(curve.false_alarms, curve.catches, label=f"{name} (AUC {curve.auc:.3f})")[0]
        fa, miss = curve.at(curve.profile.threshold)
        roc.plot([fa], [1 - miss], "o", color=line.get_color())
    roc.plot([0, 1], [0, 1], ":", color="#999999")
    roc.set_xlabel("false-alarm rate (benign pictures flagged)")
    roc.set_ylabel("catch rate (pictures to flag that are flagged)")
    roc.set_title("ROC per profile (dots: each profile's threshold)")
    roc.legend(loc="lower right", frameon=False)
    curve = found[chosen]
    bins = np.linspace(0, 1, 41)
    hist.hist(curve.benign, bins=bins, alpha=0.6, label=f"benign ({curve.benign.size})", color="#2e7d32")
    hist.hist(curve.flagged, bins=bins, alpha=0.6, label=f"to flag ({curve.flagged.size})", color="#c62828")
    hist.axvline(curve.profile.threshold, color="#333333", linestyle="--", label=f"threshold {curve.profile.threshold:.2f}")
    hist.set_xlabel(f"score under the {chosen} profile")
    hist.set_ylabel("pictures")
    hist.set_title("Scores")
    hist.legend(frameon=False)
    figure.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    png = out / "calibration.png"
    figure.savefig(png, dpi=110)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(figure)
    svg = buffer.getvalue()
    return png, svg[svg.index("<svg"):]
