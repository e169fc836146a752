"""Which perceptual hash, and which distance, tell "the same picture" from "another picture"?
A study for the parent's corrections (agent/corrections.py), not a test.

    python benchmarks/study_picture_hash.py [--out benchmarks/.cache/picture-hash.json]

Pictures: the committed benign photos (tests/fixtures/photos) and, where installed, the real
full-size Debian wallpapers (converters/photos.py). Each is hashed the way Veil hashes a file
(its 224×224 model input from ``decode_image``) as it is and as the copies a corrected picture
comes back as: resized to 50 % and saved as JPEG q60, re-saved as PNG, cropped by 5 % (one corner,
and evenly), and mirrored. For pHash and dHash it reports the largest distance of each kind of
copy, and the smallest distance between two different pictures (and how many pairs come within
each candidate threshold): the threshold must keep every copy and no distinct pair.
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

from agent.decode import DecodeLimits, decode_image  # noqa: E402
from agent.picture_hash import dhash, distances, phash  # noqa: E402
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


def _frame(data: bytes | Path) -> np.ndarray:
    glance = decode_image(io.BytesIO(data) if isinstance(data, bytes) else data, DecodeLimits(regions=False)).glance
    assert glance is not None
    return glance


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
    hashers = {"phash": phash, "dhash": dhash}
    found: dict[str, dict] = {name: {"original": [], **{v: [] for v in VARIANTS}} for name in hashers}
    began = time.perf_counter()
    for path in pictures:
        frame = _frame(path)
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
        copies = {kind: _frame(_variant(image, kind)) for kind in VARIANTS}
        for name, hasher in hashers.items():
            found[name]["original"].append(hasher(frame))
            for kind, copy in copies.items():
                # a mirrored copy is matched against the stored mirror hash (agent/picture_hash.py)
                found[name][kind].append(hasher(copy[:, ::-1]) if kind == "mirror" else hasher(copy))
    print(f"hashed {len(pictures)} pictures × {1 + len(VARIANTS)} in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    report: dict[str, dict] = {"pictures": len(pictures), "photos": len(photos), "wallpapers": len(wallpapers)}
    for name in hashers:
        originals = np.array(found[name]["original"], np.uint64)
        copies = {kind: [int(distances(originals[i : i + 1], h)[0]) for i, h in enumerate(found[name][kind])] for kind in VARIANTS}
        pairs = sorted((int(distances(originals[j : j + 1], int(originals[i]))[0]), i, j)
                       for i, j in itertools.combinations(range(len(originals)), 2))
        distinct = [d for d, _i, _j in pairs]
        report[name] = {
            "copies_max": {k: max(v) for k, v in copies.items()},
            "copies_p95": {k: float(np.percentile(v, 95)) for k, v in copies.items()},
            "distinct_min": distinct[0],
            "distinct_pairs": len(distinct),
            "distinct_within": {t: sum(d <= t for d in distinct) for t in (4, 6, 8, 10, 12, 14, 16)},
            "copies_missed_at": {t: sum(d > t for v in copies.values() for d in v) for t in (4, 6, 8, 10, 12, 14, 16)},
            "copies_missed_per_variant": {t: {k: sum(d > t for d in v) for k, v in copies.items()} for t in (8, 10, 12, 14)},
            "nearest_pairs": [[d, pictures[i].name, pictures[j].name] for d, i, j in pairs[:8]],
        }
        r = report[name]
        print(f"\n{name}: copies, largest distance: " + ", ".join(f"{k} {v}" for k, v in r["copies_max"].items()))
        print(f"{name}: nearest distinct pair {r['distinct_min']} of {r['distinct_pairs']} pairs; nearest: "
              + "; ".join(f"{d} {a} / {b}" for d, a, b in r["nearest_pairs"][:5]))
        print("threshold | distinct pairs within | copies beyond")
        for t in r["distinct_within"]:
            print(f"{t:>9} | {r['distinct_within'][t]:>21} | {r['copies_missed_at'][t]:>13}")
        for t, missed in r["copies_missed_per_variant"].items():
            print(f"{name} at {t}: copies beyond, per kind: " + ", ".join(f"{k} {n}" for k, n in missed.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
