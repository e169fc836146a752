"""The classifier on the real bundled model: batching, accelerator choice, backends."""

import logging

import numpy as np
import pytest

from agent.classifier import open_classifier
from agent.classifier.backends import CPU_BACKENDS, BackendUnavailable
from agent.classifier.model import BUNDLED_INT8, bundled_model_path, load_model_file
from agent.config import ModelSection
from agent.decode import load_model_input
from agent.errors import AcceleratorError, ModelError
from tests.conftest import CANARIES, PHOTOS


def _frames(n: int) -> np.ndarray:
    paths = sorted(PHOTOS.glob("*.jpg"))[:n]
    return np.stack([load_model_input(p) for p in paths])


def test_batch_equals_one_by_one_and_spans_chunks():
    with open_classifier(ModelSection(accelerator="cpu", threads=2)) as classifier:
        frames = _frames(3 * classifier.backend.max_batch + 1)  # several invokes and a remainder
        batched = classifier.classify(frames)
        single = [classifier.classify(f)[0] for f in frames]
    assert len(batched) == len(frames)
    for a, b in zip(batched, single):
        # same int8 kernels whatever the batch: at most one output quantum apart
        assert np.abs(np.array(a.probs) - np.array(b.probs)).max() <= 1 / 256 + 1e-9
    for s in batched:
        assert abs(sum(s.probs) - 1.0) <= 0.01


def test_rejects_wrong_input_shape():
    with open_classifier(ModelSection(accelerator="cpu")) as classifier:
        with pytest.raises(ValueError, match="expected uint8"):
            classifier.classify(np.zeros((2, 100, 100, 3), np.uint8))


def test_cpu_choice_says_so():
    with open_classifier(ModelSection(accelerator="cpu", threads=1)) as classifier:
        assert classifier.choice.device == "cpu"
        assert classifier.backend.threads == 1
        assert "cpu as configured (1 threads)" in classifier.choice.reason
        assert classifier.model.name == BUNDLED_INT8


def test_auto_logs_why_it_chose(caplog):
    caplog.set_level(logging.INFO, logger="agent.classifier")
    with open_classifier(ModelSection(accelerator="auto", threads=2)) as classifier:
        if classifier.choice.device == "cpu":
            assert classifier.choice.reason.startswith("gpu unavailable: ")
            assert classifier.choice.reason.endswith("; using cpu (2 threads)")
            assert classifier.choice.reason in caplog.text
        else:
            assert classifier.backend.device == "gpu"


def test_gpu_demanded_is_used_or_fails_clearly():
    """accelerator = gpu: either a GPU really runs the model, or one clear fatal error."""
    frame = load_model_input(CANARIES / "porn-a.png")
    try:
        classifier = open_classifier(ModelSection(accelerator="gpu"))
    except AcceleratorError as err:
        assert str(err).startswith("accelerator = gpu, but no GPU can be used: ")
        assert "\n" not in str(err)
        return
    with classifier:
        assert classifier.backend.device == "gpu"
        assert classifier.classify(frame)[0]["porn"] > 0.5


def test_named_backend_that_is_missing_is_a_clear_error(monkeypatch):
    def unavailable(model, threads):
        raise BackendUnavailable("not installed here")

    monkeypatch.setitem(CPU_BACKENDS, "tensorflow", unavailable)
    with pytest.raises(ModelError, match="no runtime backend can run the model: tensorflow: not installed here"):
        open_classifier(ModelSection(accelerator="cpu", backend="tensorflow"))


def test_custom_model_path_is_checked(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(bundled_model_path().read_bytes()[:1000])
    (tmp_path / "model.json").write_text(bundled_model_path().with_suffix(".json").read_text())
    with pytest.raises(ModelError, match="expected sha256"):
        open_classifier(ModelSection(accelerator="cpu", path=str(bad)))


def test_every_cpu_backend_loads_the_model_or_says_why():
    model = load_model_file(bundled_model_path())
    for name, factory in CPU_BACKENDS.items():
        try:
            backend = factory(model, 1)
        except BackendUnavailable as err:
            assert str(err), name
            continue
        out = backend.run(load_model_input(PHOTOS / "scikit-coffee.jpg")[None])
        backend.close()
        assert out.shape == (1, 5)


def test_tflite_runtime_gets_the_float_model():
    """tflite-runtime 2.14 runs int8 off XNNPACK (~70 ms); Veil hands it the f16 model instead."""
    try:
        classifier = open_classifier(ModelSection(accelerator="cpu", backend="tflite_runtime"))
    except ModelError as err:
        pytest.skip(f"tflite-runtime not usable here: {err}")
    with classifier:
        assert classifier.backend.name == "tflite_runtime"
        assert classifier.model.name == "nsfw-mobilenet-v2-f16"
        assert classifier.classify(load_model_input(CANARIES / "hentai-a.png"))[0].top == "hentai"
