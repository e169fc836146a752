"""Decoding real files of every format, animations and every bad input."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from agent.decode import DecodeError, DecodeLimits, decode_image, sniff, spread_evenly
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


def testspread_evenly_spreads_evenly():
    assert spread_evenly(5, 32) == [0, 1, 2, 3, 4]
    assert spread_evenly(1000, 5) == [0, 250, 500, 749, 999]


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


def _photo_run_with_canary(count: int, canary_at: int, size=(96, 96)) -> list[Image.Image]:
    """A long animation of a few photos, each held for ten frames (each a shade brighter than the
    last, as video noise: the GIF writer would merge identical frames), one canary frame among them."""
    photos = [media.photo(media.BENIGN[i % len(media.BENIGN)]).resize(size) for i in range(4)]
    frames = [photos[(i // 10) % 4].point(lambda v, shade=i % 3: min(255, v + 3 * shade)) for i in range(count)]
    frames[canary_at] = media.canary().resize(size)
    return frames


@pytest.mark.parametrize("fmt,suffix", [("GIF", "gif"), ("PNG", "png"), ("WEBP", "webp")])
def test_a_flagged_frame_between_the_even_samples_is_judged(tmp_path, classifier, fmt, suffix):
    """Frame 137 of 200 is not among 32 evenly spaced samples (135 and 141 are): a file crafted
    for the old sampling. Every new picture is judged now, so it is found."""
    assert 137 not in spread_evenly(200, 32)
    # lossless WebP: lossy coding would make neighbouring frames identical, and the writer merge them
    path = media.save_animation(tmp_path / f"crafted.{suffix}", _photo_run_with_canary(200, 137), fmt,
                                **({"lossless": True} if fmt == "WEBP" else {}))
    decoded = decode_image(path)
    assert 137 in decoded.frame_indices
    scores = classifier.classify(decoded.frames)
    worst = worst_frame(scores, CHILD)
    assert decoded.frame_indices[worst] == 137 and decide(scores[worst], CHILD).prediction == "malign"


def test_past_the_limit_new_pictures_are_sampled_where_a_file_cannot_predict(tmp_path):
    frames = [media.photo(media.BENIGN[i % len(media.BENIGN)]).resize((64, 64)).rotate(i * 3) for i in range(120)]
    path = media.save_animation(tmp_path / "many.gif", frames, "GIF")
    limits = DecodeLimits(max_frames=40)
    runs = [decode_image(path, limits).frame_indices for _ in range(3)]
    assert all(len(run) == 40 for run in runs)
    assert all(set(spread_evenly(120, 32)) <= set(run) for run in runs)  # the even spread is always there
    assert len({run for run in runs}) > 1  # the rest is drawn afresh each time


def test_an_animation_that_takes_too_long_is_judged_on_what_was_decoded(tmp_path, monkeypatch):
    """A clock that moves a second per look stands in for a slow decode (no timing in tests)."""
    import agent.decode as decode_module

    path = media.save_animation(tmp_path / "slow.gif", media.animation_frames(None, count=20, size=(64, 64)), "GIF")
    with pytest.raises(DecodeError, match="took longer than 0 s to decode"):
        decode_image(path, DecodeLimits(max_seconds=0))  # not even the first frame: refused
    ticks = iter(range(10_000))
    monkeypatch.setattr(decode_module.time, "monotonic", lambda: float(next(ticks)))
    decoded = decode_image(path, DecodeLimits(max_seconds=5.5))
    assert decoded.note == "decoding stopped after 6 s at frame 5 of 20"
    assert max(decoded.frame_indices) < 5 and 0 in decoded.frame_indices


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width``×``height`` with almost no data behind it: a bomb."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_pillow_guard_stays_on_outside_veils_checked_decode(tmp_path):
    from agent.actions.blur import BlurError, blurred

    bomb = _png_claiming(20_000, 20_000)  # 400 MP: over twice the limit
    (tmp_path / "bomb.png").write_bytes(bomb)
    with pytest.raises(DecodeError, match="image too large"):
        decode_image(tmp_path / "bomb.png")
    with pytest.raises(Image.DecompressionBombError):
        Image.open(tmp_path / "bomb.png")  # any Pillow use in Veil, not only the checked decode
    with pytest.raises(BlurError, match="cannot blur"):
        blurred(bomb)
