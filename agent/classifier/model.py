"""The model file and its sidecar: found, checked, described.

A model is ``<name>.tflite`` with ``<name>.json`` beside it (INTERFACES.md). The sidecar's
sha256 must match the file: a truncated download, a hand-edited file or a foreign model is a
fatal error that names the file and the expected hash, never a crash inside the runtime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from agent.classifier.scores import LABELS
from agent.errors import ModelError
from agent.fsutil import sha256_file

BUNDLED_INT8 = "nsfw-mobilenet-v2-int8"
BUNDLED_F16 = "nsfw-mobilenet-v2-f16"
_TFLITE_MAGIC = b"TFL3"


@dataclass(frozen=True)
class ModelFile:
    path: Path
    name: str
    sha256: str
    sidecar: dict[str, Any]

    @property
    def input_dtype(self) -> str:
        return str(self.sidecar.get("input", {}).get("dtype", "unknown"))

    @property
    def int8(self) -> bool:
        """Integer-quantised weights and activations (its input tensor may still be float32:
        Veil's int8 model runs its first stages in float)."""
        return str(self.sidecar.get("quantization", {}).get("scheme", "")).startswith("int8")


def bundled_dir() -> Path:
    return Path(str(resources.files("agent.models")))


def bundled_model_path(name: str = BUNDLED_INT8) -> Path:
    return bundled_dir() / f"{name}.tflite"


def load_model_file(path: Path) -> ModelFile:
    """Check ``path`` against its sidecar; raise ``ModelError`` with one clear line if it fails."""
    sidecar_path = path.with_suffix(".json")
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    if not sidecar_path.is_file():
        raise ModelError(f"{path}: its sidecar {sidecar_path.name} is missing (needed to check the model)")
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
        expected = str(sidecar["sha256"])
        labels = tuple(sidecar["labels"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelError(f"{sidecar_path}: unreadable model sidecar ({err.__class__.__name__}: {err})") from None
    try:
        actual = sha256_file(path)
        with open(path, "rb") as handle:
            header = handle.read(8)
    except OSError as err:
        raise ModelError(f"{path}: cannot read model: {err.strerror}") from None
    if actual != expected:
        kind = "not a TFLite model" if header[4:8] != _TFLITE_MAGIC else "truncated, altered or foreign"
        raise ModelError(f"{path}: sha256 {actual[:12]}… does not match its sidecar ({kind}); expected sha256 {expected}")
    if labels != LABELS:
        raise ModelError(f"{sidecar_path}: labels {list(labels)} are not Veil's {list(LABELS)}")
    return ModelFile(path=path, name=path.stem, sha256=actual, sidecar=sidecar)
