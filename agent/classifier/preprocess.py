"""Image → model input: 224×224×3 uint8 RGB pixels (the models scale by 1/255 themselves).

The resize method is a measured choice, not a default (models/preprocess-study.json): the
source model's scores on real photos swing with it. nsfwjs, the reference, resizes with
TensorFlow's bilinear resize, ``align_corners=True``, no antialiasing, on the full image.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

MODEL_SIZE = 224


def aligned_bilinear(pixels: np.ndarray, size: int = MODEL_SIZE) -> np.ndarray:
    """TensorFlow's ``resize_bilinear(align_corners=True)`` as nsfwjs calls it, on HxWx3 pixels.

    Output pixel i samples source coordinate ``i * (in - 1) / (out - 1)`` and interpolates its
    four neighbours: corners map to corners, and nothing outside those samples is looked at
    (no antialiasing), exactly as the reference sees the image.
    """
    height, width = pixels.shape[:2]

    def axis(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scale = (n_in - 1) / (size - 1) if size > 1 else 0.0
        pos = np.arange(size, dtype=np.float32) * np.float32(scale)
        low = np.floor(pos).astype(np.intp)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, (pos - low).astype(np.float32)

    r0, r1, fr = axis(height)
    c0, c1, fc = axis(width)
    src = pixels.astype(np.float32)
    top_l, top_r = src[r0][:, c0], src[r0][:, c1]
    bot_l, bot_r = src[r1][:, c0], src[r1][:, c1]
    fc3 = fc[None, :, None]
    top = top_l + (top_r - top_l) * fc3
    bottom = bot_l + (bot_r - bot_l) * fc3
    out = top + (bottom - top) * fr[:, None, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def draft_for_model(image: Image.Image, size: int = MODEL_SIZE) -> Image.Image:
    """Let a JPEG decode at the smallest DCT scale (1/2, 1/4, 1/8) still ≥ ``size`` on both sides.

    Must be called before the pixels are loaded; other formats are untouched.
    """
    if image.format == "JPEG":
        image.draft("RGB", (size, size))
    return image


# The choice (models/preprocess-study.json, 87 real benign photos, child profile): nearest
# neighbour after the JPEG draft agreed best with nsfwjs on full-size images among the fast paths
# (mean |Δ malign| 0.012, max 0.27, 98.9 % same decision; antialiased bilinear: 0.042, 0.73,
# 95.4 %) with no more false alarms (4 of 87; nsfwjs itself: 6). It is also what Keras'
# flow_from_directory, used to train such models, does.
RESIZE_METHOD = "jpeg-draft+nearest; box for other formats"
SOURCE_RESIZE = "box"  # for sources that are not JPEGs (see resize_method_for)


RESIZE_METHODS = ("nearest", "antialias", "box", "reduce+nearest")


def resize_method_for(image: Image.Image) -> str:
    """The resize for this source: nearest neighbour for JPEGs (a large one is DCT-drafted first,
    which has already averaged its pixels; on small ones the study found no better choice), a box
    reduction for everything else — palette and dithered images, screenshots, PNG and WebP —
    where nearest neighbour aliases (benchmarks/RESULTS.md, "The model in the wild")."""
    return "nearest" if image.format == "JPEG" else SOURCE_RESIZE


def resize_for_model(image: Image.Image, method: str = "nearest", size: int = MODEL_SIZE) -> np.ndarray:
    """RGB image (already drafted) → size×size×3 uint8 by the named method."""
    if image.size != (size, size):
        if method == "reduce+nearest":
            factor = max(1, min(image.size) // size)
            image = image.reduce(factor) if factor > 1 else image
            image = image.resize((size, size), Image.Resampling.NEAREST)
        else:
            filters = {"nearest": Image.Resampling.NEAREST, "antialias": Image.Resampling.BILINEAR, "box": Image.Resampling.BOX}
            image = image.resize((size, size), filters[method])
    return np.asarray(image, dtype=np.uint8)
