"""nsfwjs under Node as the reference implementation the converted models are checked against."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

TFJS_VERSION = "4.22.0"
_SCRIPT = Path(__file__).with_name("reference.cjs")


def ensure_reference_env(cache: Path, tarball: Path) -> Path:
    """Install the verified nsfwjs tarball and the pinned pure-JS tfjs into ``cache/reference``."""
    env = cache / "reference"
    marker = env / f".installed-{tarball.name}-tfjs-{TFJS_VERSION}"
    if marker.exists():
        return env
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise RuntimeError("node and npm are needed to run the nsfwjs reference")
    env.mkdir(parents=True, exist_ok=True)
    (env / "package.json").write_text('{"name": "veil-reference", "version": "1.0.0", "private": true}\n')
    subprocess.run(
        [
            "npm", "install", "--no-audit", "--no-fund", "--no-package-lock", "--ignore-scripts", "--silent",
            str(tarball.resolve()), f"@tensorflow/tfjs@{TFJS_VERSION}",
        ],
        cwd=env,
        check=True,
    )
    marker.touch()
    return env


def _run(env: Path, mode: str, arrays: list[np.ndarray]) -> tuple[np.ndarray, dict]:
    with tempfile.TemporaryDirectory(prefix="veil-ref-") as tmp:
        inputs = []
        for i, array in enumerate(arrays):
            path = Path(tmp) / f"in{i}.bin"
            path.write_bytes(np.ascontiguousarray(array).tobytes())
            inputs.append({"file": str(path), "shape": list(array.shape)})
        job = Path(tmp) / "job.json"
        out = Path(tmp) / "out.json"
        job.write_text(json.dumps({"mode": mode, "inputs": inputs, "out": str(out)}))
        node_env = dict(os.environ, NODE_PATH=str(env / "node_modules"))
        done = subprocess.run(["node", str(_SCRIPT), str(job)], cwd=env, env=node_env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"nsfwjs reference failed: {done.stderr.strip()[-2000:]}")
        result = json.loads(out.read_text())
    meta = {"tfjs": result["tfjs"], "backend": result["backend"]}
    return np.asarray(result["probs"], dtype=np.float64), meta


def reference_on_tensors(env: Path, batch: np.ndarray, chunk: int = 8) -> tuple[np.ndarray, dict]:
    """Source model probabilities for float32 NHWC inputs in [0, 1] (no resize)."""
    batch = batch.astype(np.float32)
    chunks = [batch[i : i + chunk] for i in range(0, len(batch), chunk)]
    return _run(env, "tensor", chunks)


def reference_on_images(env: Path, images: list[np.ndarray]) -> tuple[np.ndarray, dict]:
    """nsfwjs's full path on uint8 HxWx3 images of any size (its own scaling and resize)."""
    return _run(env, "image", [np.asarray(img, dtype=np.uint8) for img in images])
