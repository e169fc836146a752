"""Benchmark inputs as large and as noisy as real camera files and videos (issue 20).

The committed photos are 512-px thumbnails: scaled up to 1080p or 12 MP they make small, smooth
JPEGs that flatter a decoder drafting at 1/8 of the DCT. Real camera files are sharp and grainy:
1080p JPEGs at quality 90 run at about 2-4 bits per pixel. These inputs start from the real
full-size Debian wallpapers (converters/photos.py, TESTDATA.md) at native resolution, crop a
different window of each for every copy, and add sensor-like grain (Gaussian, stronger in luma
than in chroma) before encoding, so their bytes per pixel land in the camera range. Every figure
made on them is reported with its bytes per pixel (``bits_per_pixel``).

    python benchmarks/realistic_inputs.py   # builds the default sets and prints their bits/pixel
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CACHE = REPO / "benchmarks" / ".cache" / "realistic"

GRAIN_LUMA = 7.0  # standard deviation in 8-bit levels: a phone camera at indoor ISO
GRAIN_CHROMA = 3.0


def wallpapers(min_size: tuple[int, int] = (1920, 1080)) -> list[Path]:
    """The full-size real wallpapers installed here, at least ``min_size`` (either orientation)."""
    from PIL import Image

    from converters.photos import original_paths

    found = []
    for _source, path in original_paths():
        with Image.open(path) as img:
            if max(img.size) >= max(min_size) and min(img.size) >= min(min_size):
                found.append(path)
    if not found:
        raise SystemExit("no full-size wallpapers installed (Debian: plasma-workspace-wallpapers, gnome-backgrounds)")
    return found


def _grain(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Per-pixel noise: one luma field shared by the channels plus weaker independent chroma."""
    luma = rng.normal(0.0, GRAIN_LUMA, shape).astype(np.float32)
    chroma = rng.normal(0.0, GRAIN_CHROMA, (*shape, 3)).astype(np.float32)
    return luma[..., None] + chroma


class GrainBank:
    """Grain fields drawn once and cut at random offsets: fresh-looking grain per picture at the
    cost of a copy, not of eight million random numbers."""

    def __init__(self, size: tuple[int, int], rng: np.random.Generator, fields: int = 6, margin: int = 64,
                 strength: float = 1.0):
        self.size, self.margin = size, margin
        self.fields = [np.clip(_grain((size[1] + margin, size[0] + margin), rng) * strength, -127, 127).astype(np.int16)
                       for _ in range(fields)]

    def cut(self, rng: np.random.Generator) -> np.ndarray:
        field = self.fields[int(rng.integers(len(self.fields)))]
        x, y = (int(v) for v in rng.integers(0, self.margin, 2))
        return field[y:y + self.size[1], x:x + self.size[0]]


def camera_frame(picture: np.ndarray, size: tuple[int, int], rng: np.random.Generator, bank: GrainBank) -> np.ndarray:
    """A ``size`` (w, h) window of ``picture`` at a random place and scale (80-100 % of the
    largest window that fits), with grain: what a camera would have taken of that scene."""
    from PIL import Image

    h, w = picture.shape[:2]
    aspect = size[0] / size[1]
    full_w = min(w, int(h * aspect))
    scale = rng.uniform(0.8, 1.0)
    cw = max(size[0] // 2, int(full_w * scale))
    ch = int(cw / aspect)
    x = int(rng.integers(0, w - cw + 1))
    y = int(rng.integers(0, h - ch + 1))
    window = Image.fromarray(picture[y:y + ch, x:x + cw]).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(window, np.int16) + bank.cut(rng), 0, 255).astype(np.uint8)


def camera_jpegs(count: int, size: tuple[int, int] = (1920, 1080), quality: int = 90, seed: int = 20,
                 folder: Path | None = None) -> list[Path]:
    """``count`` camera-like JPEGs of ``size`` (built once, kept in the cache)."""
    from PIL import Image

    folder = folder or CACHE / f"jpeg-{size[0]}x{size[1]}-q{quality}"
    wanted = [folder / f"{i:06}.jpg" for i in range(count)]
    if all(p.exists() for p in wanted):
        return wanted
    folder.mkdir(parents=True, exist_ok=True)
    sources = wallpapers(size)
    bank = GrainBank(size, np.random.default_rng(seed))
    picture, shown = np.zeros(0), None
    for i, path in enumerate(wanted):
        if path.exists():
            continue
        source = sources[(i // 8) % len(sources)]  # eight shots of each scene, each a different window
        if source != shown:
            picture, shown = np.asarray(Image.open(source).convert("RGB")), source
        frame = camera_frame(picture, size, np.random.default_rng([seed, i]), bank)
        temp = path.with_suffix(".part")
        Image.fromarray(frame).save(temp, "JPEG", quality=quality)  # 4:2:0, as cameras write
        temp.replace(path)
    return wanted


def web_images(count: int, seed: int = 21) -> list[Path]:
    """Small web images (320-800 px; PNG, WebP, GIF in turn) cut from the wallpapers, no grain."""
    from PIL import Image

    folder = CACHE / "web"
    kinds = (("png", {}), ("webp", {"quality": 80}), ("gif", {}))
    wanted = [folder / f"{i:06}.{kinds[i % 3][0]}" for i in range(count)]
    if all(p.exists() for p in wanted):
        return wanted
    folder.mkdir(parents=True, exist_ok=True)
    sources = wallpapers((800, 600))
    picture, shown = np.zeros(0), None
    for i, path in enumerate(wanted):
        if path.exists():
            continue
        source = sources[(i // 8) % len(sources)]
        if source != shown:
            picture, shown = np.asarray(Image.open(source).convert("RGB")), source
        side = (320, 480, 640, 800)[i % 4]
        rng = np.random.default_rng([seed, i])
        h, w = picture.shape[:2]
        cw = int(w * rng.uniform(0.5, 1.0))
        ch = min(h, cw * 3 // 4)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        img = Image.fromarray(picture[y:y + ch, x:x + cw]).resize((side, side * 3 // 4), Image.Resampling.LANCZOS)
        kind, options = kinds[i % 3]
        temp = path.with_suffix(".part")
        (img.quantize(256) if kind == "gif" else img).save(temp, kind.upper(), **options)
        temp.replace(path)
    return wanted


def bits_per_pixel(files: list[Path]) -> float:
    """Mean compressed bits per pixel of image files."""
    from PIL import Image

    total_bits, total_pixels = 0, 0
    for path in files:
        with Image.open(path) as img:
            total_pixels += img.size[0] * img.size[1]
        total_bits += path.stat().st_size * 8
    return total_bits / max(total_pixels, 1)


# Video grain is weaker than a still's: cameras denoise before they encode. Rate control is set
# as real files are made (a phone records 1080p H.264 at 12-17 Mbit/s, HEVC at about half), since
# quality-targeted encoding of grain swings from 1 to 30 Mbit/s between x265 and x264.
VIDEO_GRAIN = 0.45  # of the stills' grain
VIDEO_BITRATE = {"libx264": "12M", "libx265": "6M"}


def _video_frames(seconds: float, fps: int, size: tuple[int, int], seed: int) -> Iterator[bytes]:
    """A slow pan across a new real wallpaper every 8 s, with fresh grain on every frame."""
    from PIL import Image

    rng = random.Random(seed)
    sources = wallpapers(size)
    rng.shuffle(sources)
    noise_rng = np.random.default_rng(seed)
    bank = GrainBank(size, noise_rng, strength=VIDEO_GRAIN)
    per_scene = 8 * fps
    frames = int(seconds * fps)
    picture = np.zeros(0)
    for i in range(frames):
        if i % per_scene == 0:
            source = sources[(i // per_scene) % len(sources)]
            big = (size[0] * 11 // 10, size[1] * 11 // 10)
            picture = np.asarray(Image.open(source).convert("RGB").resize(big, Image.Resampling.LANCZOS), np.int16)
        step = i % per_scene
        dx = step * (picture.shape[1] - size[0]) // per_scene
        dy = step * (picture.shape[0] - size[1]) // per_scene
        frame = picture[dy:dy + size[1], dx:dx + size[0]] + bank.cut(noise_rng)
        yield np.clip(frame, 0, 255).astype(np.uint8).tobytes()


def camera_video(name: str, seconds: float = 180, codec: str = "libx264", gop: int | None = None,
                 size: tuple[int, int] = (1920, 1080), fps: int = 25, seed: int = 20) -> Path:
    """A grainy real-content video encoded by the ffmpeg CLI with the encoder's defaults (x264/x265
    preset medium, their default GOP and B-frames; ``gop`` frames when given) at a camera's bitrate."""
    path = CACHE / "video" / name
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.stem + ".part" + path.suffix)
    args = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}",
            "-r", str(fps), "-i", "-", "-c:v", codec, "-pix_fmt", "yuv420p", "-b:v", VIDEO_BITRATE[codec]]
    if gop is not None:
        args += ["-g", str(gop), "-keyint_min", str(gop)] if codec == "libx264" else \
            ["-x265-params", f"keyint={gop}:min-keyint={gop}:log-level=error"]
    elif codec == "libx265":
        args += ["-x265-params", "log-level=error"]
    proc = subprocess.Popen([*args, str(temp)], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        for frame in _video_frames(seconds, fps, size, seed):
            proc.stdin.write(frame)
    finally:
        proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit(f"ffmpeg could not encode {name}")
    temp.replace(path)
    return path


def video_bits_per_pixel(path: Path) -> float:
    """Mean bits per pixel per frame of a video file (size × 8 / (w × h × frames))."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = stream.frames or 1
        return path.stat().st_size * 8 / (stream.codec_context.width * stream.codec_context.height * frames)


if __name__ == "__main__":
    files = camera_jpegs(300)
    print(f"1080p q90: {len(files)} files, {bits_per_pixel(files):.2f} bits/pixel")
