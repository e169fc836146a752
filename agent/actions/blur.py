"""A blurred stand-in for a flagged image: same format, same size, every frame unrecognisable.

The picture is shrunk to 3 pixels along its shorter side, blown back up with a Gaussian blur on
top and half desaturated: a soft, muted gradient of the original colours (a user sees that
something was there), no shapes. Milder settings were not enough for the model itself: at 12
pixels a blurred canary still scored 0.51 malign (child); at 3 pixels and half saturation the
worst of all canaries, as PNG and JPEG, scored 0.043 (tests/component/test_blur.py). The original goes to the
vault (``Vault.quarantine(..., stand_in=blurred)``); restore puts it back over the stand-in.
"""

from __future__ import annotations

import io

from PIL import Image, ImageEnhance, ImageFilter, ImageSequence

from agent.decode import to_rgb
from agent.errors import VeilError

_CELLS = 3  # pixels along the shorter side after shrinking
_SATURATION = 0.5


class BlurError(VeilError):
    pass


def _blur_frame(frame: Image.Image) -> Image.Image:
    rgb = to_rgb(frame)
    w, h = rgb.size
    scale = _CELLS / max(1, min(w, h))
    small = rgb.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)
    soft = small.resize((w, h), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(radius=max(w, h) / 40))
    return ImageEnhance.Color(soft).enhance(_SATURATION)


def blurred(content: bytes) -> bytes:
    """The stand-in's bytes, in the original's format (animations keep their frames and timing)."""
    try:
        with Image.open(io.BytesIO(content)) as image:
            fmt = image.format
            if fmt is None:
                raise BlurError("unknown image format")
            frames = [_blur_frame(f) for f in ImageSequence.Iterator(image)]
            durations = []
            if len(frames) > 1:
                for f in ImageSequence.Iterator(image):
                    durations.append(f.info.get("duration", 100))
            exif = image.info.get("exif")
    except (OSError, ValueError) as err:
        raise BlurError(f"cannot blur: {err}") from None
    out = io.BytesIO()
    options: dict = {}
    if exif and fmt in ("JPEG", "WEBP", "PNG", "TIFF"):
        options["exif"] = exif  # keep the orientation, so the stand-in shows the same way up
    if len(frames) > 1:
        options.update(save_all=True, append_images=frames[1:], duration=durations, loop=0)
    if fmt == "GIF":
        frames = [f.quantize(256) for f in frames]
        if len(frames) > 1:
            options["append_images"] = frames[1:]
    frames[0].save(out, fmt, **options)
    return out.getvalue()
