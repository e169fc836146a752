"""Decoding real files of every format, animations and every bad input."""

import numpy as np
import pytest
from PIL import Image

from agent.decode import DecodeError, DecodeLimits, _frame_plan, decode_image, sniff
from agent.policy import BUILTIN_PROFILES, decide, worst_frame
from tests import media

CHILD = BUILTIN_PROFILES["child"]


@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    return media.write_formats(tmp_path_factory.mktemp("formats"))


@pytest.mark.parametrize("name", ["still.jpg", "still.png", "still.webp", "still.bmp", "still.tiff", "still.gif",
                                  "still.avif", "still.heic", "cmyk.jpg", "grey.png", "palette.png", "grey16.png", "tiny.png"])
def test_every_format_decodes_to_a_benign_frame(formats, classifier, name):
    decoded = decode_image(formats[name])
    assert decoded.frames.shape == (1, 224, 224, 3) and decoded.frames.dtype == np.uint8
    assert decoded.frame_count == 1
    if name != "tiny.png":  # a 1×1 image is one flat colour: nothing to classify
        assert decide(classifier.classify(decoded.frames)[0], CHILD).prediction == "benign"


def test_formats_agree_with_each_other(formats):
    """Lossless formats give the same pixels as the PNG; lossy ones stay close."""
    reference = decode_image(formats["still.png"]).frames[0].astype(int)
    for name in ("still.bmp", "still.tiff"):
        assert np.array_equal(decode_image(formats[name]).frames[0], reference)
    for name in ("still.jpg", "still.webp", "still.avif", "still.heic"):
        assert np.abs(decode_image(formats[name]).frames[0].astype(int) - reference).mean() < 12, name


def test_format_is_detected_from_content_not_extension(formats, tmp_path):
    disguised = tmp_path / "holiday.txt"
    disguised.write_bytes(formats["still.png"].read_bytes())
    assert decode_image(disguised).format == "PNG"
    assert sniff(disguised.read_bytes()[:32]) == "image"
    assert sniff(b"plain text file, nothing more....") is None


def test_exif_orientation_is_applied(tmp_path):
    decoded = decode_image(media.exif_rotated_jpeg(tmp_path / "rotated.jpg"))
    upright = np.asarray(media.photo().resize((400, 300)).resize((224, 224), Image.Resampling.NEAREST)).astype(int)
    assert np.abs(decoded.frames[0].astype(int) - upright).mean() < 12


def test_transparency_is_white_not_black(tmp_path):
    path = tmp_path / "alpha.png"
    media.rgba_with_transparent_half().save(path)
    frame = decode_image(path).frames[0]
    assert frame[:, 150:].min() == 255  # the transparent right half


@pytest.mark.parametrize("fmt,suffix", [("GIF", "gif"), ("WEBP", "webp"), ("PNG", "png")])
def test_one_canary_frame_flags_an_animation(tmp_path, classifier, fmt, suffix):
    path = media.save_animation(tmp_path / f"anim.{suffix}", media.animation_frames(canary_at=5), fmt)
    decoded = decode_image(path)
    assert decoded.frame_count == 8 and decoded.frame_indices == tuple(range(8))
    scores = classifier.classify(decoded.frames)
    worst = worst_frame(scores, CHILD)
    assert decoded.frame_indices[worst] == 5
    assert decide(scores[worst], CHILD).prediction == "malign"
    assert all(decide(s, CHILD).prediction == "benign" for i, s in enumerate(scores) if i != 5)


def test_long_animation_is_sampled_forward_and_bounded(tmp_path):
    path = media.save_animation(tmp_path / "long.gif", media.animation_frames(None, count=100, size=(64, 64)), "GIF")
    decoded = decode_image(path, DecodeLimits(max_frames=10))
    assert decoded.frame_count == 100
    assert decoded.frame_indices[0] == 0 and decoded.frame_indices[-1] == 99 and len(decoded.frame_indices) == 10
    assert list(decoded.frame_indices) == sorted(decoded.frame_indices)
    with pytest.raises(DecodeError, match="too many frames \\(100; limit 50\\)"):
        decode_image(path, DecodeLimits(max_frames_in_file=50))


def test_frame_plan_spreads_evenly():
    assert _frame_plan(5, 32) == [0, 1, 2, 3, 4]
    assert _frame_plan(1000, 5) == [0, 250, 500, 749, 999]


@pytest.mark.parametrize(
    "name,message",
    [
        ("empty.jpg", "empty file \\(0 bytes\\)"),
        ("truncated.jpg", "truncated image"),
        ("corrupt.png", "corrupt image data|not an image Veil can read"),
        ("bomb.png", "image too large \\(13000×13000 = 169,000,000 pixels; limit 150,000,000\\)"),
    ],
)
def test_bad_inputs_give_one_clear_line(tmp_path, name, message):
    path = media.write_bad_inputs(tmp_path)[name]
    with pytest.raises(DecodeError, match=message) as err:
        decode_image(path)
    assert "\n" not in str(err.value)


def test_vanished_and_unreadable_files(tmp_path, monkeypatch):
    with pytest.raises(DecodeError, match="file vanished"):
        decode_image(tmp_path / "gone.jpg")
    path = tmp_path / "locked.jpg"
    media.photo().save(path)

    def denied(*args, **kwargs):  # the OS edge: as root, chmod 000 would not stop the read
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Image, "open", denied)
    with pytest.raises(DecodeError, match="permission denied"):
        decode_image(path)
