"""A picture inside a picture: collage cells, pasted pictures and dithered GIF frames are judged,
the region that decided is reported and blurred, and benign composites pass."""

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from agent.actions.blur import blurred
from agent.classifier.preprocess import resize_method_for
from agent.decode import DecodeLimits, decode_image
from agent.policy import BUILTIN_PROFILES
from agent.regions import Region, plan_regions
from agent.scan import scan
from tests import media

CHILD = BUILTIN_PROFILES["child"]
CELL = 600


def _benign_cells(classifier, count: int = 4) -> list[Image.Image]:
    return [Image.open(p).convert("RGB") for p in media.child_benign_photos(classifier)[:count]]


def _overlap_share(region: Region, box: tuple[int, int, int, int]) -> float:
    """How much of ``box`` (left, top, right, bottom) the region covers."""
    w = min(region.left + region.width, box[2]) - max(region.left, box[0])
    h = min(region.top + region.height, box[3]) - max(region.top, box[1])
    return max(0, w) * max(0, h) / ((box[2] - box[0]) * (box[3] - box[1]))


def test_a_canary_in_one_cell_of_a_collage_is_caught_and_its_region_reported(tmp_path, classifier):
    cells = _benign_cells(classifier, 3)
    cells.insert(3, media.canary("porn-a"))  # bottom right
    path = tmp_path / "collage.jpg"
    media.collage(cells).save(path, quality=90)
    whole_only = next(scan([path], classifier, CHILD, threads=1, limits=DecodeLimits(regions=False)))
    assert whole_only.prediction == "benign"  # shrunk to 224 px with three photos, the canary is not seen
    result = next(scan([path], classifier, CHILD, threads=1))
    assert result.prediction == "malign" and result.region is not None
    assert _overlap_share(result.region, (CELL, CELL, 2 * CELL, 2 * CELL)) > 0.6, result.region


def test_benign_collages_pass(tmp_path, classifier):
    photos = _benign_cells(classifier, 8)
    paths = []
    for k in range(2):
        paths.append(tmp_path / f"collage-{k}.jpg")
        media.collage(photos[4 * k : 4 * k + 4]).save(paths[-1], quality=90)
    results = list(scan(paths, classifier, CHILD, threads=2))
    assert [r.prediction for r in results] == ["benign", "benign"]
    assert all(r.region is None for r in results)


def test_a_whole_flagged_picture_reports_no_region(tmp_path, classifier):
    path = tmp_path / "big.png"
    media.canary("porn-b").resize((900, 900)).save(path)
    result = next(scan([path], classifier, CHILD, threads=1))
    assert result.prediction == "malign" and result.region is None


def test_one_canary_frame_in_a_dithered_animated_gif_is_caught(tmp_path, classifier):
    frames = [ImageOps.fit(Image.open(p).convert("RGB"), (320, 320)) for p in media.child_benign_photos(classifier)[:7]]
    frames.insert(4, media.canary("sexy-b").resize((320, 320)))
    dithered = [f.quantize(256, dither=Image.Dither.FLOYDSTEINBERG) for f in frames]
    path = tmp_path / "anim.gif"
    dithered[0].save(path, save_all=True, append_images=dithered[1:], duration=100, loop=0)
    result = next(scan([path], classifier, CHILD, threads=1))
    assert result.prediction == "malign" and result.worst_frame == 4


def test_the_resize_follows_the_source(tmp_path):
    def opened(image: Image.Image, fmt: str) -> Image.Image:
        data = io.BytesIO()
        image.save(data, fmt)
        return Image.open(io.BytesIO(data.getvalue()))

    photo = media.photo().resize((1024, 768))
    assert resize_method_for(opened(photo, "JPEG")) == "nearest"  # drafted in the DCT: already averaged
    assert resize_method_for(opened(photo, "WEBP")) == "box"
    assert resize_method_for(opened(photo, "PNG")) == "box"  # an antialiased reduction
    assert resize_method_for(opened(photo.resize((150, 112)), "JPEG")) == "nearest"
    assert resize_method_for(opened(photo.quantize(256), "GIF")) == "box"


def test_regions_tile_the_picture_and_map_back_to_its_pixels(tmp_path):
    boxes = plan_regions(1600, 1200)
    assert len(boxes) == 9 and {(b.width, b.height) for b in boxes} == {(800, 600)}
    assert {(b.left, b.top) for b in boxes} == {(x, y) for x in (0, 400, 800) for y in (0, 300, 600)}
    assert plan_regions(320, 320) == ()  # too small for a crop to hold detail
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side: upright it is 1200 wide, 1600 high
    media.photo().resize((1600, 1200)).save(path, quality=90, exif=exif)
    decoded = decode_image(path)
    assert decoded.region_frames is not None and decoded.region_frames.shape == (9, 224, 224, 3)
    assert max(b.left + b.width for b in decoded.regions) == 1200 and max(b.top + b.height for b in decoded.regions) == 1600


def test_blur_of_a_region_leaves_the_rest_of_the_picture(tmp_path):
    picture = media.collage([media.photo(n) for n in media.BENIGN])
    data = io.BytesIO()
    picture.save(data, "PNG")
    region = Region(CELL, CELL, CELL, CELL)
    out = np.asarray(Image.open(io.BytesIO(blurred(data.getvalue(), region=region))).convert("RGB")).astype(int)
    before = np.asarray(picture).astype(int)
    margin = round(0.05 * 2 * CELL)
    assert np.array_equal(out[: CELL - margin], before[: CELL - margin])  # the top half, untouched
    assert np.abs(out[CELL + margin :, CELL + margin :] - before[CELL + margin :, CELL + margin :]).mean() > 10  # blurred
    whole = np.asarray(Image.open(io.BytesIO(blurred(data.getvalue()))).convert("RGB")).astype(int)
    assert np.abs(whole[: CELL - margin] - before[: CELL - margin]).mean() > 10  # without a region, all of it


def test_scan_csv_has_the_region_column(tmp_path, classifier):
    cells = _benign_cells(classifier, 3)
    cells.insert(0, media.canary("porn-a"))
    (tmp_path / "in").mkdir()
    media.collage(cells).save(tmp_path / "in" / "c.jpg", quality=90)
    media.canary("porn-b").save(tmp_path / "in" / "d.png")
    out = tmp_path / "out.csv"
    done = subprocess.run([sys.executable, "-m", "agent", "scan", str(tmp_path / "in"), "--format", "csv", "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert list(rows[0])[-1] == "region"
    by_name = {Path(r["file"]).name: r for r in rows}
    x, y, w, h = map(int, by_name["c.jpg"]["region"].split(","))
    assert by_name["c.jpg"]["prediction"] == "malign" and x < CELL // 2 and y < CELL // 2
    assert by_name["d.png"]["prediction"] == "malign" and by_name["d.png"]["region"] == ""


def test_tiles_come_from_every_kind_of_source_the_agent_holds(tmp_path):
    """A path, the bytes in memory, and an open file (what the agent holds for a picture over
    512 MB) all give the same tiles: padding a file cannot turn the regions off."""
    cells = [media.photo(n) for n in media.BENIGN]
    path = tmp_path / "collage.jpg"
    media.collage(cells).save(path, quality=90)
    from_path = decode_image(path)
    from_bytes = decode_image(io.BytesIO(path.read_bytes()))
    with open(path, "rb") as handle:
        from_handle = decode_image(handle)
    assert len(from_path.regions) == 9
    for other in (from_bytes, from_handle):
        assert other.regions == from_path.regions and np.array_equal(other.region_frames, from_path.region_frames)


def test_odd_pictures_decode_with_or_without_tiles(tmp_path):
    """No picture makes the region path fail: too small, one pixel wide, palette, 16-bit, CMYK."""
    cases = {
        "tiny.png": Image.new("RGB", (1, 1)),
        "line.png": Image.new("RGB", (1, 2000)),
        "wide.jpg": Image.new("RGB", (6000, 601), (120, 80, 40)),
        "palette.png": media.photo().resize((1200, 900)).quantize(64),
        "deep.png": Image.new("I;16", (800, 700), 40000),
        "cmyk.jpg": media.photo().resize((1000, 800)).convert("CMYK"),
    }
    for name, picture in cases.items():
        picture.save(tmp_path / name)
        decoded = decode_image(tmp_path / name)
        assert decoded.region_frames is not None and len(decoded.region_frames) == len(decoded.regions)
        assert len(decoded.regions) == (9 if min(picture.size) >= 600 else 0), name
