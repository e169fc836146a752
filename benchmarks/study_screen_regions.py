"""Which screen regions should the model see? Measured on composited screens (no X needed).

    python benchmarks/study_screen_regions.py

Screens are 3840×2160 images: a benign photo as wallpaper (every 4th of the photos the model
calls benign under the child profile) with a canary pasted as a "window", or without one.
1. A 300×300 canary in the bottom-right corner, classified through regions of several sizes
   centred on it: how many (wallpaper × canary) screens are flagged, and how many of the
   wallpapers alone (false alarms).
2. A 500×400 canary window: classified as its exact rectangle, as the square around it, and as
   a box a cell (32 px) larger on every side (what a change box can be).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.sources.screen import Box, fitted, to_model_input  # noqa: E402
from tests.media import child_benign_photos, child_flagged_canaries, machine_line  # noqa: E402

W, H = 3840, 2160


def bgra(image: Image.Image) -> np.ndarray:
    rgb = np.asarray(image.convert("RGB"))
    return np.concatenate([rgb[:, :, ::-1], np.zeros_like(rgb[:, :, :1])], axis=2)


def main() -> int:
    from agent.classifier import open_classifier
    from agent.config import ModelSection
    from agent.policy import BUILTIN_PROFILES, decide

    child = BUILTIN_PROFILES["child"]
    print(machine_line())
    with open_classifier(ModelSection(accelerator="cpu", threads=2)) as classifier:
        walls = [Image.open(p).convert("RGB").resize((W, H)) for p in child_benign_photos(classifier)[::4]]
        canaries = [Image.open(p).convert("RGB") for p in child_flagged_canaries()]

        def malign(screen: np.ndarray, box: Box) -> float:
            return decide(classifier.classify(to_model_input(screen, box))[0], child).malign

        def with_window(wall: Image.Image, canary: Image.Image, box: Box) -> np.ndarray:
            screen = wall.copy()
            screen.paste(canary.resize((box.width, box.height)), (box.left, box.top))
            return bgra(screen)

        corner = Box(3500, 1820, 300, 300)
        print(f"1. 300×300 canary in a corner of {W}×{H}; {len(walls)} wallpapers × {len(canaries[::3])} canaries")
        print("| region side | canary screens flagged | wallpaper alone flagged (max malign) |\n|---|---|---|")
        for side in (224, 300, 480, 720):
            region = fitted(Box(corner.left + 150 - side // 2, corner.top + 150 - side // 2, side, side), W, H)
            hits = [malign(with_window(w, c, corner), region) >= child.threshold for w in walls for c in canaries[::3]]
            alone = [malign(bgra(w), region) for w in walls]
            print(f"| {side} | {sum(hits)} of {len(hits)} | {sum(a >= child.threshold for a in alone)} of {len(alone)} "
                  f"({max(alone):.2f}) |")

        window = Box(1000, 600, 500, 400)
        shapes = {"exact window": window, "square around it": Box(1000, 550, 500, 500),
                  "one cell larger each side": Box(968, 568, 564, 464)}
        print(f"\n2. 500×400 canary window on {len(walls)} wallpapers × {len(canaries)} canaries")
        print("| region | flagged | malign min–max |\n|---|---|---|")
        for name, box in shapes.items():
            scores = [malign(with_window(w, c, window), box) for w in walls for c in canaries]
            print(f"| {name} | {sum(s >= child.threshold for s in scores)} of {len(scores)} | {min(scores):.2f}–{max(scores):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
