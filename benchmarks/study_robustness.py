"""How robust is Veil's model path to the ways pictures arrive? A study, not a test.

    python benchmarks/study_robustness.py --make-canaries   # once (TensorFlow, a few minutes)
    python benchmarks/study_robustness.py [--photos N]      # build the inputs, score, print the tables
    python benchmarks/study_robustness.py --report          # the tables again from the last scores

Inputs, made once under benchmarks/.cache/robustness (nothing committed, nothing explicit):
- nine canaries (porn, hentai, sexy) made by the converter's recipe with seeds no test uses,
  each as a file the way it could arrive: a dithered
  256-colour GIF, a 150-px JPEG thumbnail (q40), mirrored and cropped 10 %, greyscale, rotated by
  EXIF, embedded at 50 %, 25 % and 10 % of a 1600×1200 photo, one cell of a 2×2 collage, a 480-px
  picture on a 1920×1080 saved page, one frame of a dithered animated GIF;
- the real full-size wallpapers of the Debian packages (converters/photos.py) as they are, as
  crops, as 2×2 collages, as pictures on a page, as dithered GIFs and as small thumbnails; and
  the committed 512-px photos scaled up to 1600×1200 (soft pictures, where crops false-alarm most).

Each file is judged (child profile, 0.30) by:
- the float model (the f16 build) on nsfwjs' own preprocessing: its aligned bilinear resize of
  the full-size picture, every frame of an animation;
- Veil's int8 model on each candidate resize, and on what ``decode_image`` ships: the whole
  picture and its region tiles (with their mirror images), for each candidate region rule.
Writes benchmarks/.cache/robustness/scores.json and prints the tables for RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.classifier.preprocess import MODEL_SIZE, RESIZE_METHODS, aligned_bilinear, resize_for_model  # noqa: E402
from agent.decode import decode_image, to_rgb  # noqa: E402

CACHE = REPO / "benchmarks" / ".cache" / "robustness"
CANARY_DIR = CACHE / "canaries"
INPUTS = CACHE / "inputs"
CHILD = ("porn", "hentai", "sexy")
THRESHOLD = 0.30
SHIPPED_RULE = "both ≥ 0.85, local ≤ 3"
SEEDS = {"porn": 7100, "hentai": 7200, "sexy": 7300}  # the test canaries use 101–905


def make_canaries() -> None:
    """Nine canaries by the converter's recipe, with seeds no test uses (TensorFlow needed)."""
    from converters import nsfwjs_source
    from converters.canaries import CanarySpec, _one, generate
    from converters.float_model import build_source_model

    source = nsfwjs_source.load_source(REPO / "converters" / ".cache")
    model = build_source_model(source.topology, source.weights)
    CANARY_DIR.mkdir(parents=True, exist_ok=True)
    for cls, base in SEEDS.items():
        for k in (1, 2, 3):
            path = CANARY_DIR / f"{cls}-s{k}.png"
            if not path.exists():
                Image.fromarray(generate(CanarySpec(path.stem, _one(cls), base + k, True, "holdout"), model)).save(path)
                print(f"canary {path.stem} made", flush=True)


# ---------------------------------------------------------------------------------------------
# The inputs


def _cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return ImageOps.fit(image, size, Image.Resampling.LANCZOS)


def _dithered(image: Image.Image) -> Image.Image:
    return image.convert("RGB").quantize(256, dither=Image.Dither.FLOYDSTEINBERG)


def _page(picture: Image.Image, rng: random.Random) -> Image.Image:
    """A saved web page: white, a coloured header, grey lines of 'text', a 480-px picture."""
    page = Image.new("RGB", (1920, 1080), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, 1920, 90), fill=(rng.randrange(30, 90), rng.randrange(60, 120), rng.randrange(120, 200)))
    left = rng.choice((200, 1240))
    text_x = 760 if left == 200 else 200
    for y in range(160, 1000, 34):
        draw.rectangle((text_x, y, text_x + rng.randrange(500, 960), y + 14), fill=(90, 90, 90))
    top = rng.randrange(150, 1080 - 480 - 40)
    page.paste(_cover(picture, (480, 480)), (left, top))
    return page


def _collage(cells: list[Image.Image], side: int = 1200) -> Image.Image:
    half = side // 2
    out = Image.new("RGB", (side, side), (255, 255, 255))
    for i, cell in enumerate(cells):
        out.paste(_cover(cell, (half - 8, half - 8)), ((i % 2) * half + 4, (i // 2) * half + 4))
    return out


def _embedded(picture: Image.Image, background: Image.Image, share: float, rng: random.Random) -> Image.Image:
    canvas = _cover(background, (1600, 1200))
    side = round(math.sqrt(share * 1600 * 1200))
    canvas.paste(picture.resize((side, side), Image.Resampling.LANCZOS), (rng.randrange(0, 1600 - side + 1), rng.randrange(0, 1200 - side + 1)))
    return canvas


def _save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def _exif_rotated(picture: Image.Image, path: Path) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated; a viewer turns it 90° clockwise back upright
    return _save(picture.transpose(Image.Transpose.ROTATE_90), path, format="JPEG", quality=90, exif=exif)


def _animation(frames: list[Image.Image], path: Path) -> Path:
    frames = [_dithered(_cover(f, (320, 320))) for f in frames]
    return _save(frames[0], path, format="GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)


def build_inputs(photos: list[Path]) -> dict[str, list[tuple[str, Path]]]:
    """{condition: [(label, path)]} — label 'canary' (must flag) or 'benign'. Files are made once."""
    rng = random.Random(17)
    canaries = sorted(CANARY_DIR.glob("*.png"))
    backgrounds = [Image.open(p).convert("RGB") for p in photos]
    conditions: dict[str, list[tuple[str, Path]]] = {}

    def put(condition: str, label: str, name: str, image: Image.Image | Callable[[Path], object], **options) -> None:
        path = INPUTS / condition / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            image(path) if callable(image) else image.save(path, **options)
        conditions.setdefault(condition, []).append((label, path))

    jpeg90, jpeg40 = {"format": "JPEG", "quality": 90}, {"format": "JPEG", "quality": 40}
    for i, canary_path in enumerate(canaries):
        c = Image.open(canary_path).convert("RGB")
        bg = backgrounds[(7 * i) % len(backgrounds)]
        stem = canary_path.stem
        put("canary: as it is (PNG)", "canary", f"{stem}.png", c, format="PNG")
        put("canary: dithered 256-colour GIF", "canary", f"{stem}.gif", _dithered(c.resize((480, 480), Image.Resampling.BICUBIC)), format="GIF")
        put("canary: 150-px thumbnail, JPEG q40", "canary", f"{stem}.jpg", c.resize((150, 150), Image.Resampling.LANCZOS), **jpeg40)
        put("canary: mirrored, cropped 10 %", "canary", f"{stem}.jpg", ImageOps.mirror(c).crop((16, 16, 304, 304)), **jpeg90)
        put("canary: greyscale", "canary", f"{stem}.jpg", c.convert("L"), **jpeg90)
        put("canary: rotated by EXIF", "canary", f"{stem}.jpg", partial(_exif_rotated, c))
        for share in (50, 25, 10):
            put(f"canary: {share} % of a 1600×1200 photo", "canary", f"{stem}.jpg", _embedded(c, bg, share / 100, rng), **jpeg90)
        cells = [backgrounds[(7 * i + k) % len(backgrounds)] for k in (1, 2, 3)]
        cells.insert(rng.randrange(4), c)
        put("canary: one cell of a 2×2 collage", "canary", f"{stem}.jpg", _collage(cells), **jpeg90)
        put("canary: 480 px on a 1920×1080 page", "canary", f"{stem}.png", _page(c, rng), format="PNG")
        frames = [backgrounds[(5 * i + k) % len(backgrounds)] for k in range(8)]
        frames[rng.randrange(1, 7)] = c
        put("canary: one frame of a dithered animated GIF", "canary", f"{stem}.gif", partial(_animation, frames))

    for i, photo in enumerate(photos):
        img = backgrounds[i]
        stem = f"{i:03d}"
        w, h = img.size
        side = min(w, h) * 2 // 3
        x, y = rng.randrange(0, w - side + 1), rng.randrange(0, h - side + 1)
        put("benign: photo as it is", "benign", f"{stem}{photo.suffix}", partial(shutil.copyfile, photo))
        put("benign: a crop, 4 ninths of the area", "benign", f"{stem}.jpg", img.crop((x, y, x + side, y + side)), **jpeg90)
        put("benign: 2×2 collage", "benign", f"{stem}.jpg", _collage([backgrounds[(i + k) % len(backgrounds)] for k in range(4)]), **jpeg90)
        put("benign: 480 px on a page", "benign", f"{stem}.png", _page(img, rng), format="PNG")
        put("benign: dithered 256-colour GIF", "benign", f"{stem}.gif", _dithered(img.resize((480, round(480 * h / w)), Image.Resampling.LANCZOS)),
            format="GIF")
        put("benign: 150-px thumbnail, JPEG q40", "benign", f"{stem}.jpg", img.resize((150, round(150 * h / w)), Image.Resampling.LANCZOS), **jpeg40)
    # The committed 512-px photos scaled up: soft, detail-poor pictures, the hardest case for
    # crops (an out-of-focus background looks much the same)
    for photo in sorted((REPO / "tests" / "fixtures" / "photos").glob("*.jpg")):
        put("benign: a 512-px photo scaled to 1600×1200", "benign", photo.name,
            Image.open(photo).convert("RGB").resize((1600, 1200), Image.Resampling.LANCZOS), **jpeg90)
    return conditions


# ---------------------------------------------------------------------------------------------
# Scoring


def _frames(path: Path) -> list[Image.Image]:
    """Every frame, upright, RGB, at full size (what a viewer shows)."""
    out = []
    with Image.open(path) as image:
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            frame = ImageOps.exif_transpose(image) if index == 0 else image
            out.append(to_rgb(frame).copy())
    return out


def _drafted(path: Path, size: int) -> list[tuple[Image.Image, bool]]:
    """Veil's decode: JPEGs drafted to ≥ size, then upright RGB; (image, drafted?) per frame."""
    out = []
    with Image.open(path) as image:
        is_jpeg = image.format == "JPEG"
        if is_jpeg:
            image.draft("RGB", (size, size))
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            frame = ImageOps.exif_transpose(image) if index == 0 else image
            out.append((to_rgb(frame).copy(), is_jpeg))
    return out


def _malign(probs: np.ndarray) -> np.ndarray:
    from agent.classifier.scores import LABELS

    return probs[..., [LABELS.index(c) for c in CHILD]].sum(axis=-1)


def score_all(conditions: dict[str, list[tuple[str, Path]]]) -> dict:
    """Per file: the float model on nsfwjs' own preprocessing (its aligned bilinear resize of the
    full-size image; the f16 build, which matches nsfwjs to 0.0008 mean |Δ malign| on real photos,
    models/preprocess-study.json), and the int8 model on each candidate path of Veil's."""
    from agent.classifier import open_classifier
    from agent.classifier.model import BUNDLED_F16, bundled_model_path
    from agent.config import ModelSection

    files = sorted({path for rows in conditions.values() for _, path in rows})
    scores: dict[str, dict] = {}
    float_section = ModelSection(path=str(bundled_model_path(BUNDLED_F16)), accelerator="cpu", threads=2)
    with open_classifier(ModelSection(accelerator="cpu", threads=2)) as classifier, open_classifier(float_section) as float_model:
        def malign(frames: list[np.ndarray], model=classifier) -> list[float]:
            return [s.malign(CHILD) for s in model.classify(np.stack(frames))]

        started = time.time()
        for n, path in enumerate(files):
            row: dict = {"nsfwjs": max(malign([aligned_bilinear(np.asarray(f)) for f in _frames(path)], float_model))}
            drafted = _drafted(path, MODEL_SIZE)
            with Image.open(path) as image:
                row["jpeg"] = image.format == "JPEG"
            for method in RESIZE_METHODS:
                row[f"whole:{method}"] = max(malign([resize_for_model(img, method) for img, _ in drafted]))
            decoded = decode_image(path)  # what Veil ships: the whole frame(s) and the regions
            row["whole:shipped"] = max(malign(list(decoded.frames)))
            row["whole:mirror"] = max(malign(list(decoded.frames[:, :, ::-1])))
            if decoded.region_frames is not None:
                row["regions"] = {"boxes": [[b.left, b.top, b.width, b.height] for b in decoded.regions],
                                  "crop": malign(list(decoded.region_frames)),
                                  "mirror": malign(list(decoded.region_frames[:, :, ::-1]))}
            scores[str(path.relative_to(INPUTS))] = row
            if n % 50 == 0:
                print(f"  {n}/{len(files)} files scored, {time.time() - started:.0f} s", flush=True)
    return scores


@dataclass(frozen=True)
class Rule:
    """How a region may flag a picture (agent/regions.judge_regions ships one of these)."""
    level: float  # the malign score a region must reach
    mirror: bool  # its mirror image must reach it too
    max_tiles: int  # more tiles than this at ``texture_level``: a texture, no region counts (9: off)
    texture_level: float = 0.5

    def flags(self, row: dict) -> bool:
        regions = row.get("regions")
        if not regions:
            return False
        crop, mirror = regions["crop"], regions["mirror"]
        if sum(1 for c in crop if c >= self.texture_level) > self.max_tiles:
            return False
        return any(c >= self.level and (not self.mirror or m >= self.level) for c, m in zip(crop, mirror))


RULES = {
    "one view ≥ 0.30": Rule(THRESHOLD, False, 9),
    "both views ≥ 0.30": Rule(THRESHOLD, True, 9),
    "both ≥ 0.50": Rule(0.5, True, 9),
    "both ≥ 0.60": Rule(0.6, True, 9),
    "both ≥ 0.50, local ≤ 3": Rule(0.5, True, 3),
    "both ≥ 0.60, local ≤ 3": Rule(0.6, True, 3),
    "both ≥ 0.60, local ≤ 4": Rule(0.6, True, 4),
    "both ≥ 0.70, local ≤ 3": Rule(0.7, True, 3),
    "both ≥ 0.80, local ≤ 3": Rule(0.8, True, 3),
    "both ≥ 0.85, local ≤ 3": Rule(0.85, True, 3),
    "one view ≥ 0.85, local ≤ 3": Rule(0.85, False, 3),
}


def report(data: dict, shipped_rule: str) -> None:
    conditions, scores = data["conditions"], data["scores"]

    def count(condition: str, flagged: Callable[[dict], bool]) -> str:
        rows = [scores[path] for _, path in conditions[condition]]
        return f"{sum(map(flagged, rows))}/{len(rows)}"

    def today(row: dict) -> bool:
        return row["whole:nearest"] >= THRESHOLD

    def shipped_whole(row: dict) -> bool:
        return row["whole:shipped"] >= THRESHOLD

    rule = RULES[shipped_rule]
    print(f"\n| what the file is | nsfwjs preprocessing (float model) | Veil before | Veil, resize per source | + regions ({shipped_rule}) |")
    print("|---|---|---|---|---|")
    for condition in sorted(conditions, key=lambda c: (c.startswith("benign"), c)):
        print(f"| {condition} | {count(condition, lambda r: r['nsfwjs'] >= THRESHOLD)} | {count(condition, today)} | "
              f"{count(condition, shipped_whole)} | {count(condition, lambda r: shipped_whole(r) or rule.flags(r))} |")

    print("\nRegion rules (files flagged by a region where the whole image is not):")
    print("| condition | " + " | ".join(RULES) + " |\n|---|" + "---|" * len(RULES))
    for condition in sorted(conditions, key=lambda c: (c.startswith("benign"), c)):
        cells = [count(condition, lambda r, f=f: not shipped_whole(r) and f.flags(r)) for f in RULES.values()]
        print(f"| {condition} | " + " | ".join(cells) + " |")

    print("\nResize for sources that are not JPEGs (those files only; JPEGs keep nearest):")
    print("| condition | files | " + " | ".join(RESIZE_METHODS) + " | nsfwjs |\n|---|---|" + "---|" * (len(RESIZE_METHODS) + 1))
    for condition in sorted(conditions, key=lambda c: (c.startswith("benign"), c)):
        rows = [scores[path] for _, path in conditions[condition] if not scores[path]["jpeg"]]
        if rows:
            cells = [str(sum(r[f"whole:{m}"] >= THRESHOLD for r in rows)) for m in RESIZE_METHODS]
            print(f"| {condition} | {len(rows)} | " + " | ".join(cells) + f" | {sum(r['nsfwjs'] >= THRESHOLD for r in rows)} |")
    agree = {m: [] for m in RESIZE_METHODS}
    for _, path in conditions["benign: photo as it is"]:
        row = scores[path]
        if not row["jpeg"]:
            for m in RESIZE_METHODS:
                agree[m].append(abs(row[f"whole:{m}"] - row["nsfwjs"]))
    print("mean |Δ malign| vs nsfwjs on the benign photos that are not JPEGs: "
          + ", ".join(f"{m} {np.mean(v):.4f}" for m, v in agree.items()))

    print("\nTwo views of the whole image (flag only when the mirrored image flags too):")
    for condition in sorted(conditions, key=lambda c: (c.startswith("benign"), c)):
        both = count(condition, lambda r: min(r["whole:shipped"], r["whole:mirror"]) >= THRESHOLD)
        print(f"  {condition}: one view {count(condition, shipped_whole)}, two views {both}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--make-canaries", action="store_true")
    parser.add_argument("--photos", type=int, default=0, help="use only the first N photos (0: all)")
    parser.add_argument("--report", action="store_true", help="only print the tables from the last scores.json")
    args = parser.parse_args()
    if args.report:
        report(json.loads((CACHE / "scores.json").read_text()), SHIPPED_RULE)
        return 0
    if args.make_canaries:
        make_canaries()
        return 0
    from converters.photos import original_paths

    photos = [p for _, p in original_paths()]
    if args.photos:
        photos = photos[: args.photos]
    conditions = build_inputs(photos)
    scores = score_all(conditions)
    listing = {k: [(label, str(p.relative_to(INPUTS))) for label, p in v] for k, v in conditions.items()}
    (CACHE / "scores.json").write_text(json.dumps({"conditions": listing, "scores": scores}, indent=0))
    print(f"scores written to {CACHE / 'scores.json'}")
    report(json.loads((CACHE / "scores.json").read_text()), SHIPPED_RULE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
