"""Golden outputs: the shipped models give the pinned results on every installed backend,
and the canaries drive them where they were made to."""

import json
import os

import numpy as np
import pytest

from agent.classifier.backends import CPU_BACKENDS, BackendUnavailable
from agent.classifier.model import BUNDLED_F16, BUNDLED_INT8, bundled_model_path, load_model_file
from agent.classifier.scores import LABELS
from tests.conftest import GOLDEN, canary_index
from tests.make_golden import golden_inputs

# Different runtimes may round an int8 requantisation differently: allow two output quanta.
TOLERANCE = {BUNDLED_INT8: 2 / 256 + 1e-6, BUNDLED_F16: 2e-3}
# tests/run.sh names the backends CI installs, so none of them can be skipped there unnoticed.
REQUIRED = {b for b in os.environ.get("VEIL_REQUIRE_BACKENDS", "").split(",") if b}
CHILD = ("porn", "hentai", "sexy")


@pytest.fixture(scope="module")
def inputs():
    return golden_inputs()


def _golden(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text())


@pytest.mark.parametrize("name", [BUNDLED_INT8, BUNDLED_F16])
def test_golden_file_belongs_to_the_bundled_model(name):
    assert _golden(name)["sha256"] == load_model_file(bundled_model_path(name)).sha256, "model changed: python -m tests.make_golden"


@pytest.mark.parametrize("backend_name", list(CPU_BACKENDS))
@pytest.mark.parametrize("name", [BUNDLED_INT8, BUNDLED_F16])
def test_backend_reproduces_golden_outputs(backend_name, name, inputs):
    try:
        backend = CPU_BACKENDS[backend_name](load_model_file(bundled_model_path(name)), 2)
    except BackendUnavailable as err:
        if backend_name in REQUIRED:
            pytest.fail(f"{backend_name} is required here but unavailable: {err}")
        pytest.skip(str(err))
    golden = _golden(name)["outputs"]
    assert set(golden) == set(inputs)
    worst = 0.0
    for key, pixels in inputs.items():
        got = backend.run(pixels[None])[0]
        worst = max(worst, float(np.abs(got - np.array(golden[key])).max()))
    backend.close()
    assert worst <= TOLERANCE[name], f"{backend_name} {backend.version}: max deviation {worst:.5f}"


def test_canaries_drive_the_int8_model_as_designed():
    golden = _golden(BUNDLED_INT8)["outputs"]
    for name, meta in canary_index().items():
        probs = dict(zip(LABELS, golden[f"canaries/{name}.png"]))
        target = meta["target"]
        if meta["robust"]:
            wanted = max(target, key=target.get)
            assert max(probs, key=probs.get) == wanted, (name, probs)
        malign = sum(probs[c] for c in CHILD)
        if meta["robust"] and max(target, key=target.get) in CHILD:
            assert malign >= 0.8, (name, malign)
        if max(target, key=target.get) == "drawing":
            assert malign < 0.1, (name, malign)


def test_real_photos_are_mostly_benign():
    """False alarms on real benign photos stay rare (measured at conversion: see the sidecar)."""
    golden = _golden(BUNDLED_INT8)["outputs"]
    photos = {k: v for k, v in golden.items() if k.startswith("photos/")}
    flagged = [k for k, v in photos.items() if sum(dict(zip(LABELS, v))[c] for c in CHILD) >= 0.30]
    assert len(photos) >= 80
    assert len(flagged) <= 0.08 * len(photos), flagged
