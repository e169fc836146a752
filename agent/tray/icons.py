"""The tray icon's pictures, drawn (no image files to ship or lose): a shield whose colour and
mark say the state at a glance, also for people who cannot tell red from green (the mark differs
too: a tick, two bars, a cross, an exclamation mark, an open padlock)."""

from __future__ import annotations

from PIL import Image, ImageDraw

STATES = ("protecting", "paused", "blocked", "error", "unlocked")

STATE_COLOURS: dict[str, tuple[int, int, int]] = {
    "protecting": (46, 158, 79),  # green
    "paused": (224, 168, 0),  # amber
    "blocked": (214, 58, 47),  # red
    "error": (122, 122, 122),  # grey
    "unlocked": (48, 99, 178),  # blue, with an open padlock: protecting, but no PIN guards the controls
}


def state_icon(state: str, size: int = 64) -> Image.Image:
    """An RGBA picture for ``state`` (one of STATES), ``size`` pixels square."""
    colour = STATE_COLOURS[state]
    scale = 4  # drawn large and shrunk: smooth edges without an antialiasing drawer
    s = size * scale
    image = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    top, bottom, left, right = 0.06 * s, 0.96 * s, 0.12 * s, 0.88 * s
    mid = s / 2
    shield = [(left, top + 0.1 * s), (mid, top), (right, top + 0.1 * s), (right, 0.5 * s), (mid, bottom), (left, 0.5 * s)]
    draw.polygon(shield, fill=colour + (255,))
    white, width = (255, 255, 255, 255), int(0.09 * s)
    if state == "protecting":
        draw.line([(0.32 * s, 0.48 * s), (0.45 * s, 0.62 * s), (0.70 * s, 0.34 * s)], fill=white, width=width, joint="curve")
    elif state == "paused":
        draw.rectangle([0.35 * s, 0.30 * s, 0.44 * s, 0.64 * s], fill=white)
        draw.rectangle([0.56 * s, 0.30 * s, 0.65 * s, 0.64 * s], fill=white)
    elif state == "blocked":
        draw.line([(0.35 * s, 0.30 * s), (0.65 * s, 0.62 * s)], fill=white, width=width)
        draw.line([(0.65 * s, 0.30 * s), (0.35 * s, 0.62 * s)], fill=white, width=width)
    elif state == "unlocked":
        draw.rectangle([0.34 * s, 0.44 * s, 0.66 * s, 0.68 * s], fill=white)  # the padlock's body
        draw.arc([0.38 * s, 0.20 * s, 0.62 * s, 0.52 * s], 180, 330, fill=white, width=int(0.06 * s))  # its shackle, open
    else:
        draw.rectangle([0.455 * s, 0.26 * s, 0.545 * s, 0.54 * s], fill=white)
        draw.rectangle([0.455 * s, 0.60 * s, 0.545 * s, 0.69 * s], fill=white)
    return image.resize((size, size), Image.Resampling.LANCZOS)
