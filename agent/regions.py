"""Where in a picture an embedded picture may sit: the regions Veil scores besides the whole.

A collage cell, a photo on a saved page, a picture filling a quarter of a meme: the model sees
the whole image shrunk to 224 px, and an embedded picture is then too small to score. So besides
the whole image Veil scores crops that can hold one (see benchmarks/RESULTS.md, "Pictures inside
pictures", for the measured choice of crops and of the rule that keeps crops of real photos,
which are out of the model's distribution, from raising false alarms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from agent.classifier.scores import Scores
from agent.policy import Profile, decide

if TYPE_CHECKING:
    from agent.classifier import FrameClassifier

MIN_REGION_SIDE = 200  # decoded pixels: a crop smaller than this holds too little detail to score
MIN_PICTURE_SIDE = 600  # original pixels: a smaller picture is too small to hold another (and its crops false-alarm)


@dataclass(frozen=True)
class Region:
    left: int
    top: int
    width: int
    height: int

    def scaled(self, factor_x: float, factor_y: float) -> Region:
        return Region(round(self.left * factor_x), round(self.top * factor_y), round(self.width * factor_x),
                      round(self.height * factor_y))


@dataclass(frozen=True)
class RegionPlan:
    boxes: tuple[Region, ...]


def plan_regions(width: int, height: int) -> RegionPlan:
    """Half-width × half-height tiles on a 3×3 grid (overlapping by half): every quadrant, the
    centre, and the middles of the edges, so a picture filling a quarter of the image fills most
    of one tile wherever it sits."""
    if min(width, height) < 2 * MIN_REGION_SIDE:
        return RegionPlan(())
    w, h = width // 2, height // 2
    boxes = tuple(Region(x, y, w, h) for y in (0, (height - h) // 2, height - h) for x in (0, (width - w) // 2, width - w))
    return RegionPlan(boxes)


REGION_LEVEL = 0.85  # a region must reach this malign score (or the profile's threshold, if higher)
TEXTURE_LEVEL = 0.5  # tiles reaching this count towards a texture...
MAX_FLAGGED_TILES = 3  # ...when more than this many of the nine do: the model misreads the whole surface


def judge_regions(frames: np.ndarray, scores: list[Scores], classifier: FrameClassifier, profile: Profile) -> int | None:
    """The region that flags the picture, or None.

    Crops of real photos are out of the model's distribution and false-alarm more than the whole
    picture, so a region must pass three checks (each measured, benchmarks/RESULTS.md):
    - a stricter level than the whole picture's threshold (``REGION_LEVEL``);
    - a second view: its mirror image must reach that level too;
    - the flagged content must be local: when more than ``MAX_FLAGGED_TILES`` of the nine tiles
      reach ``TEXTURE_LEVEL``, the picture is a texture (wood, sand, skin-coloured patterns) that
      the model misreads in every crop, not a picture inside a picture.
    Among the regions that pass, the one whose weaker view is most malign decides."""
    level = max(profile.threshold, REGION_LEVEL)
    malign = [decide(s, profile).malign for s in scores]
    if sum(1 for m in malign if m >= TEXTURE_LEVEL) > MAX_FLAGGED_TILES:
        return None
    candidates = [i for i, m in enumerate(malign) if m >= level]
    if not candidates:
        return None
    mirrored = classifier.classify(np.ascontiguousarray(frames[candidates][:, :, ::-1]))
    confirmed = [(min(malign[i], decide(m, profile).malign), i) for i, m in zip(candidates, mirrored) if decide(m, profile).malign >= level]
    return max(confirmed)[1] if confirmed else None


__all__ = ["MIN_PICTURE_SIDE", "MIN_REGION_SIDE", "Region", "RegionPlan", "judge_regions", "plan_regions"]
