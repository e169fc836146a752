"""The pinned nsfwjs npm package: fetched with its integrity checked, then read.

The package ships the MobileNetV2 model as two browserify JS modules: ``model.min.js`` exports
``{modelTopology, weightsManifest}`` (a Keras 2.2.4 layers model) and
``group1-shard1of1.min.js`` exports the weights as one base64 string of uint8-quantised values.
Node.js evaluates the modules (they are JavaScript, not JSON); everything after that is Python.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PACKAGE = "nsfwjs"
VERSION = "4.4.0"
# From the registry's own metadata for nsfwjs@4.4.0 (npm view nsfwjs@4.4.0 dist.integrity).
INTEGRITY = "sha512-krC1fgeTLXtZwgdpKJ0jm7hqv0gTSRQQRL+FhOaxaJ9Wj92t42BO3csO2odwgTAgZgf2RvkwPtp0R8Aa7dc+MA=="
LICENCE = "MIT"
MODEL_DIR = "package/dist/models/mobilenet_v2"
LABELS = ("drawing", "hentai", "neutral", "porn", "sexy")


class SourceError(RuntimeError):
    pass


@dataclass(frozen=True)
class SourceModel:
    tarball: Path
    integrity: str
    topology: dict
    weights: dict[str, np.ndarray]  # dequantised float32, by tfjs weight name
    licence_text: str


def sri_sha512(path: Path) -> str:
    """Subresource-integrity string of a file, as npm writes it."""
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode("ascii")


def fetch_tarball(cache: Path) -> Path:
    """``npm pack`` the pinned version into ``cache`` (once) and check its integrity."""
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"{PACKAGE}-{VERSION}.tgz"
    if not tarball.exists():
        if shutil.which("npm") is None:
            raise SourceError("npm is not installed (needed to fetch the source model)")
        subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(cache), "--silent"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    found = sri_sha512(tarball)
    if found != INTEGRITY:
        bad = tarball.with_suffix(".tgz.rejected")
        tarball.replace(bad)
        raise SourceError(f"{tarball.name}: integrity mismatch: expected {INTEGRITY}, got {found} (moved to {bad.name})")
    return tarball


def extract(tarball: Path, dest: Path) -> Path:
    """Extract the model files and the licence only, refusing odd member paths."""
    wanted = {f"{MODEL_DIR}/model.min.js", f"{MODEL_DIR}/group1-shard1of1.min.js", "package/LICENSE"}
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive.getmembers():
            if member.name in wanted:
                if not member.isfile():
                    raise SourceError(f"{member.name}: not a regular file in the package")
                out = dest / Path(member.name).name
                with archive.extractfile(member) as src:  # type: ignore[union-attr]
                    out.write_bytes(src.read())
                wanted.discard(member.name)
    if wanted:
        raise SourceError(f"{tarball.name}: missing {', '.join(sorted(wanted))}")
    return dest


def _evaluate_modules(folder: Path) -> tuple[dict, str]:
    """Let Node evaluate the two JS modules and hand back plain JSON."""
    script = (
        "const path=require('path');"
        "const m=require(path.resolve(process.argv[1],'model.min.js'));"
        "const w=require(path.resolve(process.argv[1],'group1-shard1of1.min.js'));"
        "process.stdout.write(JSON.stringify({model:m,weights:w}));"
    )
    if shutil.which("node") is None:
        raise SourceError("node is not installed (needed to read the source model's JS modules)")
    out = subprocess.run(["node", "-e", script, str(folder)], check=True, capture_output=True, text=True).stdout
    loaded = json.loads(out)
    return loaded["model"], loaded["weights"]


def dequantise(manifest: list[dict], data: bytes) -> dict[str, np.ndarray]:
    """tfjs weight quantisation: ``value = min + scale * q`` for uint8 ``q``, laid end to end."""
    weights: dict[str, np.ndarray] = {}
    offset = 0
    for group in manifest:
        for spec in group["weights"]:
            shape = tuple(spec["shape"])
            count = int(np.prod(shape)) if shape else 1
            quant = spec.get("quantization")
            if quant is None:
                raw = np.frombuffer(data, dtype="<f4", count=count, offset=offset)
                offset += 4 * count
                weights[spec["name"]] = raw.reshape(shape).astype(np.float32)
                continue
            if quant["dtype"] != "uint8":
                raise SourceError(f"{spec['name']}: unsupported quantisation {quant['dtype']}")
            q = np.frombuffer(data, dtype=np.uint8, count=count, offset=offset)
            offset += count
            # float64 arithmetic then one rounding to float32, as tfjs does in JS doubles.
            weights[spec["name"]] = (quant["min"] + quant["scale"] * q.astype(np.float64)).astype(np.float32).reshape(shape)
    if offset != len(data):
        raise SourceError(f"weights: manifest covers {offset} bytes, shard has {len(data)}")
    return weights


def load_source(cache: Path) -> SourceModel:
    tarball = fetch_tarball(cache)
    folder = extract(tarball, cache / f"{PACKAGE}-{VERSION}")
    module, weights_b64 = _evaluate_modules(folder)
    data = base64.b64decode(weights_b64)
    return SourceModel(
        tarball=tarball,
        integrity=INTEGRITY,
        topology=module["modelTopology"],
        weights=dequantise(module["weightsManifest"], data),
        licence_text=(folder / "LICENSE").read_text(encoding="utf-8"),
    )
