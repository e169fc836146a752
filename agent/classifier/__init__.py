"""The classifier: owns the model file, the runtime backend and the accelerator.

Its output is five probabilities per frame (``Scores``); it knows nothing of profiles.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from agent.classifier.backends import CPU_BACKENDS, GPU_BACKENDS, Backend, BackendUnavailable
from agent.classifier.model import BUNDLED_F16, BUNDLED_INT8, ModelFile, bundled_model_path, load_model_file
from agent.classifier.preprocess import MODEL_SIZE
from agent.classifier.scores import LABELS, Scores
from agent.errors import AcceleratorError, ModelError

if TYPE_CHECKING:  # config imports the labels from this package: no import cycle at run time
    from agent.config import ModelSection

__all__ = ["Classifier", "Scores", "LABELS", "open_classifier", "default_threads"]

log = logging.getLogger(__name__)

def default_threads() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class AcceleratorChoice:
    device: str  # "cpu" | "gpu"
    reason: str  # why, for the start-up line and `veil doctor`


class FrameClassifier(Protocol):
    """What scan, video and the agent need of a classifier: a ``Classifier``, or one that
    several threads share (``decider.LockedClassifier``)."""

    @property
    def backend(self) -> Backend: ...

    def classify(self, frames: np.ndarray) -> list[Scores]: ...


class Classifier:
    """Batched classification of uint8 224×224 RGB frames on one backend."""

    def __init__(self, backend: Backend, choice: AcceleratorChoice):
        self.backend = backend
        self.choice = choice

    @property
    def model(self) -> ModelFile:
        return self.backend.model

    def describe(self) -> str:
        where = f"{self.backend.device} ({self.backend.threads} threads)" if self.backend.device == "cpu" else "gpu"
        return f"model {self.model.name}, {self.backend.name} {self.backend.version}, {where}"

    def classify(self, frames: np.ndarray) -> list[Scores]:
        """One frame (224×224×3) or a batch (N×224×224×3) of uint8 RGB pixels."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.dtype != np.uint8 or frames.shape[1:] != (MODEL_SIZE, MODEL_SIZE, 3):
            raise ValueError(f"expected uint8 N×{MODEL_SIZE}×{MODEL_SIZE}×3 pixels, got {frames.dtype} {frames.shape}")
        results: list[Scores] = []
        step = self.backend.max_batch
        for start in range(0, len(frames), step):
            probs = self.backend.run(np.ascontiguousarray(frames[start : start + step]))
            results.extend(Scores(tuple(float(p) for p in row)) for row in probs)
        return results

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# tflite-runtime 2.14's XNNPACK takes no int8 ops: the int8 model runs there at ~70 ms per image
# on its builtin kernels, the f16 model at ~6 ms (benchmarks/RESULTS.md). So that backend gets
# the f16 model unless the config names a model.
_BUNDLED_CPU_MODEL = {"tflite_runtime": BUNDLED_F16}


def _cpu_backend(config: ModelSection, threads: int) -> Backend:
    names = list(CPU_BACKENDS) if config.backend == "auto" else [config.backend]
    reasons = []
    for name in names:
        try:
            model = _model_for(config, "cpu", name)
            return CPU_BACKENDS[name](model, threads)
        except BackendUnavailable as err:
            log.info("backend %s unavailable: %s", name, err)
            reasons.append(f"{name}: {err}")
    raise ModelError("no runtime backend can run the model: " + "; ".join(reasons))


def _model_for(config: ModelSection, device: str, backend: str = "litert") -> ModelFile:
    if config.path:
        return load_model_file(Path(config.path).expanduser())
    # int8 is fastest on CPUs; GPU delegates want float weights.
    name = BUNDLED_F16 if device == "gpu" else _BUNDLED_CPU_MODEL.get(backend, BUNDLED_INT8)
    return load_model_file(bundled_model_path(name))


def open_classifier(config: ModelSection | None = None) -> Classifier:
    """Build the classifier the config asks for, choosing the accelerator and saying why.

    ``auto`` tries the GPU, then the CPU; ``gpu`` fails with ``AcceleratorError`` if no GPU can
    be used; ``cpu`` never touches a GPU.
    """
    if config is None:
        from agent.config import ModelSection

        config = ModelSection()
    threads = config.threads or default_threads()
    gpu_reason = "not tried (accelerator = cpu)"
    if config.accelerator in ("auto", "gpu"):
        if config.backend not in ("auto", *GPU_BACKENDS):
            gpu_reason = f"backend {config.backend} has no GPU path"
        else:
            model = _model_for(config, "gpu")
            try:
                backend = GPU_BACKENDS["litert"](model, threads)
                return Classifier(backend, AcceleratorChoice("gpu", "gpu accelerator in use"))
            except BackendUnavailable as err:
                gpu_reason = str(err)
        if config.accelerator == "gpu":
            raise AcceleratorError(f"accelerator = gpu, but no GPU can be used: {gpu_reason}")
    backend = _cpu_backend(config, threads)
    if config.accelerator == "auto":
        reason = f"gpu unavailable: {gpu_reason}; using cpu ({threads} threads)"
    else:
        reason = f"cpu as configured ({threads} threads)"
    log.info(reason)
    return Classifier(backend, AcceleratorChoice("cpu", reason))
