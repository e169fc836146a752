"""The resize paths against their definitions."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agent.classifier.preprocess import MODEL_SIZE, aligned_bilinear, draft_for_model, resize_for_model
from agent.decode import load_model_input, to_rgb
from tests.conftest import PHOTOS


def test_aligned_bilinear_matches_tensorflow():
    """nsfwjs's resize is TF's resize_bilinear(align_corners=True): compare with TF itself."""
    tf = pytest.importorskip("tensorflow")
    pixels = np.asarray(Image.open(PHOTOS / "scikit-astronaut.jpg").convert("RGB"))
    ours = aligned_bilinear(pixels).astype(np.float32)
    theirs = tf.compat.v1.image.resize_bilinear(pixels[None].astype(np.float32), (MODEL_SIZE, MODEL_SIZE), align_corners=True)
    assert np.abs(ours - np.rint(theirs.numpy()[0])).max() <= 1.0


def test_aligned_bilinear_keeps_corners():
    pixels = np.random.default_rng(1).integers(0, 256, (501, 333, 3), dtype=np.uint8)
    out = aligned_bilinear(pixels)
    assert out.shape == (MODEL_SIZE, MODEL_SIZE, 3)
    for r, c in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert (out[r, c] == pixels[r, c]).all()


def test_jpeg_draft_decodes_at_reduced_scale(tmp_path: Path):
    big = Image.open(PHOTOS / "scikit-coffee.jpg").convert("RGB").resize((2400, 1600))
    path = tmp_path / "big.jpg"
    big.save(path, quality=90)
    with Image.open(path) as image:
        draft_for_model(image)
        image.load()
        # 1/4 scale is the smallest that keeps both sides >= 224 (1/8 would give 300x200)
        assert image.size == (600, 400)


def test_model_input_is_224_uint8_rgb():
    pixels = load_model_input(PHOTOS / "scikit-chelsea.jpg")
    assert pixels.shape == (MODEL_SIZE, MODEL_SIZE, 3) and pixels.dtype == np.uint8
    assert resize_for_model(Image.new("RGB", (MODEL_SIZE, MODEL_SIZE), (1, 2, 3)))[5, 5].tolist() == [1, 2, 3]


def test_alpha_is_composited_on_white_not_black():
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))  # fully transparent red
    assert to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)
    palette = Image.new("P", (10, 10), 0)
    palette.info["transparency"] = 0
    assert to_rgb(palette).getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    grey16 = Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16))
    assert to_rgb(grey16).getpixel((0, 0)) == (156, 156, 156)  # 40000 >> 8
