"""Real benign images for calibration, fidelity and tests, taken from installed packages.

``python -m converters photos`` copies a deliberate selection, downscaled to at most 512 px
(JPEG, quality 88), into tests/fixtures/photos/ with a manifest naming each source, so the
converter and the tests need no Debian or PyPI image packages. The preprocessing study reads the
full-size originals (``original_paths``), because resize aliasing depends on the original size.

Sources (TESTDATA.md): scikit-image and matplotlib sample data (PyPI), and the Debian packages
plasma-workspace-wallpapers, gnome-backgrounds, ukui-wallpapers, lomiri-wallpapers.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

MAX_SIDE = 512

_SKIMAGE = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
            "hubble_deep_field.jpg", "retina.jpg", "ihc.png", "color.png", "logo.png")
_DEBIAN_GLOBS = (
    ("plasma-workspace-wallpapers", "/usr/share/wallpapers/*/contents/images/*"),
    ("gnome-backgrounds", "/usr/share/backgrounds/gnome/*.webp"),
    ("ukui-wallpapers", "/usr/share/backgrounds/*.jpg"),
    ("ukui-wallpapers", "/usr/share/backgrounds/*.png"),
)


def _module_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec and spec.origin else None


def original_paths() -> list[tuple[str, Path]]:
    """(source, path) of every full-size original found on this machine, one per picture."""
    found: list[tuple[str, Path]] = []
    skimage = _module_dir("skimage")
    if skimage:
        found += [("scikit-image", skimage / "data" / n) for n in _SKIMAGE if (skimage / "data" / n).is_file()]
    mpl = _module_dir("matplotlib")
    if mpl and (mpl / "mpl-data/sample_data/grace_hopper.jpg").is_file():
        found.append(("matplotlib", mpl / "mpl-data/sample_data/grace_hopper.jpg"))
    by_picture: dict[str, tuple[str, Path]] = {}
    for package, pattern in _DEBIAN_GLOBS:
        for name in sorted(glob.glob(pattern)):
            path = Path(name)
            if path.is_symlink() or path.stat().st_size < 50_000:
                continue  # size variants are symlinks; tiny files are placeholders
            # plasma ships one picture in several sizes: keep the largest of each
            key = str(path.parents[2]) if package == "plasma-workspace-wallpapers" else str(path)
            if "images_dark" in name:
                continue
            if key not in by_picture or path.stat().st_size > by_picture[key][1].stat().st_size:
                by_picture[key] = (_debian_package(path, package), path)
    found += sorted(by_picture.values(), key=lambda item: str(item[1]))
    return found


def _debian_package(path: Path, guess: str) -> str:
    """The package that owns ``path`` (several share /usr/share/backgrounds)."""
    if shutil.which("dpkg") is None:
        return guess
    done = subprocess.run(["dpkg", "-S", str(path)], capture_output=True, text=True)
    return done.stdout.split(":", 1)[0] if done.returncode == 0 else guess


def fixture_name(source: str, path: Path) -> str:
    stem = path.parents[2].name if source == "plasma-workspace-wallpapers" else path.stem
    return f"{source.split('-')[0]}-{stem}".lower().replace(" ", "_") + ".jpg"



def write_fixtures(out: Path) -> None:
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for source, path in original_paths():
        with Image.open(path) as opened:
            img = opened.convert("RGB")
            size = opened.size
            img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            name = fixture_name(source, path)
            img.save(out / name, "JPEG", quality=88, optimize=True)
        manifest[name] = {
            "source": source,
            "original": str(path),
            "original_size": list(size),
            "original_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "licence": "see the source package's copyright/licence file",
        }
    (out / "photos.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
