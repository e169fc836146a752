"""Where in a picture an embedded picture may sit: the regions Veil scores besides the whole.

A collage cell, a photo on a saved page, a picture filling a quarter of a meme: the model sees
the whole image shrunk to 224 px, and an embedded picture is then too small to score. So besides
the whole image Veil scores crops that can hold one (see benchmarks/RESULTS.md, "The model in the
wild", for the measured choice of crops and of the rule that keeps crops of real photos, which
are out of the model's distribution, from raising false alarms).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from agent.classifier.scores import Scores
from agent.policy import Decision, Profile, decide

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


def plan_regions(width: int, height: int) -> tuple[Region, ...]:
    """Half-width × half-height tiles on a 3×3 grid (overlapping by half): every quadrant, the
    centre, and the middles of the edges, so a picture filling a quarter of the image fills most
    of one tile wherever it sits."""
    if min(width, height) < 2 * MIN_REGION_SIDE:
        return ()
    w, h = width // 2, height // 2
    return tuple(Region(x, y, w, h) for y in (0, (height - h) // 2, height - h) for x in (0, (width - w) // 2, width - w))


REGION_LEVEL = 0.85  # a region must reach this malign score (or the profile's threshold, if higher)
TEXTURE_LEVEL = 0.5  # tiles reaching this count towards a texture...
MAX_FLAGGED_TILES = 3  # ...when more than this many of the nine do: the model misreads the whole surface


@dataclass
class RegionScores:
    """What the model said about a still's regions: enough to judge them again under another
    profile without decoding the picture (the content cache keeps it)."""

    boxes: tuple[Region, ...]  # in the original (upright) picture's pixels; empty: too small for regions
    tiles: tuple[Scores, ...]  # one per box
    mirrors: dict[int, Scores] = field(default_factory=dict)  # the mirror views scored so far, by tile


class MirrorMissing(Exception):
    """Judging the regions under this profile needs a mirror view that was never scored."""


Mirror = Callable[[list[int]], list[Scores]]  # tile indices → the scores of their mirror images


def judge_regions(regions: RegionScores, profile: Profile, mirror: Mirror | None = None) -> tuple[int, Region] | None:
    """The tile that flags the picture and the area to act on, or None.

    Crops of real photos are out of the model's distribution and false-alarm more than the whole
    picture, so a tile must pass three checks (each measured, benchmarks/RESULTS.md):
    - a stricter level than the whole picture's threshold (``REGION_LEVEL``);
    - a second view: its mirror image must reach that level too (``mirror`` scores the views not
      yet in ``regions.mirrors``; without it, MirrorMissing);
    - the flagged content must be local: when more than ``MAX_FLAGGED_TILES`` of the nine tiles
      reach ``TEXTURE_LEVEL``, the picture is a texture (wood, sand, skin-coloured patterns) that
      the model misreads in every crop, not a picture inside a picture.
    Among the tiles that pass, the one whose weaker view is most malign decides. The area to act
    on (to blur) covers it and every tile at ``TEXTURE_LEVEL``: a second flagged picture beside
    the first is not left untouched."""
    level = max(profile.threshold, REGION_LEVEL)
    malign = [decide(s, profile).malign for s in regions.tiles]
    marked = [i for i, m in enumerate(malign) if m >= TEXTURE_LEVEL]
    if len(marked) > MAX_FLAGGED_TILES:
        return None
    candidates = [i for i, m in enumerate(malign) if m >= level]
    missing = [i for i in candidates if i not in regions.mirrors]
    if missing:
        if mirror is None:
            raise MirrorMissing(f"tiles {missing}")
        regions.mirrors.update(zip(missing, mirror(missing)))
    confirmed = [(min(malign[i], decide(regions.mirrors[i], profile).malign), i) for i in candidates
                 if decide(regions.mirrors[i], profile).malign >= level]
    if not confirmed:
        return None
    best = max(confirmed)[1]
    return best, _bounding([regions.boxes[i] for i in {best, *marked}])


def decide_picture(whole: Scores, regions: RegionScores | None, profile: Profile,
                   mirror: Mirror | None = None) -> tuple[Decision, Scores, Region | None]:
    """The decision on a picture from its whole (worst frame) scores and, when the whole does not
    flag it, its regions: (decision, the scores that decided, the area to act on or None)."""
    decision = decide(whole, profile)
    if decision.flagged or regions is None or not regions.boxes:
        return decision, whole, None
    found = judge_regions(regions, profile, mirror)
    if found is None:
        return decision, whole, None
    tile, area = found
    return decide(regions.tiles[tile], profile), regions.tiles[tile], area


def _bounding(boxes: list[Region]) -> Region:
    left, top = min(b.left for b in boxes), min(b.top for b in boxes)
    right, bottom = max(b.left + b.width for b in boxes), max(b.top + b.height for b in boxes)
    return Region(left, top, right - left, bottom - top)


__all__ = ["MIN_PICTURE_SIDE", "MIN_REGION_SIDE", "MirrorMissing", "Region", "RegionScores", "decide_picture", "judge_regions",
           "plan_regions"]
