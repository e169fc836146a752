"""Runtime backends behind one small interface, in an explicit registry (design: style 2).

A backend turns a batch of uint8 pixels (N×224×224×3) into N×5 probabilities. Optional runtimes
are imported lazily: one that is missing or broken raises ``BackendUnavailable`` with the
reason, and the caller logs it and tries the next.

Quantisation comes from the model's tensors (dtype, scale, zero point), never from config.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import gc
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from agent.classifier.model import ModelFile

log = logging.getLogger(__name__)


@contextlib.contextmanager
def native_stderr_to_log() -> Iterator[None]:
    """Catch what the runtimes' C++ code writes to fd 2 while a model loads ("INFO: Created
    TensorFlow Lite XNNPACK delegate", WebGPU adapter errors) and log it at debug level, so a
    command's stderr keeps to Veil's own one-line messages. Model loading happens before any of
    Veil's worker threads start, so nothing else is writing to fd 2 meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode("utf-8", "replace").splitlines():
                if line.strip():
                    log.debug("runtime: %s", line)


class BackendUnavailable(Exception):
    """This backend cannot run here; ``str()`` says why in a few words."""


class Backend(Protocol):
    name: str  # registry key, e.g. "litert"
    version: str
    device: str  # "cpu" or "gpu"
    threads: int
    model: ModelFile
    max_batch: int  # frames per invoke that keeps the time per frame lowest

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 N×224×224×3 → float64 N×5 probabilities."""
        ...

    def close(self) -> None: ...


def _to_input(pixels: np.ndarray, dtype: Any, quant: tuple[float, int]) -> np.ndarray:
    """Pixels (0..255) → the input tensor's type. The bundled int8 model takes raw bytes."""
    if dtype == np.float32:
        return pixels.astype(np.float32)
    scale, zero = quant
    if (scale, zero) == (1.0, 0) and dtype == np.uint8:
        return pixels
    info = np.iinfo(dtype)
    return np.clip(np.rint(pixels / scale + zero), info.min, info.max).astype(dtype)


def _from_output(values: np.ndarray, dtype: Any, quant: tuple[float, int]) -> np.ndarray:
    if dtype == np.float32:
        return values.astype(np.float64)
    scale, zero = quant
    return (values.astype(np.float64) - zero) * scale


class InterpreterBackend:
    """Any TFLite-style ``Interpreter`` (LiteRT, tflite-runtime, tf.lite) on the CPU."""

    device = "cpu"
    # On a CPU the time per frame is flat up to ~4 frames per invoke and grows beyond (the
    # activations of a bigger batch fall out of cache): measured 1.47 ms at 1, 1.63 at 4, 1.70
    # at 32 (int8, 2 threads, LiteRT 2.3).
    max_batch = 4

    def __init__(self, interpreter_cls: Callable[..., Any], name: str, version: str, model: ModelFile, threads: int):
        self.name, self.version, self.model, self.threads = name, version, model, threads
        try:
            with native_stderr_to_log():
                self._interp = interpreter_cls(model_path=str(model.path), num_threads=threads)
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise BackendUnavailable(f"{name} cannot load {model.path.name}: {err}") from err
        self._input = self._interp.get_input_details()[0]
        self._output = self._interp.get_output_details()[0]
        self._batch = int(self._input["shape"][0])
        self._lock = threading.Lock()  # an Interpreter is not thread-safe

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            shape = [batch, *[int(d) for d in self._input["shape"][1:]]]
            self._interp.resize_tensor_input(self._input["index"], shape)
            self._interp.allocate_tensors()
            self._batch = batch

    def run(self, pixels: np.ndarray) -> np.ndarray:
        with self._lock:
            self._resize(len(pixels))
            tensor = _to_input(pixels, self._input["dtype"], self._input["quantization"])
            self._interp.set_tensor(self._input["index"], tensor)
            self._interp.invoke()
            out = self._interp.get_tensor(self._output["index"])
            return _from_output(out, self._output["dtype"], self._output["quantization"])

    def close(self) -> None:
        self._interp = None


class CompiledModelGpuBackend:
    """LiteRT ``CompiledModel`` with the GPU accelerator (WebGPU over Vulkan on Linux)."""

    device = "gpu"
    max_batch = 32  # a GPU wants work in bulk; 32 frames of f32 input are 19 MB

    def __init__(self, model: ModelFile, threads: int):
        if sys.platform.startswith("linux") and ctypes.util.find_library("vulkan") is None:
            raise BackendUnavailable("no Vulkan loader (libvulkan.so.1) on this system")
        try:
            from ai_edge_litert.compiled_model import CompiledModel
            from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        except ImportError as err:
            raise BackendUnavailable(f"ai-edge-litert has no CompiledModel API: {err}") from err
        self.name, self.version, self.model, self.threads = "litert", _litert_version(), model, threads
        probe = gpu_probe(model)
        if probe is not None:
            raise BackendUnavailable(probe)
        failed = False
        with native_stderr_to_log():
            try:
                # GPU alone, no CPU fallback: a model that is not fully on the GPU is not "gpu".
                self._model = CompiledModel.from_file(str(model.path), hardware_accel=HardwareAccelerator.GPU)
            except (RuntimeError, ValueError):
                failed = True
            # the failed attempt's runtime environment is freed here, and says so on fd 2
            gc.collect()
        if failed:
            # LiteRT's message is a source-location trace; its log (debug) has the detail.
            raise BackendUnavailable("LiteRT's GPU accelerator found no usable WebGPU/Vulkan adapter")
        if not self._model.is_fully_accelerated():
            raise BackendUnavailable("the GPU accelerator cannot run every op of the model")
        self._signature = 0
        self._batch = 0
        self._lock = threading.Lock()
        self._in_buffers: list[Any] = []
        self._out_buffers: list[Any] = []

    def _prepare(self, batch: int) -> None:
        if batch != self._batch:
            self._model.resize_input_tensor(0, [batch, 224, 224, 3], self._signature)
            self._in_buffers = self._model.create_input_buffers(self._signature)
            self._out_buffers = self._model.create_output_buffers(self._signature)
            self._batch = batch

    def run(self, pixels: np.ndarray) -> np.ndarray:
        with self._lock:
            self._prepare(len(pixels))
            self._in_buffers[0].write(pixels.astype(np.float32))
            self._model.run_by_index(self._signature, self._in_buffers, self._out_buffers)
            out = self._out_buffers[0].read(len(pixels) * 5, np.float32)
            return out.reshape(len(pixels), 5).astype(np.float64)

    def close(self) -> None:
        self._in_buffers, self._out_buffers, self._model = [], [], None


# A failed GPU attempt still maps the Vulkan loader, the ICDs (lavapipe brings LLVM) and Dawn:
# measured +65 MB of RSS in a process that then runs on the CPU. So the first attempt is made in
# a child process, and its answer is remembered until the next boot, or until LiteRT, the model
# or a GPU driver changes.
_PROBE = """
import sys
from ai_edge_litert.compiled_model import CompiledModel
from ai_edge_litert.hardware_accelerator import HardwareAccelerator
try:
    model = CompiledModel.from_file(sys.argv[1], hardware_accel=HardwareAccelerator.GPU)
except (RuntimeError, ValueError):
    sys.exit(3)
sys.exit(0 if model.is_fully_accelerated() else 4)
"""
_PROBE_ANSWERS = {3: "LiteRT's GPU accelerator found no usable WebGPU/Vulkan adapter",
                  4: "the GPU accelerator cannot run every op of the model"}


# Where Vulkan drivers announce themselves (the loader's own search path), and the NVIDIA kernel
# driver's version: a driver installed, removed or upgraded changes what the probe would answer.
VULKAN_ICD_DIRS = ("/usr/share/vulkan/icd.d", "/usr/local/share/vulkan/icd.d", "/etc/vulkan/icd.d")
DRIVER_FILES = ("/proc/driver/nvidia/version",)


def driver_identity() -> str:
    """A digest of the GPU drivers this process could load: the Vulkan ICD manifests (named by
    VK_ICD_FILENAMES / VK_DRIVER_FILES, else in the loader's folders) and the kernel driver's version."""
    import hashlib

    digest = hashlib.sha256()
    named = os.environ.get("VK_DRIVER_FILES") or os.environ.get("VK_ICD_FILENAMES") or ""
    manifests = [Path(p) for p in named.split(os.pathsep) if p] or sorted(
        path for folder in VULKAN_ICD_DIRS for path in Path(folder).glob("*.json"))
    for path in [*manifests, *map(Path, DRIVER_FILES)]:
        try:
            digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
        except OSError:
            continue  # absent: part of the identity too (nothing hashed for it)
    return digest.hexdigest()[:16]


def _probe_cache_key(model: ModelFile) -> str:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "no-boot-id"
    return f"{boot} {_litert_version()} {model.sha256} drivers {driver_identity()}"


def probe_cache_file() -> Path:
    """The probe's remembered answer: the user's cache folder (XDG_CACHE_HOME where set)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("veil", appauthor=False)) / "gpu-probe.json"


def gpu_probe(model: ModelFile) -> str | None:
    """None if the GPU accelerator runs the model (tried in a child process), else why not.
    The answer is remembered until the machine restarts, or LiteRT, the model or a GPU driver
    changes (``_probe_cache_key``)."""
    import json
    import subprocess

    cache = probe_cache_file()
    key = _probe_cache_key(model)
    try:
        remembered = json.loads(cache.read_text())
        if remembered.get("key") == key:
            return remembered.get("answer")
    except (OSError, ValueError):
        pass
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, str(model.path)], capture_output=True, timeout=120)
        answer = None if done.returncode == 0 else _PROBE_ANSWERS.get(done.returncode, f"the GPU probe failed (exit {done.returncode})")
        if done.returncode not in (0, 3, 4):
            log.debug("gpu probe stderr: %s", done.stderr.decode(errors="replace")[-2000:])
    except (OSError, subprocess.TimeoutExpired) as err:
        answer = f"the GPU probe could not run ({err})"
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"key": key, "answer": answer}))
    except OSError:
        pass  # nothing to remember it in: probe again next time
    return answer


def _litert_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return "unknown"


def _litert(model: ModelFile, threads: int) -> Backend:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as err:
        raise BackendUnavailable(f"ai-edge-litert is not installed ({err})") from err
    return InterpreterBackend(Interpreter, "litert", _litert_version(), model, threads)


def _tflite_runtime(model: ModelFile, threads: int) -> Backend:
    try:
        import tflite_runtime
        from tflite_runtime.interpreter import Interpreter
    except ImportError as err:  # also: built against NumPy 1.x under NumPy 2
        raise BackendUnavailable(f"tflite-runtime is not usable ({str(err).splitlines()[0]})") from err
    return InterpreterBackend(Interpreter, "tflite_runtime", getattr(tflite_runtime, "__version__", "unknown"), model, threads)


def _tensorflow(model: ModelFile, threads: int) -> Backend:
    try:
        import tensorflow as tf

        interpreter_cls = tf.lite.Interpreter
    except (ImportError, AttributeError) as err:
        raise BackendUnavailable(f"tensorflow.lite is not available ({str(err).splitlines()[0]})") from err
    return InterpreterBackend(interpreter_cls, "tensorflow", tf.__version__, model, threads)


def _litert_gpu(model: ModelFile, threads: int) -> Backend:
    return CompiledModelGpuBackend(model, threads)


# Config string → factory. CPU backends in "auto" preference order.
CPU_BACKENDS: dict[str, Callable[[ModelFile, int], Backend]] = {
    "litert": _litert,
    "tflite_runtime": _tflite_runtime,
    "tensorflow": _tensorflow,
}
GPU_BACKENDS: dict[str, Callable[[ModelFile, int], Backend]] = {
    "litert": _litert_gpu,
}
