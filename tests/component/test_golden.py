"""Golden outputs: the shipped models give the pinned results on every installed backend, every
backend stays faithful to the float model, and the canaries drive the model as designed."""

import json
import os

import numpy as np
import pytest

from agent.classifier.backends import CPU_BACKENDS, BackendUnavailable
from agent.classifier.model import BUNDLED_F16, BUNDLED_INT8, bundled_model_path, load_model_file
from agent.classifier.scores import LABELS
from tests.conftest import GOLDEN, canary_index
from tests.make_golden import golden_inputs

# The same runtime and thread count must give the pinned outputs (one int8 output quantum of
# slack for a runtime update); f16 is computed in f32 and is as stable.
TOLERANCE = {BUNDLED_INT8: 1 / 256 + 1e-6, BUNDLED_F16: 1e-4}
# Every runtime's int8 must stay within the conversion's fidelity limit of the f16 model (which
# is within 0.03 of the float model): max |Δ malign| under the child profile.
MAX_MALIGN_DELTA_VS_F16 = 0.06
# tests/run.sh names the backends CI installs, so none of them can be skipped there unnoticed.
REQUIRED = {b for b in os.environ.get("VEIL_REQUIRE_BACKENDS", "").split(",") if b}
CHILD = ("porn", "hentai", "sexy")


@pytest.fixture(scope="module")
def inputs():
    return golden_inputs()


def _child_malign(probs) -> float:
    return float(sum(probs[LABELS.index(c)] for c in CHILD))


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
    record = _golden(name)["backends"].get(backend_name)
    if record is None:
        pytest.fail(f"no golden outputs for {backend_name}: python -m tests.make_golden where it is installed")
    golden = record["outputs"]
    reference = _golden(BUNDLED_F16)["backends"]["litert"]["outputs"]
    assert set(golden) == set(inputs)
    worst = worst_vs_f16 = 0.0
    for key, pixels in inputs.items():
        got = backend.run(pixels[None])[0]
        worst = max(worst, float(np.abs(got - np.array(golden[key])).max()))
        worst_vs_f16 = max(worst_vs_f16, abs(_child_malign(got) - _child_malign(reference[key])))
    backend.close()
    assert worst <= TOLERANCE[name], f"{backend_name} {backend.version}: max deviation from its golden outputs {worst:.5f}"
    assert worst_vs_f16 <= MAX_MALIGN_DELTA_VS_F16, f"{backend_name}: |Δ malign| vs f16 up to {worst_vs_f16:.4f}"


def test_canaries_drive_the_int8_model_as_designed():
    golden = _golden(BUNDLED_INT8)["backends"]["litert"]["outputs"]
    for name, meta in canary_index().items():
        probs = dict(zip(LABELS, golden[f"canaries/{name}.png"]))
        target = meta["target"]
        if meta["robust"]:
            wanted = max(target, key=target.get)
            assert max(probs, key=probs.get) == wanted, (name, probs)
        malign = _child_malign(golden[f"canaries/{name}.png"])
        if meta["robust"] and max(target, key=target.get) in CHILD:
            assert malign >= 0.8, (name, malign)
        if max(target, key=target.get) == "drawing":
            assert malign < 0.1, (name, malign)


def test_real_photos_are_mostly_benign():
    """False alarms on real benign photos stay rare (measured at conversion: see the sidecar)."""
    golden = _golden(BUNDLED_INT8)["backends"]["litert"]["outputs"]
    photos = {k: v for k, v in golden.items() if k.startswith("photos/")}
    flagged = [k for k, v in photos.items() if _child_malign(v) >= 0.30]
    assert len(photos) >= 80
    assert len(flagged) <= 0.08 * len(photos), flagged
