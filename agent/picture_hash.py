"""Perceptual hashes: "the same picture" across a resize, a recompression, a PNG re-save or a
small crop, for the parent's corrections (agent/corrections.py). Only these 64-bit numbers are
ever stored, never the picture.

pHash as the literature describes it (the low frequencies of a 32×32 greyscale DCT, each bit
above or below their median), from the 32×32 block-mean glance ``decode_image`` makes of the
picture as it decodes it (so no second decode). Not from the model's 224×224 input: that one is
resized per format (nearest for JPEG, box otherwise), and a PNG re-save of a JPEG then hashed up to
14 bits away. Chosen over a difference hash by measurement (benchmarks/study_picture_hash.py;
RESULTS.md).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image

SIDE = 32  # the greyscale picture the DCT sees
KEEP = 8  # its lowest 8×8 frequencies make the 64 bits

# the bit-count masks of the classic SWAR popcount: a vectorised Hamming distance without NumPy 2's
# bitwise_count (2.3x faster than a 16-bit lookup table here, measured by benchmarks/bench_corrections.py)
_M1, _M2, _M4 = np.uint64(0x5555555555555555), np.uint64(0x3333333333333333), np.uint64(0x0F0F0F0F0F0F0F0F)
_BYTES = np.uint64(0x0101010101010101)


@cache
def _dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II as an n×n matrix (rows: frequencies)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m


VIEW_CROP = 0.05  # a correction also keeps the picture cropped by this much at each corner, and evenly


def grey_glance(image: Image.Image, side: int = SIDE) -> np.ndarray:
    """A picture as ``side``×``side`` grey (ITU-R 601 luma), each pixel the mean of its block: the
    same whatever the format or the size it was saved at (a JPEG's DCT draft is block means too)."""
    return np.asarray(image.convert("L").resize((side, side), Image.Resampling.BOX))


def phash(grey: np.ndarray) -> int:
    """The 64-bit perceptual hash of a SIDE×SIDE grey picture (``decode.grey_glance``)."""
    m = _dct_matrix(SIDE)
    low = (m @ np.asarray(grey, np.float64) @ m.T)[:KEEP, :KEEP].ravel()
    median = np.median(low[1:])  # the DC term (overall brightness) would shift every median
    return int(np.packbits(low > median).view(">u8")[0])


def dhash(grey: np.ndarray) -> int:
    """A difference hash (each pixel brighter than its right neighbour, 9×8 block means of the
    glance): the measured alternative."""
    small = np.asarray(Image.fromarray(np.asarray(grey, np.uint8)).resize((KEEP + 1, KEEP), Image.Resampling.BOX), np.int16)
    return int(np.packbits((small[:, 1:] > small[:, :-1]).ravel()).view(">u8")[0])


def picture_views(image: Image.Image) -> tuple[int, ...]:
    """The hashes a correction keeps of a picture: the picture, its mirror image, and the picture
    cropped by ``VIEW_CROP`` at each corner and evenly. A copy is "the same picture" when its own
    hash is near any of them: a crop shifts a DCT hash much more than a resize does (measured)."""
    grey = grey_glance(image)
    w, h = image.size
    dx, dy = round(w * VIEW_CROP), round(h * VIEW_CROP)
    crops = [(dx, dy, w, h), (0, dy, w - dx, h), (dx, 0, w, h - dy), (0, 0, w - dx, h - dy),
             (dx // 2, dy // 2, w - dx // 2, h - dy // 2)]
    return (phash(grey), phash(grey[:, ::-1]), *(phash(grey_glance(image.crop(box))) for box in crops))


def to_signed(value: int) -> int:
    """A 64-bit hash as SQLite stores integers (signed)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def from_signed(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def distances(hashes: np.ndarray, value: int) -> np.ndarray:
    """Hamming distance from ``value`` to each of ``hashes`` (uint64), vectorised."""
    if hashes.size == 0:
        return np.zeros(0, np.uint8)
    x = np.bitwise_xor(np.asarray(hashes, np.uint64), np.uint64(value))
    x = x - ((x >> np.uint64(1)) & _M1)  # bits per 2
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)  # per 4
    x = (x + (x >> np.uint64(4))) & _M4  # per byte
    return ((x * _BYTES) >> np.uint64(56)).astype(np.uint8)  # the bytes' sum lands in the top byte
