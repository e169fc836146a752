"""Path → model input (N×224×224×3 uint8 RGB frames), fast, bounded and with clear errors.

- The format comes from the file's content (Pillow sniffs it; HEIF via pillow-heif, AVIF built
  into Pillow), never from the extension.
- JPEGs decode in the DCT domain at the smallest scale that still covers 224 px
  (``Image.draft``), then one resize by the method the preprocessing study chose.
- EXIF orientation is applied; palette, CMYK, 16-bit, greyscale and alpha images become RGB,
  transparent areas shown on white.
- Animations (GIF, APNG, WebP): up to ``max_frames`` frames spread evenly over the animation,
  visited in one forward pass (seeking backwards restarts decoding: O(n²)), classified as one
  batch by the caller.
- Hard limits (pixels, frames) and every unreadable case end in ``DecodeError`` with one line.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from agent.classifier.preprocess import MODEL_SIZE, draft_for_model, resize_for_model

try:  # HEIC/HEIF; an optional codec that fails to load costs only that format
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - pillow-heif is a dependency, but may be absent in odd builds
    pass

# Transparent areas are shown on white, as a browser or viewer shows them by default.
_BACKGROUND = (255, 255, 255)

DEFAULT_MAX_PIXELS = 150_000_000  # 150 MP: above any camera; a PNG that size is ~450 MB decoded
# Veil checks the pixel count itself, from the header, before any pixel is decoded, with a clear
# message; Pillow's own check would only add a warning, so it is left to ours.
Image.MAX_IMAGE_PIXELS = None


class DecodeError(Exception):
    """This file cannot be classified; ``str()`` is one line saying why."""


@dataclass(frozen=True)
class DecodeLimits:
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_frames: int = 32  # frames classified per animation
    max_frames_in_file: int = 20_000  # a longer animation is refused rather than walked


@dataclass(frozen=True)
class DecodedImage:
    frames: np.ndarray  # N×224×224×3 uint8
    frame_indices: tuple[int, ...]  # each classified frame's index in the file
    frame_count: int  # frames in the file
    format: str


# Magic numbers of what Veil classifies: enough to pick candidates in a folder without opening
# every file with Pillow (a folder may hold anything).
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")
_VIDEO_MAGIC = (
    b"\x1a\x45\xdf\xa3",  # Matroska / WebM
    b"\x00\x00\x01\xba",  # MPEG program stream (.mpg, .vob)
    b"FLV\x01",
    b"\x30\x26\xb2\x75\x8e\x66\xcf\x11",  # ASF (.wmv, .asf)
    b"\x06\x0e\x2b\x34\x02\x05\x01\x01",  # MXF
)
_AUDIO_BRANDS = (b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B ")  # an ftyp box that is sound only
_OGG_VIDEO = (b"\x80theora", b"OVP80", b"\x80daala")  # the first Ogg page names its codec
SNIFF_BYTES = 512  # enough for an MPEG transport stream's second sync byte and Ogg's first page


def _mpeg_ts(head: bytes) -> bool:
    """188-byte packets starting with 0x47 (.ts), or 192-byte ones behind a timestamp (.m2ts, .mts)."""
    return any(len(head) > offset + 2 * size and all(head[offset + i * size] == 0x47 for i in range(3))
               for size, offset in ((188, 0), (192, 4)))


def sniff(head: bytes) -> str | None:
    """``"image"``, ``"video"`` or None from a file's first ``SNIFF_BYTES`` bytes: what decides,
    whatever the file is called, whether a file is judged."""
    if head.startswith(_IMAGE_MAGIC):
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return "image"
        return None if brand in _AUDIO_BRANDS else "video"  # MP4, MOV, 3GP and their many brands
    if head.startswith(_VIDEO_MAGIC) or _mpeg_ts(head):
        return "video"
    if head.startswith(b"OggS") and any(codec in head for codec in _OGG_VIDEO):
        return "video"
    return None


def sniff_file(path: Path) -> str | None:
    """``sniff`` of a file's first bytes (OSError when it cannot be opened or read)."""
    with open(path, "rb") as handle:
        return sniff(handle.read(SNIFF_BYTES))


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode → RGB; alpha composited onto white instead of dropped (which shows black)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, _BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit greyscale: keep the high byte rather than clip at 255.
        array = np.asarray(image, dtype=np.uint32)
        return Image.fromarray((array >> 8).astype(np.uint8) if array.max() > 255 else array.astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def _frame_plan(frame_count: int, limit: int) -> list[int]:
    """Frame indices to classify: all of them, or ``limit`` spread evenly, first and last kept."""
    if frame_count <= limit:
        return list(range(frame_count))
    return sorted({round(i * (frame_count - 1) / (limit - 1)) for i in range(limit)})


def read_error_message(err: BaseException) -> str:
    """One line for the user from whatever reading or decoding a file raised."""
    if isinstance(err, FileNotFoundError) or (isinstance(err, OSError) and err.errno == errno.ENOENT):
        return "file vanished before it could be read"
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, IsADirectoryError):
        return "is a directory"
    if isinstance(err, UnidentifiedImageError):
        return "not an image Veil can read (unknown or corrupt format)"
    if isinstance(err, Image.DecompressionBombError):
        return f"image too large (over {DEFAULT_MAX_PIXELS:,} pixels)"
    message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if "truncated" in message:
        return f"truncated image ({message})"
    if isinstance(err, OSError) and err.strerror:
        return f"cannot read: {err.strerror}"
    return f"corrupt image data ({message})"


def decode_image(path: Path, limits: DecodeLimits = DecodeLimits()) -> DecodedImage:
    """Decode a still or animated image to model-size frames, or raise ``DecodeError``."""
    try:
        if path.stat().st_size == 0:
            raise DecodeError("empty file (0 bytes)")
        with Image.open(path) as image:
            width, height = image.size
            if width * height > limits.max_pixels:
                raise DecodeError(f"image too large ({width}×{height} = {width * height:,} pixels; limit {limits.max_pixels:,})")
            frame_count = int(getattr(image, "n_frames", 1))
            if frame_count > limits.max_frames_in_file:
                raise DecodeError(f"too many frames ({frame_count:,}; limit {limits.max_frames_in_file:,})")
            fmt = image.format or "unknown"
            if frame_count == 1:
                draft_for_model(image)
                frame = resize_for_model(to_rgb(ImageOps.exif_transpose(image)))
                return DecodedImage(frame[None], (0,), 1, fmt)
            plan = _frame_plan(frame_count, limits.max_frames)
            frames = []
            for index in plan:  # ascending: forward seeks only
                image.seek(index)
                frames.append(resize_for_model(to_rgb(image)))
            return DecodedImage(np.stack(frames), tuple(plan), frame_count, fmt)
    except DecodeError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
        # Pillow signals corrupt data with all of these, depending on the codec.
        raise DecodeError(read_error_message(err)) from None


def load_model_input(path: Path) -> np.ndarray:
    """The first (or only) frame at model size: 224×224×3 uint8."""
    return decode_image(path).frames[0]


__all__ = ["MODEL_SIZE", "DecodeError", "DecodeLimits", "DecodedImage", "decode_image", "load_model_input", "read_error_message", "sniff", "to_rgb"]
