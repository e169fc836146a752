"""Pure parts of screen protection: the episode smoother, changed areas, region shapes."""

import numpy as np
import pytest

from agent.policy import Smoother
from agent.sources.screen import CELL, STRIDE, Box, changed_boxes, fitted


def test_one_noisy_frame_neither_blurs_nor_unblurs():
    smoother = Smoother(k=2, n=3, m=3)
    assert [smoother.update(f) for f in (True, False, False, False)] == [None] * 4  # a lone flag: nothing
    assert smoother.update(True) is None and smoother.update(True) == "start"
    assert [smoother.update(f) for f in (False, True, False, False)] == [None] * 4  # one flag resets the clean run
    assert smoother.update(False) == "end" and not smoother.active
    with pytest.raises(ValueError):
        Smoother(k=4, n=3)


def test_changed_areas_become_separate_boxes():
    h, w = 1080 // STRIDE, 1920 // STRIDE
    before = np.zeros((h, w, 3), np.uint8)
    after = before.copy()
    after[100 // STRIDE:300 // STRIDE, 1500 // STRIDE:1800 // STRIDE] = 200  # a picture top right
    after[900 // STRIDE:1000 // STRIDE, 50 // STRIDE:120 // STRIDE] = 90  # a small change bottom left
    boxes = sorted(changed_boxes(before, after, 1920, 1080), key=lambda b: b.left)
    assert len(boxes) == 2
    small, big = boxes
    assert big.left <= 1500 < 1800 <= big.left + big.width and big.top <= 100 < 300 <= big.top + big.height
    assert big.width <= 300 + 2 * CELL and small.width <= 70 + 2 * CELL
    assert changed_boxes(before, before, 1920, 1080) == []


def test_regions_keep_their_shape_grow_to_model_size_and_stay_inside():
    assert fitted(Box(10, 10, 50, 40), 1920, 1080) == Box(0, 0, 224, 224)
    assert fitted(Box(300, 200, 500, 400), 1920, 1080) == Box(300, 200, 500, 400)  # a window: exactly itself
    box = fitted(Box(1800, 1000, 300, 100), 1920, 1080)
    assert (box.width, box.height) == (300, 224) and box.left + 300 <= 1920 and box.top + 224 <= 1080


def test_the_cover_is_the_flagged_windows_plus_a_margin_or_the_whole_monitor():
    from agent.screen_guard import cover_box

    whole = Box(0, 0, 1920, 1080)
    window = Box(300, 200, 640, 480)
    cover = cover_box([window], whole)
    assert cover.contains(window) and cover != whole
    assert cover == Box(300 - 32, 200 - 32, 640 + 64, 480 + 64)  # 5 % of the larger side each way
    assert cover_box([window, whole], whole) == whole  # the whole screen flagged: all of it
    two = cover_box([window, Box(1500, 700, 300, 300)], whole)
    assert two == whole  # two windows far apart span most of the screen
    near_edge = cover_box([Box(0, 0, 300, 300)], whole)
    assert near_edge == Box(0, 0, 316, 316)  # clipped at the monitor's edge, margin at least 16 px
