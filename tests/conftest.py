"""Shared fixtures: real photos, canaries and the bundled models; a leaked-thread check."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

# tflite-runtime and TensorFlow each embed TFLite; once TensorFlow is loaded, a first import of
# tflite-runtime in the same process crashes (seen: segfault). Veil uses one backend per process,
# but this suite loads them all, so tflite-runtime (if installed) is loaded first.
try:
    import tflite_runtime.interpreter  # noqa: F401
except ImportError:
    pass

# The suite never reads or writes the user's real cache (the GPU probe remembers its answer there):
# one folder of its own for the session, inherited by every agent process a test starts.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="veil-test-cache-")

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
PHOTOS = FIXTURES / "photos"
CANARIES = FIXTURES / "canaries"
GOLDEN = FIXTURES / "golden"


def require_tool(name: str, package: str) -> str:
    """A command-line tool's path; without it the test skips, or fails where CI requires the
    tool (``VEIL_REQUIRE_TOOLS``, set by tests/run.sh, which installs it)."""
    path = shutil.which(name)
    if path is None:
        if name.lower() in os.environ.get("VEIL_REQUIRE_TOOLS", "").split(","):
            pytest.fail(f"{name} is required here (VEIL_REQUIRE_TOOLS) but not installed: apt-get install {package}")
        pytest.skip(f"{name} not installed (Debian package {package})")
    return path


def skips_are_failures() -> bool:
    """Under CI every test must run: a skip there means a missing install step, so it fails."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and skips_are_failures():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every test must run: {reason}"


def canary_index() -> dict[str, dict]:
    return json.loads((CANARIES / "canaries.json").read_text())


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Every thread a test starts must be joined by the end of it (design: style 6)."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in leaked:
        thread.join(timeout=2)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"threads leaked by the test: {still}"


@pytest.fixture(scope="session")
def classifier():
    """The bundled int8 model on the CPU, as the scan and video tests use it."""
    from agent.classifier import open_classifier
    from agent.config import ModelSection

    with open_classifier(ModelSection(accelerator="cpu", threads=2)) as c:
        yield c
