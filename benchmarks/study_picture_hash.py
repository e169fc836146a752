"""Which perceptual hash, and which distance, tell "the same picture" from "another picture"?
A study for the parent's corrections (agent/corrections.py), not a test.

    python benchmarks/study_picture_hash.py [--out benchmarks/.cache/picture-hash.json]

Pictures: the committed benign photos that are not thumbnails of a wallpaper (tests/fixtures/
photos) and, where installed, the real full-size Debian wallpapers (converters/photos.py). For
each candidate, what a correction stores of a picture (its hash and its mirror image's; or the
shipped seven views: those and 5 % crops at each corner and evenly) is compared with the hash a
judged file gets (of ``decode_image``'s 32×32 glance) for the copies a corrected picture comes
back as: resized to 50 % and saved as JPEG q60, re-saved as PNG, cropped by 5 % at one corner and
evenly, and mirrored. It reports the largest distance of each kind of copy, the nearest distinct
pairs, and per threshold how many distinct pairs come within it and how many copies fall beyond:
the threshold must keep every copy and no distinct pair.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.classifier.preprocess import draft_for_model  # noqa: E402
from agent.decode import DecodeLimits, decode_image, to_rgb  # noqa: E402
from agent.picture_hash import dhash, distances, grey_glance, phash, picture_views  # noqa: E402
from converters.photos import fixture_name, original_paths  # noqa: E402

VARIANTS = ("jpeg-50%-q60", "png", "crop-5%-corner", "crop-5%-even", "mirror")


def _variant(image: Image.Image, kind: str) -> bytes:
    out = io.BytesIO()
    w, h = image.size
    if kind == "jpeg-50%-q60":
        image.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS).save(out, "JPEG", quality=60)
    elif kind == "png":
        image.save(out, "PNG", compress_level=1)
    elif kind == "crop-5%-corner":
        image.crop((int(w * 0.05), int(h * 0.05), w, h)).save(out, "PNG", compress_level=1)
    elif kind == "crop-5%-even":
        image.crop((int(w * 0.025), int(h * 0.025), w - int(w * 0.025), h - int(h * 0.025))).save(out, "PNG", compress_level=1)
    elif kind == "mirror":
        ImageOps.mirror(image).save(out, "PNG", compress_level=1)
    return out.getvalue()


def _glance(data: bytes) -> np.ndarray:
    glance = decode_image(io.BytesIO(data), DecodeLimits(regions=False, glance=True)).glance
    assert glance is not None
    return glance


def _stored(image: Image.Image, kind: str) -> tuple[int, ...]:
    """What a correction of this picture keeps, per candidate."""
    grey = grey_glance(image)
    if kind == "phash, 7 views (shipped)":
        return picture_views(image)
    hasher = phash if kind.startswith("phash") else dhash
    return hasher(grey), hasher(grey[:, ::-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / ".cache" / "picture-hash.json")
    args = parser.parse_args()
    originals = original_paths()
    wallpapers = [path for _source, path in originals]
    # the committed photos are 512-px copies of these originals: one of each picture, or every
    # picture would "match" its own thumbnail as a distinct pair
    copied = {fixture_name(source, path) for source, path in originals}
    photos = [p for p in sorted((REPO / "tests" / "fixtures" / "photos").glob("*.*"))
              if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") and p.name not in copied]
    pictures = photos + wallpapers
    print(f"{len(photos)} committed photos (not copies of a wallpaper), {len(wallpapers)} wallpapers", file=sys.stderr)
    kinds = ("phash, picture + mirror", "phash, 7 views (shipped)", "dhash, picture + mirror")
    stored: dict[str, list[tuple[int, ...]]] = {k: [] for k in kinds}
    own: dict[str, list[int]] = {k: [] for k in kinds}  # each original's own hash, as a judged file is hashed
    copies: dict[str, dict[str, list[int]]] = {k: {v: [] for v in VARIANTS} for k in kinds}
    began = time.perf_counter()
    for path in pictures:
        with Image.open(path) as opened:
            draft_for_model(opened)  # as hashes_of_file opens a picture to correct
            upright = to_rgb(ImageOps.exif_transpose(opened))
        with Image.open(path) as opened:
            full = ImageOps.exif_transpose(opened).convert("RGB")
        glances = {kind: _glance(_variant(full, kind)) for kind in VARIANTS}
        original = decode_image(path, DecodeLimits(regions=False, glance=True)).glance
        for kind in kinds:
            hasher = dhash if kind.startswith("dhash") else phash
            stored[kind].append(_stored(upright, kind))
            own[kind].append(hasher(original))
            for variant, glance in glances.items():
                copies[kind][variant].append(hasher(glance))
    print(f"hashed {len(pictures)} pictures × {2 + len(VARIANTS)} in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    report: dict[str, dict] = {"pictures": len(pictures), "photos": len(photos), "wallpapers": len(wallpapers)}
    for kind in kinds:
        views = [np.array(v, np.uint64) for v in stored[kind]]
        copy_distance = {v: [int(distances(views[i], h).min()) for i, h in enumerate(copies[kind][v])] for v in VARIANTS}
        pairs = sorted((int(min(distances(views[i], own[kind][j]).min(), distances(views[j], own[kind][i]).min())), i, j)
                       for i, j in itertools.combinations(range(len(pictures)), 2))
        distinct = [d for d, _i, _j in pairs]
        report[kind] = r = {
            "copies_max": {v: max(d) for v, d in copy_distance.items()},
            "distinct_min": distinct[0],
            "distinct_pairs": len(distinct),
            "nearest_pairs": [[d, pictures[i].name, pictures[j].name] for d, i, j in pairs[:8]],
            "thresholds": {t: {"distinct_within": sum(d <= t for d in distinct),
                               "copies_beyond": {v: sum(d > t for d in ds) for v, ds in copy_distance.items()}}
                           for t in (6, 8, 10, 12, 14, 16)},
        }
        print(f"\n{kind}: largest copy distance: " + ", ".join(f"{v} {d}" for v, d in r["copies_max"].items()))
        print(f"{kind}: nearest distinct pairs: " + "; ".join(f"{d} {a} / {b}" for d, a, b in r["nearest_pairs"][:4]))
        print("| threshold | distinct pairs within | copies beyond: " + " | ".join(VARIANTS) + " |")
        for t, row in r["thresholds"].items():
            print(f"| {t} | {row['distinct_within']} | " + " | ".join(str(row["copies_beyond"][v]) for v in VARIANTS) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
