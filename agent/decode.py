"""Path → model input (224×224×3 uint8 RGB), fast and with clear errors.

JPEGs are decoded in the DCT domain at the smallest sufficient scale (``Image.draft``), then
resized once by the method the preprocessing study chose (agent.classifier.preprocess).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from agent.classifier.preprocess import draft_for_model, resize_for_model

# Transparent areas are shown on white, as a browser or viewer shows them by default.
_BACKGROUND = (255, 255, 255)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode → RGB; alpha composited onto white instead of dropped (which shows black)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, _BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale down rather than clip.
        array = np.asarray(image, dtype=np.uint32)
        return Image.fromarray((array >> 8).astype(np.uint8) if array.max() > 255 else array.astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def load_model_input(path: Path) -> np.ndarray:
    """Decode one still image (first frame) at model size."""
    with Image.open(path) as image:
        draft_for_model(image)
        image = ImageOps.exif_transpose(image)
        return resize_for_model(to_rgb(image))
