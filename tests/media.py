"""Real files of every format and every kind of bad input, made from the committed photos and
canaries (TESTDATA.md): nothing explicit, nothing downloaded."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import CANARIES, PHOTOS

BENIGN = ("scikit-coffee.jpg", "scikit-chelsea.jpg", "plasma-autumn.jpg", "lomiri-bridge_by_sander_klootwijk.jpg")


def child_flagged_canaries() -> list[Path]:
    """The robust canaries the child profile must flag (the porn, hentai and sexy ones; not the
    drawing canaries or the borderline ones, which exist to sit near thresholds)."""
    from tests.conftest import canary_index

    return [CANARIES / f"{name}.png" for name, spec in sorted(canary_index().items())
            if spec["robust"] and max(spec["target"], key=spec["target"].get) in ("porn", "hentai", "sexy")]


def child_benign_photos(classifier=None) -> list[Path]:
    """The real photos the model calls benign under the child profile: abstract wallpapers among
    them are false alarms (models/preprocess-study.json), and a test of the agent's plumbing must
    know which files Veil will rightly leave alone. Without a classifier, one is opened for this."""
    from agent.classifier import open_classifier
    from agent.config import ModelSection
    from agent.policy import BUILTIN_PROFILES
    from agent.scan import scan

    if classifier is None:
        with open_classifier(ModelSection(accelerator="cpu", threads=2)) as own:
            return child_benign_photos(own)
    results = scan(sorted(PHOTOS.glob("*.jpg")), classifier, BUILTIN_PROFILES["child"], threads=2)
    return [r.path for r in results if r.prediction == "benign"]


def machine_line() -> str:
    """The machine a benchmark ran on, as its first output line."""
    import platform

    return f"machine: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}"


def photo(name: str = "scikit-coffee.jpg") -> Image.Image:
    return Image.open(PHOTOS / name).convert("RGB")


def canary(name: str = "porn-a") -> Image.Image:
    return Image.open(CANARIES / f"{name}.png").convert("RGB")


def collage(cells: list[Image.Image], cell: int = 600) -> Image.Image:
    """A 2×2 collage: each picture fitted into its cell, a 4-px white frame around each."""
    from PIL import ImageOps

    out = Image.new("RGB", (2 * cell, 2 * cell), (255, 255, 255))
    for i, picture in enumerate(cells):
        out.paste(ImageOps.fit(picture, (cell - 8, cell - 8)), ((i % 2) * cell + 4, (i // 2) * cell + 4))
    return out


def animation_frames(canary_at: int | None, count: int = 8, size: tuple[int, int] = (320, 320)) -> list[Image.Image]:
    """Benign photo frames; the canary replaces frame ``canary_at``."""
    frames = [photo(BENIGN[i % len(BENIGN)]).resize(size) for i in range(count)]
    if canary_at is not None:
        frames[canary_at] = canary().resize(size)
    return frames


def save_animation(path: Path, frames: list[Image.Image], fmt: str, **extra) -> Path:
    options = {"save_all": True, "append_images": frames[1:], "duration": 100, "loop": 0, **extra}
    if fmt == "GIF":
        # adaptive palettes per frame keep the canary's colours close enough to drive the model
        frames = [f.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE) for f in frames]
        options["append_images"] = frames[1:]
    frames[0].save(path, fmt, **options)
    return path


def write_formats(folder: Path) -> dict[str, Path]:
    """One benign still per format, plus variants of mode and metadata."""
    folder.mkdir(parents=True, exist_ok=True)
    img = photo()
    out: dict[str, Path] = {}

    def put(name: str, image: Image.Image, fmt: str, **options) -> None:
        out[name] = folder / name
        image.save(out[name], fmt, **options)

    put("still.jpg", img, "JPEG", quality=90)
    put("still.png", img, "PNG")
    put("still.webp", img, "WEBP", quality=85)
    put("still.bmp", img, "BMP")
    put("still.tiff", img, "TIFF")
    put("still.gif", img.quantize(256), "GIF")
    put("still.avif", img, "AVIF", quality=70)
    put("still.heic", img, "HEIF", quality=80)
    put("cmyk.jpg", img.convert("CMYK"), "JPEG", quality=90)
    put("grey.png", img.convert("L"), "PNG")
    put("palette.png", img.quantize(64), "PNG")
    grey16 = Image.fromarray(np.asarray(img.convert("L"), dtype=np.uint16) * 257)
    put("grey16.png", grey16, "PNG")
    put("tiny.png", img.resize((1, 1)), "PNG")
    return out


def rgba_with_transparent_half(size=(400, 300)) -> Image.Image:
    """A photo whose right half is fully transparent (with black RGB underneath)."""
    img = photo().resize(size).convert("RGBA")
    pixels = np.asarray(img).copy()
    pixels[:, size[0] // 2 :, :3] = 0
    pixels[:, size[0] // 2 :, 3] = 0
    return Image.fromarray(pixels, "RGBA")


def exif_rotated_jpeg(path: Path) -> Path:
    """A landscape photo stored rotated, with EXIF orientation 6 (rotate 90° clockwise to view)."""
    img = photo().resize((400, 300))
    stored = img.transpose(Image.Transpose.ROTATE_90)  # what a camera held sideways writes
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path


def jpeg_with_exif_thumbnail(path: Path, picture: Image.Image, thumbnail: bytes, orientation: int = 6) -> Path:
    """A JPEG whose EXIF holds an orientation and an embedded thumbnail (IFD1), as cameras and
    phones write them: built by hand, little-endian TIFF, so the thumbnail is exactly ``thumbnail``."""
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHII", 0x0112, 3, 1, orientation) + struct.pack("<I", 26)
    ifd1 = struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, 56) + struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail))
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd0 + ifd1 + struct.pack("<I", 0) + thumbnail
    picture.save(path, "JPEG", quality=95, exif=b"Exif\x00\x00" + tiff)
    return path


def write_bad_inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    buffer = io.BytesIO()
    photo().save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    out["empty.jpg"] = folder / "empty.jpg"
    out["empty.jpg"].write_bytes(b"")
    out["truncated.jpg"] = folder / "truncated.jpg"
    out["truncated.jpg"].write_bytes(data[: len(data) // 3])
    out["corrupt.png"] = folder / "corrupt.png"
    out["corrupt.png"].write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2000))
    out["bomb.png"] = folder / "bomb.png"
    Image.new("1", (13_000, 13_000)).save(out["bomb.png"], "PNG")  # 169 MP, a few hundred KB
    return out
