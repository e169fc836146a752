"""The GPU probe's remembered answer and the fallback reason: tests that fail when the cache is
ignored, never invalidated, or kept in the user's real cache. (On a machine with a working GPU
the same tests hold: they plant the answers they check.)"""

import ctypes.util
import json
import os
from pathlib import Path

import pytest

from agent.classifier import backends, open_classifier
from agent.classifier.backends import _probe_cache_key, gpu_probe, probe_cache_file
from agent.classifier.model import BUNDLED_F16, BUNDLED_INT8, bundled_model_path, load_model_file
from agent.config import ModelSection

MARKER = "remembered by the test (no real probe says this)"


@pytest.fixture
def model():
    return load_model_file(bundled_model_path(BUNDLED_INT8))


@pytest.fixture
def drivers(tmp_path, monkeypatch):
    """A Vulkan driver manifest folder of the test's own, in place of the system's."""
    folder = tmp_path / "icd.d"
    folder.mkdir()
    (folder / "test_icd.json").write_text('{"ICD": {"library_path": "libtest.so", "api_version": "1.3.0"}}')
    monkeypatch.setattr(backends, "VULKAN_ICD_DIRS", (str(folder),))
    monkeypatch.delenv("VK_ICD_FILENAMES", raising=False)
    monkeypatch.delenv("VK_DRIVER_FILES", raising=False)
    return folder


def _remember(key: str, answer: str) -> None:
    cache = probe_cache_file()
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "answer": answer}))


def test_the_suite_keeps_the_probe_out_of_the_users_cache():
    cache = probe_cache_file()
    assert cache.is_relative_to(Path(os.environ["XDG_CACHE_HOME"]))
    assert not cache.is_relative_to(Path.home() / ".cache")


def test_a_remembered_answer_is_used_while_nothing_changed(model, drivers):
    _remember(_probe_cache_key(model), MARKER)
    assert gpu_probe(model) == MARKER


@pytest.mark.parametrize("change", ["driver", "model", "runtime"])
def test_a_changed_driver_model_or_runtime_probes_again(change, model, drivers, monkeypatch):
    _remember(_probe_cache_key(model), MARKER)
    if change == "driver":
        (drivers / "test_icd.json").write_text('{"ICD": {"library_path": "libtest.so", "api_version": "1.4.0"}}')  # upgraded
    elif change == "model":
        model = load_model_file(bundled_model_path(BUNDLED_F16))
    else:
        monkeypatch.setattr(backends, "_litert_version", lambda: "0.0.0-test")
    answer = gpu_probe(model)  # a real probe in a child process this time
    assert answer != MARKER
    assert answer is None or answer in backends._PROBE_ANSWERS.values() or answer.startswith("the GPU probe")
    remembered = json.loads(probe_cache_file().read_text())
    assert remembered == {"key": _probe_cache_key(model), "answer": answer}


def test_the_fallback_reason_is_the_probes_answer(drivers):
    """accelerator = auto: the reason the CPU was chosen names what the GPU path said."""
    from agent.classifier import _model_for

    _remember(_probe_cache_key(_model_for(ModelSection(accelerator="auto"), "gpu")), MARKER)  # the GPU runs its own build
    with open_classifier(ModelSection(accelerator="auto", threads=1)) as classifier:
        reason = classifier.choice.reason
    if ctypes.util.find_library("vulkan") is None:  # decided before any probe
        assert reason == "gpu unavailable: no Vulkan loader (libvulkan.so.1) on this system; using cpu (1 threads)"
    else:
        assert reason == f"gpu unavailable: {MARKER}; using cpu (1 threads)"
    assert classifier.choice.device == "cpu"
