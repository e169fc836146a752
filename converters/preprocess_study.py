"""Which resize should Veil use? Measured against nsfwjs on full-size real photos.

For each candidate path from the original file to 224×224 uint8 pixels, the float source model
scores the result; nsfwjs (under Node) scores the full-size image with its own resize. Reported:
agreement with the reference (|Δ malign| under the child profile, decision agreement) and false
alarms (benign photos flagged at the child threshold).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from agent.classifier.preprocess import MODEL_SIZE, aligned_bilinear, draft_for_model
from converters.float_model import build_source_model
from converters.nsfwjs_source import LABELS, SourceModel
from converters.photos import original_paths
from converters.reference import ensure_reference_env, reference_on_images

CHILD = ("porn", "hentai", "sexy")
CHILD_THRESHOLD = 0.30
_CHILD_IDX = [LABELS.index(c) for c in CHILD]


def _open(path: Path, draft: bool) -> Image.Image:
    image: Image.Image = Image.open(path)
    if draft:
        draft_for_model(image)
    image = ImageOps.exif_transpose(image)
    return image.convert("RGB")


def _pillow(method: int) -> Callable[[Image.Image], np.ndarray]:
    return lambda img: np.asarray(img.resize((MODEL_SIZE, MODEL_SIZE), method))


CANDIDATES: dict[str, tuple[bool, Callable[[Image.Image], np.ndarray]]] = {
    # name: (JPEG draft first?, resize)
    "full+aligned-bilinear (nsfwjs)": (False, lambda img: aligned_bilinear(np.asarray(img))),
    "draft+aligned-bilinear": (True, lambda img: aligned_bilinear(np.asarray(img))),
    "full+pillow-bilinear (antialiased)": (False, _pillow(Image.Resampling.BILINEAR)),
    "draft+pillow-bilinear (antialiased)": (True, _pillow(Image.Resampling.BILINEAR)),
    "draft+pillow-box": (True, _pillow(Image.Resampling.BOX)),
    "draft+nearest (Keras flow_from_directory)": (True, _pillow(Image.Resampling.NEAREST)),
}


def _malign(probs: np.ndarray) -> np.ndarray:
    return probs[..., _CHILD_IDX].sum(axis=-1)


def run_study(source: SourceModel, cache: Path, out: Path) -> dict:
    model = build_source_model(source.topology, source.weights)
    paths = original_paths()
    env = ensure_reference_env(cache, source.tarball)
    names = [f"{src}:{p.name if src != 'plasma-workspace-wallpapers' else p.parents[2].name}" for src, p in paths]

    started = time.time()
    full = [np.asarray(_open(p, draft=False)) for _, p in paths]
    ref_probs, meta = reference_on_images(env, full)
    ref = _malign(ref_probs)
    del full
    print(f"reference: {len(paths)} photos in {time.time() - started:.0f}s", flush=True)

    report: dict = {
        "what": "float source model on each candidate's 224x224 uint8 pixels vs nsfwjs on the full-size image",
        "reference": {"nsfwjs": "4.4.0", **meta},
        "profile": {"malign_classes": list(CHILD), "threshold": CHILD_THRESHOLD},
        "photos": len(paths),
        "jpeg_originals": sum(1 for _, p in paths if p.suffix.lower() in (".jpg", ".jpeg")),
        "reference_false_alarms": int((ref >= CHILD_THRESHOLD).sum()),
        "candidates": {},
        "per_photo": {n: {"reference": round(float(r), 4)} for n, r in zip(names, ref)},
    }
    for name, (draft, resize) in CANDIDATES.items():
        pixels = np.stack([resize(_open(p, draft)) for _, p in paths]).astype(np.float32) / 255.0
        mal = _malign(model.predict(pixels, batch_size=16, verbose=0))
        delta = np.abs(mal - ref)
        report["candidates"][name] = {
            "mean_abs_delta_malign": round(float(delta.mean()), 4),
            "median_abs_delta_malign": round(float(np.median(delta)), 4),
            "max_abs_delta_malign": round(float(delta.max()), 4),
            "decision_agreement": round(float(((mal >= CHILD_THRESHOLD) == (ref >= CHILD_THRESHOLD)).mean()), 4),
            "false_alarms": int((mal >= CHILD_THRESHOLD).sum()),
        }
        for n, m in zip(names, mal):
            report["per_photo"][n][name] = round(float(m), 4)
        print(name, report["candidates"][name], flush=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    return report
