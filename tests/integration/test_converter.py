"""Re-running the converter reproduces the committed models (issue 2), end to end:
npm fetch with integrity check, float rebuild verified against nsfwjs under Node, int8 and f16
conversion, fidelity checks. Minutes of CPU; needs the ``convert`` extra, node and npm."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent.classifier.backends import CPU_BACKENDS
from agent.classifier.model import BUNDLED_F16, BUNDLED_INT8, bundled_model_path, load_model_file
from agent.decode import load_model_input
from tests.conftest import CANARIES, PHOTOS, REPO

pytestmark = pytest.mark.slow


def _inputs() -> np.ndarray:
    paths = sorted(PHOTOS.glob("*.jpg")) + sorted(CANARIES.glob("*.png"))
    return np.stack([load_model_input(p) for p in paths])


def test_converter_reproduces_committed_models(tmp_path: Path):
    if importlib.util.find_spec("tensorflow") is None:  # not imported here: it runs in a subprocess
        pytest.skip("the converter needs the convert extra")
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.fail("node and npm are required for the converter test (tests/run.sh installs them)")
    out = tmp_path / "models"
    cache = REPO / "converters" / ".cache"  # reuses a fetched, integrity-checked tarball
    done = subprocess.run(
        [sys.executable, "-m", "converters", "--cache", str(cache), "nsfwjs", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=3000, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "float model matches nsfwjs" in done.stdout

    inputs = _inputs()
    for name in (BUNDLED_INT8, BUNDLED_F16):
        committed = load_model_file(bundled_model_path(name))
        rebuilt = load_model_file(out / f"{name}.tflite")
        a = CPU_BACKENDS["litert"](committed, 2)
        b = CPU_BACKENDS["litert"](rebuilt, 2)
        diff = max(np.abs(a.run(f[None]) - b.run(f[None])).max() for f in inputs)
        a.close()
        b.close()
        assert diff <= 1e-3, f"{name}: rebuilt model differs by {diff}"
        old, new = committed.sidecar, rebuilt.sidecar
        assert new["source"] == old["source"] and new["input"] == old["input"] and new["labels"] == old["labels"]
        fid = new["fidelity_vs_float"]["profiles"]["child"]
        assert fid["decision_flips_required_inputs"] == []
    assert (out / "LICENSE.nsfwjs").read_text() == (REPO / "models" / "LICENSE.nsfwjs").read_text()
