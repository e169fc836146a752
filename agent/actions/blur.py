"""A blurred stand-in for a flagged image: same format, same size as shown, every frame
unrecognisable, and no metadata of the original (EXIF and its embedded thumbnail, XMP, ICC).

The picture is shrunk to 3 pixels along its shorter side, blown back up with a Gaussian blur on
top and half desaturated: a soft, muted gradient of the original colours (a user sees that
something was there), no shapes. Milder settings were not enough for the model itself: at 12
pixels a blurred canary still scored 0.51 malign (child); at 3 pixels and half saturation the
worst of all canaries, as PNG and JPEG, scored 0.043 (tests/component/test_blur.py). The original goes to the
vault (``Vault.quarantine(..., stand_in=blurred)``); restore puts it back over the stand-in.

Memory and time are bounded whatever the file: at most ``PIXEL_BUDGET`` pixels of stand-in frames
are held (about 190 MB as RGB). A long animation's stand-in keeps an even spread of its frames,
each shown for as long as the frames it stands for, so it plays for as long as the original; a
still over the budget gets a stand-in scaled down to it (a blur has no detail to lose).
"""

from __future__ import annotations

import io
import time

from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from agent.decode import spread_evenly, to_rgb
from agent.errors import VeilError
from agent.regions import Region

_CELLS = 3  # pixels along the shorter side after shrinking
_SATURATION = 0.5
PIXEL_BUDGET = 64_000_000  # of all the stand-in's frames together
MAX_SECONDS = 120.0


class BlurError(VeilError):
    pass


def _blur_frame(frame: Image.Image, size: tuple[int, int]) -> Image.Image:
    rgb = to_rgb(frame)
    w, h = rgb.size
    scale = _CELLS / max(1, min(w, h))
    small = rgb.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)
    soft = small.resize(size, Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(radius=max(size) / 40))
    return ImageEnhance.Color(soft).enhance(_SATURATION)


def _output_size(width: int, height: int, budget: int) -> tuple[int, int]:
    if width * height <= budget:
        return width, height
    scale = (budget / (width * height)) ** 0.5
    return max(1, int(width * scale)), max(1, int(height * scale))


REGION_MARGIN = 0.05  # of the picture's size, added around a flagged region before it is blurred


def blurred(content: bytes, pixel_budget: int = PIXEL_BUDGET, max_seconds: float = MAX_SECONDS,
            region: Region | None = None) -> bytes:
    """The stand-in's bytes, in the original's format (animations keep their timing). With a
    ``region`` (of a still, in its upright pixels) only that part, plus a margin, is blurred and
    the rest of the picture stays as it was. Whatever goes wrong is a BlurError: the move is then
    refused and the original stays where it is."""
    try:
        return _blurred(content, pixel_budget, max_seconds, region)
    except BlurError:
        raise
    except Exception as err:  # a codec's own failure mode, whatever its type: one line, never a crashed worker
        raise BlurError(f"cannot blur: {type(err).__name__}: {err}") from None


def _blur_region(frame: Image.Image, region: Region) -> Image.Image:
    rgb = to_rgb(frame).copy()
    w, h = rgb.size
    mx, my = round(REGION_MARGIN * w), round(REGION_MARGIN * h)
    box = (max(0, region.left - mx), max(0, region.top - my), min(w, region.left + region.width + mx),
           min(h, region.top + region.height + my))
    if box[2] <= box[0] or box[3] <= box[1]:
        raise BlurError(f"region {region.left},{region.top},{region.width},{region.height} lies outside the picture")
    rgb.paste(_blur_frame(rgb.crop(box), (box[2] - box[0], box[3] - box[1])), box[:2])
    return rgb


def _blurred(content: bytes, pixel_budget: int, max_seconds: float, region: Region | None = None) -> bytes:
    deadline = time.monotonic() + max_seconds
    try:
        with Image.open(io.BytesIO(content)) as image:
            fmt = image.format
            if fmt is None:
                raise BlurError("unknown image format")
            size = _output_size(*image.size, pixel_budget)
            frame_count = int(getattr(image, "n_frames", 1))
            keep = set(spread_evenly(frame_count, max(1, min(frame_count, pixel_budget // (size[0] * size[1])))))
            frames: list[Image.Image] = []
            durations: list[int] = []
            for index in range(frame_count):  # forward only; a frame not kept lends its time to the last kept one
                if time.monotonic() > deadline:
                    raise BlurError(f"blurring took longer than {max_seconds:.0f} s (frame {index:,} of {frame_count:,})")
                image.seek(index)
                duration = int(image.info.get("duration", 100) or 0)
                if index in keep:
                    # The orientation is applied, not copied: the stand-in carries no EXIF at all,
                    # so no embedded thumbnail of the original survives in it (nor XMP or ICC data).
                    upright = ImageOps.exif_transpose(image) if frame_count == 1 else image
                    if region is not None and frame_count == 1 and size == image.size:
                        frames.append(_blur_region(upright, region))
                    else:  # the whole picture: an animation, no region, or a picture over the budget
                        frames.append(_blur_frame(upright, size if upright.size == image.size else size[::-1]))
                    durations.append(duration)
                else:
                    durations[-1] += duration
    except (OSError, ValueError, EOFError, Image.DecompressionBombError, MemoryError) as err:
        raise BlurError(f"cannot blur: {err or type(err).__name__}") from None
    out = io.BytesIO()
    options: dict = {}
    if fmt == "GIF":
        frames = [f.quantize(256) for f in frames]
    if len(frames) > 1:
        options.update(save_all=True, append_images=frames[1:], duration=durations, loop=0)
    frames[0].save(out, fmt, **options)
    return out.getvalue()
