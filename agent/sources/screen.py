"""The screen → what changed, and the regions worth classifying. Nothing is ever written anywhere.

Per monitor (mss), each sample:
1. A cheap look first: every 8th pixel of every 8th row (1/64 of the frame). If that look equals
   the previous one, the screen is static and nothing else runs.
2. Otherwise the changed cells (32×32 px) form connected areas; each area's bounding box, at
   least the model's size, is a region. The whole monitor is one more region.
   A picture that appears in a window, or in a corner of a 4K screen, arrives as a change, so it
   is classified at its own scale instead of as a speck in a shrunken screen.
3. Without a window list (below), regions that were flagged recently are kept and classified
   again with every changing sample, so a still picture stays judged.
4. On X11 the visible top-level windows are regions too (python-xlib asks the X server), so a
   picture that is already open when Veil starts, and so never "changes", is judged in its own
   window. A fixed grid was tried instead and dropped: its crops of real photos, half picture
   and half desktop, drew false alarms up to 0.95 on benign wallpapers.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import deque
from dataclasses import dataclass

import numpy as np
from PIL import Image

from agent.classifier.preprocess import MODEL_SIZE

log = logging.getLogger(__name__)

STRIDE = 8  # the cheap look: one pixel in 8×8
CELL = 32  # change cells, px (a multiple of STRIDE)
MAX_REGIONS = 8


class ScreenUnavailable(Exception):
    """No screen can be captured here (headless, Wayland without X); one line."""


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    width: int
    height: int

    def contains(self, other: Box) -> bool:
        return (self.left <= other.left and self.top <= other.top and other.left + other.width <= self.left + self.width
                and other.top + other.height <= self.top + self.height)


@dataclass
class Grab:
    monitor: int  # 1-based, as mss numbers them
    bounds: Box  # the monitor in screen coordinates
    pixels: np.ndarray  # H×W×4 BGRA, a view of the capture


def open_capture():
    """An mss capture object, or ``ScreenUnavailable`` saying why."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        if os.environ.get("WAYLAND_DISPLAY"):
            raise ScreenUnavailable(f"Wayland session ({os.environ['WAYLAND_DISPLAY']}) without X access")
        raise ScreenUnavailable("no display (DISPLAY unset)")
    try:
        import mss

        factory = getattr(mss, "MSS", None) or mss.mss
        return factory()
    except Exception as err:  # mss raises its own ScreenShotError, or OSError without X libs
        raise ScreenUnavailable(f"cannot capture the screen: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None


def grab(capture, monitor: int) -> Grab:
    area = capture.monitors[monitor]
    shot = capture.grab(area)
    pixels = np.frombuffer(shot.raw, np.uint8).reshape(shot.height, shot.width, 4)
    return Grab(monitor, Box(area["left"], area["top"], shot.width, shot.height), pixels)


def glance(pixels: np.ndarray) -> np.ndarray:
    """The cheap look: 1/64 of the pixels, RGB order irrelevant."""
    return np.ascontiguousarray(pixels[::STRIDE, ::STRIDE, :3])


def changed_boxes(before: np.ndarray, after: np.ndarray, width: int, height: int, threshold: int = 24) -> list[Box]:
    """Bounding boxes (in monitor pixels) of connected areas of changed cells."""
    if before.shape != after.shape:
        return [Box(0, 0, width, height)]
    per = CELL // STRIDE
    diff = np.abs(before.astype(np.int16) - after.astype(np.int16)).max(axis=2) > threshold
    rows, cols = -(-diff.shape[0] // per), -(-diff.shape[1] // per)
    padded = np.zeros((rows * per, cols * per), bool)
    padded[: diff.shape[0], : diff.shape[1]] = diff
    cells = padded.reshape(rows, per, cols, per).any(axis=(1, 3))
    boxes, seen = [], np.zeros_like(cells)
    for r, c in zip(*np.nonzero(cells)):
        if seen[r, c]:
            continue
        stack, r0, r1, c0, c1 = [(r, c)], r, r, c, c
        seen[r, c] = True
        while stack:  # flood fill, 8-connected
            y, x = stack.pop()
            r0, r1, c0, c1 = min(r0, y), max(r1, y), min(c0, x), max(c1, x)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < rows and 0 <= nx < cols and cells[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        left, top = c0 * CELL, r0 * CELL
        boxes.append(Box(left, top, min(width, (c1 + 1) * CELL) - left, min(height, (r1 + 1) * CELL) - top))
    return boxes


def fitted(box: Box, width: int, height: int) -> Box:
    """The box itself, grown to at least the model's size on each side, kept inside the monitor.

    Not squared: the model sees a region stretched to 224×224, as it sees whole images (nsfwjs
    and Keras resize without keeping the aspect). Squaring a 500×400 window added 100 px of
    desktop and dropped the malign score of canaries from 0.92–0.98 to 0.04–0.91 (measured)."""
    w, h = min(max(box.width, MODEL_SIZE), width), min(max(box.height, MODEL_SIZE), height)
    cx, cy = box.left + box.width // 2, box.top + box.height // 2
    left = min(max(0, cx - w // 2), width - w)
    top = min(max(0, cy - h // 2), height - h)
    return Box(left, top, w, h)


class WindowLister:
    """Rectangles of the visible top-level windows (X11 only; elsewhere none)."""

    def __init__(self):
        self._display = None
        if sys.platform.startswith("linux") and os.environ.get("DISPLAY"):
            try:
                from Xlib import display

                self._display = display.Display()
            except Exception as err:  # no python-xlib, or the server refused
                log.info("window list unavailable: %s", err)

    @property
    def available(self) -> bool:
        return self._display is not None

    def boxes(self, monitor: Box) -> list[Box]:
        """Visible windows clipped to ``monitor`` (monitor coordinates), largest first."""
        if self._display is None:
            return []
        from Xlib import X
        from Xlib.error import XError

        found = []
        try:
            for window in self._display.screen().root.query_tree().children:
                try:
                    if window.get_attributes().map_state != X.IsViewable:
                        continue
                    geometry = window.get_geometry()
                except XError:
                    continue  # closed while listed
                left, top = max(geometry.x, monitor.left), max(geometry.y, monitor.top)
                right = min(geometry.x + geometry.width, monitor.left + monitor.width)
                bottom = min(geometry.y + geometry.height, monitor.top + monitor.height)
                if right - left >= 64 and bottom - top >= 64:
                    found.append(Box(left - monitor.left, top - monitor.top, right - left, bottom - top))
        except XError as err:
            log.debug("window list failed: %s", err)
            return []
        return sorted(found, key=lambda b: b.width * b.height, reverse=True)

    def close(self) -> None:
        if self._display is not None:
            self._display.close()
            self._display = None


def to_model_input(pixels: np.ndarray, box: Box) -> np.ndarray:
    """A region of a BGRA capture → 224×224×3 RGB, nearest neighbour (as for stills and video)."""
    crop = pixels[box.top : box.top + box.height, box.left : box.left + box.width, 2::-1]
    step = max(1, min(crop.shape[0], crop.shape[1]) // (2 * MODEL_SIZE))
    reduced = np.ascontiguousarray(crop[::step, ::step])  # cheap pre-shrink of large regions
    return np.asarray(Image.fromarray(reduced).resize((MODEL_SIZE, MODEL_SIZE), Image.Resampling.NEAREST))


class RegionTracker:
    """Which regions of one monitor to classify with the current sample."""

    def __init__(self, windows: WindowLister | None = None, keep_flagged: int = 4):
        self._last_glance: np.ndarray | None = None
        self._flagged: deque[Box] = deque(maxlen=keep_flagged)
        self._windows = windows
        self.windows: list[Box] = []  # the visible windows at the last changed sample (monitor coordinates)

    def regions(self, shot: Grab) -> list[Box] | None:
        """None when nothing changed since the last sample (no inference needed)."""
        width, height = shot.bounds.width, shot.bounds.height
        look = glance(shot.pixels)
        previous, self._last_glance = self._last_glance, look
        whole = Box(0, 0, width, height)
        if previous is not None and np.array_equal(previous, look):
            return None
        changed = [] if previous is None else changed_boxes(previous, look, width, height)
        changed.sort(key=lambda b: b.width * b.height, reverse=True)
        windows = self._windows.boxes(shot.bounds) if self._windows else []
        self.windows = windows
        regions = [whole]
        # windows first: their rectangles are exact, while change boxes are cell-aligned and a few
        # pixels of desktop around a picture can be enough to change the verdict (measured)
        for box in [*self._flagged, *(fitted(b, width, height) for b in [*windows, *changed])]:
            if len(regions) >= MAX_REGIONS:
                break
            if box not in regions:
                regions.append(box)
        return regions

    def flagged(self, box: Box) -> None:
        if self._windows is not None and self._windows.available:
            return  # the window list brings the picture's window back each sample; no memory needed
        if box not in self._flagged:
            self._flagged.append(box)

    def clear_flagged(self) -> None:
        self._flagged.clear()
