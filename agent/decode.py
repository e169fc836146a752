"""Path → model input (N×224×224×3 uint8 RGB frames), fast, bounded and with clear errors.

- The format comes from the file's content (Pillow sniffs it; HEIF via pillow-heif, AVIF built
  into Pillow), never from the extension.
- JPEGs decode in the DCT domain at the smallest scale that still covers 224 px
  (``Image.draft``), then one resize by the method the preprocessing study chose.
- EXIF orientation is applied; palette, CMYK, 16-bit, greyscale and alpha images become RGB,
  transparent areas shown on white.
- Animations (GIF, APNG, WebP): every frame is decoded in one forward pass (the codecs decode
  each frame on the way to the next anyway; seeking backwards would restart: O(n²)) and every
  new picture in it is judged, so a flagged frame cannot hide between samples. A frame that looks
  like the last new one (no 8×8 cell changed by more than ``SAME_PICTURE_LEVELS``) would score the
  same and is skipped. Past ``max_frames`` new pictures, the frames judged are an even spread
  plus a random sample of the rest that a file cannot predict (``_AnimationSampler``).
- Hard limits (pixels, frames, seconds) and every unreadable case end in ``DecodeError`` with
  one line.
"""

from __future__ import annotations

import errno
import io
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from agent.classifier.preprocess import MODEL_SIZE, draft_for_model, resize_for_model, resize_method_for
from agent.picture_hash import grey_glance
from agent.regions import MIN_PICTURE_SIDE, Region, plan_regions

try:  # HEIC/HEIF; an optional codec that fails to load costs only that format
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - pillow-heif is a dependency, but may be absent in odd builds
    pass

# Transparent areas are shown on white, as a browser or viewer shows them by default.
_BACKGROUND = (255, 255, 255)

DEFAULT_MAX_PIXELS = 150_000_000  # 150 MP: above any camera; a PNG that size is ~450 MB decoded
# Veil checks the pixel count itself, from the header, before any pixel is decoded, with a clear
# message. Pillow's own guard stays on everywhere else (the blur, a preview): it warns above this
# and refuses above twice this, so no image Veil opens can be a decompression bomb.
Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)  # over the limit, ours says it in one line
SAME_PICTURE_LEVELS = 8.0  # an animation frame is a new picture when some 8×8 cell of it moved more (0–255)


class DecodeError(Exception):
    """This file cannot be classified; ``str()`` is one line saying why."""


@dataclass(frozen=True)
class DecodeLimits:
    max_pixels: int = DEFAULT_MAX_PIXELS
    # Frames classified per animation: every new picture up to this many. The model takes 2.1 ms
    # a frame on a 2-core Xeon, so 256 frames add about half a second to a decode that costs
    # 1–38 ms a frame (benchmarks/RESULTS.md, "Animation sampling"); 38 MB of frames at most.
    max_frames: int = 256
    max_frames_in_file: int = 20_000  # a longer animation is refused rather than walked
    max_seconds: float = 120.0  # decoding one file longer than this is refused: nothing stalls the agent
    max_image_bytes: int = 512 << 20  # an image file is read into memory once (hashed and decoded from the same bytes)
    regions: bool = True  # also cut a still into regions that can hold an embedded picture (agent/regions.py)
    # also make the 32×32 glance picture hashes are made of: 0.45 ms for a drafted JPEG, 3 ms for a
    # 1080p PNG, 20 ms for 12 MP (measured), so only asked for while a parent's correction exists
    glance: bool = False


@dataclass(frozen=True)
class DecodedImage:
    frames: np.ndarray  # N×224×224×3 uint8
    frame_indices: tuple[int, ...]  # each classified frame's index in the file
    frame_count: int  # frames in the file
    format: str
    note: str | None = None  # set when decoding stopped early (the time limit): judged on what came before
    regions: tuple[Region, ...] = ()  # a still's regions, in the original (upright) image's pixels
    region_frames: np.ndarray | None = None  # K×224×224×3, one per region; None: regions not judged (off, or an animation)
    glance: np.ndarray | None = None  # the first frame as 32×32 grey, box-reduced: what picture hashes see (agent/picture_hash.py)


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


def spread_evenly(frame_count: int, limit: int) -> list[int]:
    """``limit`` frame indices spread evenly, first and last kept (all of them when there are fewer)."""
    if frame_count <= limit:
        return list(range(frame_count))
    if limit <= 1:
        return [0]
    return sorted({round(i * (frame_count - 1) / (limit - 1)) for i in range(limit)})


EVEN_SHARE = 32  # of an animation's judged frames, this many are always spread evenly


class _AnimationSampler:
    """Chooses, in one forward pass, which frames of an animation are judged: an even spread
    (``EVEN_SHARE``) plus every new picture, as long as they fit in ``limit``; past that, a uniform
    random sample of the new pictures (reservoir sampling, system randomness), so a file cannot
    know in advance which of its frames will be looked at. Holds at most ``limit`` frames."""

    def __init__(self, frame_count: int, limit: int):
        self.planned = set(spread_evenly(frame_count, min(limit, EVEN_SHARE)))
        self.room = max(0, limit - len(self.planned))
        self.kept: dict[int, np.ndarray] = {}
        self._extras: list[int] = []  # indices in the reservoir
        self._new_seen = 0
        self._last_new: np.ndarray | None = None
        self._random = random.SystemRandom()

    def offer(self, index: int, frame: np.ndarray) -> None:
        cells = frame.reshape(MODEL_SIZE // 8, 8, MODEL_SIZE // 8, 8, 3).mean(axis=(1, 3), dtype=np.float32)
        new = self._last_new is None or float(np.abs(cells - self._last_new).max()) > SAME_PICTURE_LEVELS
        if new:
            self._last_new = cells  # compared with the last new picture, so a slow fade is caught too
        if index in self.planned:
            self.kept[index] = frame
        elif new and self.room:
            self._new_seen += 1
            if len(self._extras) < self.room:
                slot = len(self._extras)
                self._extras.append(index)
            else:
                slot = self._random.randrange(self._new_seen)
                if slot >= self.room:
                    return
                del self.kept[self._extras[slot]]
                self._extras[slot] = index
            self.kept[index] = frame

    def frames(self) -> tuple[np.ndarray, tuple[int, ...]]:
        order = sorted(self.kept)
        return np.stack([self.kept[i] for i in order]), tuple(order)


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
    if isinstance(err, MemoryError):
        return "not enough memory to decode it"
    if isinstance(err, Image.DecompressionBombError):
        return f"image too large (over {DEFAULT_MAX_PIXELS:,} pixels)"
    message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if "truncated" in message:
        return f"truncated image ({message})"
    if isinstance(err, OSError) and err.strerror:
        return f"cannot read: {err.strerror}"
    return f"corrupt image data ({message})"


def _size_of(source: Path | IO[bytes]) -> int:
    if isinstance(source, Path):
        return source.stat().st_size
    if isinstance(source, io.BytesIO):
        return source.getbuffer().nbytes
    position = source.seek(0, io.SEEK_END)
    source.seek(0)
    return position


_ORIENTATION = 0x0112  # the EXIF tag


def _for_regions(source: Path | IO[bytes], upright: Image.Image, original: tuple[int, int]) -> Image.Image:
    """The picture with enough detail to cut regions from: a JPEG drafted for the whole frame is
    decoded again at twice that size (the whole frame keeps exactly the measured preprocessing)."""
    if min(upright.size) >= 2 * MODEL_SIZE or min(original) < MIN_PICTURE_SIDE:
        return upright  # a draft to twice the size would give these same pixels; or too small for regions
    if not isinstance(source, Path):
        source.seek(0)  # the same bytes again (the agent hashes what it holds, and re-hashes a handle after judging)
    with Image.open(source) as image:
        if image.format != "JPEG" or min(image.size) <= min(upright.size):
            return upright  # not drafted: the decoded picture is all the detail there is
        draft_for_model(image, 2 * MODEL_SIZE)
        return to_rgb(ImageOps.exif_transpose(image))


def _region_views(upright: Image.Image, original: tuple[int, int]) -> tuple[tuple[Region, ...], np.ndarray]:
    """The regions of a decoded still at model size, and where each lies in the original image."""
    boxes = plan_regions(*upright.size) if min(original) >= MIN_PICTURE_SIDE else ()
    if not boxes:  # judged for regions, and too small to hold any
        return (), np.empty((0, MODEL_SIZE, MODEL_SIZE, 3), dtype=np.uint8)
    # reduce+nearest: an integer box reduction, then nearest neighbour — antialiased to within 2×,
    # like the DCT draft, at a tenth of the cost of a bilinear resize (nine crops per picture)
    frames = np.stack([resize_for_model(upright.crop((b.left, b.top, b.left + b.width, b.top + b.height)), "reduce+nearest") for b in boxes])
    scale_x, scale_y = original[0] / upright.size[0], original[1] / upright.size[1]
    return tuple(b.scaled(scale_x, scale_y) for b in boxes), frames


def decode_image(source: Path | IO[bytes], limits: DecodeLimits = DecodeLimits()) -> DecodedImage:
    """Decode a still or animated image (a path, or the bytes already read) to model-size frames,
    or raise ``DecodeError``."""
    deadline = time.monotonic() + limits.max_seconds
    try:
        if _size_of(source) == 0:
            raise DecodeError("empty file (0 bytes)")
        with Image.open(source) as image:
            width, height = image.size
            if width * height > limits.max_pixels:
                raise DecodeError(f"image too large ({width}×{height} = {width * height:,} pixels; limit {limits.max_pixels:,})")
            frame_count = int(getattr(image, "n_frames", 1))
            if frame_count > limits.max_frames_in_file:
                raise DecodeError(f"too many frames ({frame_count:,}; limit {limits.max_frames_in_file:,})")
            fmt = image.format or "unknown"
            if frame_count == 1:
                method = resize_method_for(image)
                upright_size = (height, width) if image.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8) else (width, height)
                draft_for_model(image)
                upright = to_rgb(ImageOps.exif_transpose(image))
                frame = resize_for_model(upright, method)
                regions: tuple[Region, ...] = ()
                region_frames = None
                if limits.regions:
                    regions, region_frames = _region_views(_for_regions(source, upright, upright_size), upright_size)
                glance = grey_glance(upright) if limits.glance else None
                return DecodedImage(frame[None], (0,), 1, fmt, regions=regions, region_frames=region_frames, glance=glance)
            sampler = _AnimationSampler(frame_count, limits.max_frames)
            method = resize_method_for(image)
            note = None
            glance = None
            for index in range(frame_count):  # ascending: forward seeks only
                if time.monotonic() > deadline:
                    note = f"decoding stopped after {limits.max_seconds:.0f} s at frame {index:,} of {frame_count:,}"
                    if not sampler.kept:
                        raise DecodeError(f"took longer than {limits.max_seconds:.0f} s to decode (frame {index:,} of {frame_count:,})")
                    break  # what was decoded is judged, and the note says where it stopped
                image.seek(index)
                rgb = to_rgb(image)
                if glance is None and limits.glance:
                    glance = grey_glance(rgb)
                sampler.offer(index, resize_for_model(rgb, method))
            frames, indices = sampler.frames()
            return DecodedImage(frames, indices, frame_count, fmt, note, glance=glance)
    except DecodeError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError, MemoryError) as err:
        # Pillow signals corrupt data with all of these, depending on the codec.
        raise DecodeError(read_error_message(err)) from None


def load_model_input(path: Path) -> np.ndarray:
    """The first (or only) frame at model size: 224×224×3 uint8."""
    return decode_image(path).frames[0]


__all__ = ["MODEL_SIZE", "DecodeError", "DecodeLimits", "DecodedImage", "decode_image", "load_model_input", "read_error_message", "sniff", "to_rgb"]
