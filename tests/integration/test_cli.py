"""The ``veil`` command as a user runs it: a real process, real files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent import __version__
from agent.classifier.model import bundled_model_path

REPO = Path(__file__).resolve().parents[2]


def veil(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "VEIL_CONFIG": "/nonexistent/veil.toml", **(env or {})}
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True, env=full_env, cwd=cwd or REPO, timeout=120)


def test_version():
    done = veil("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"veil {__version__}"


def test_doctor_reports_model_backend_accelerator_latency():
    done = veil("doctor", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    model = bundled_model_path()
    assert report["model"]["path"] == str(model)
    assert report["model"]["sha256"] == json.loads(model.with_suffix(".json").read_text())["sha256"]
    assert report["backend"]["name"] in ("litert", "tflite_runtime", "tensorflow")
    assert report["accelerator"]["device"] in ("cpu", "gpu") and report["accelerator"]["why"]
    assert report["threads"] >= 1
    assert 0 < report["latency_ms_one_image"]["median"] < 10_000
    assert report["config"] == "built-in defaults"


def test_doctor_text_is_readable():
    done = veil("doctor", "--config", str(REPO / "tests" / "fixtures" / "configs" / "cpu-one-thread.toml"))
    assert done.returncode == 0, done.stderr
    assert "accelerator:  cpu — cpu as configured (1 threads)" in done.stdout
    assert "latency:" in done.stdout and "ms per image" in done.stdout


def test_bad_config_is_one_line_and_exit_2(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\naccelerator = 'quantum'\n")
    done = veil("doctor", "--config", str(bad))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.accelerator" in lines[0] and str(bad) in lines[0]
    assert "Traceback" not in done.stderr


def test_missing_model_names_file_and_expected_hash(tmp_path: Path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"")
    model.with_suffix(".json").write_text(bundled_model_path().with_suffix(".json").read_text())
    config = tmp_path / "veil.toml"
    config.write_text(f"[model]\npath = '{model}'\naccelerator = 'cpu'\n")
    done = veil("doctor", "--config", str(config))
    assert done.returncode == 2
    expected = json.loads(bundled_model_path().with_suffix(".json").read_text())["sha256"]
    assert str(model) in done.stderr and expected in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_no_command_prints_help_and_exits_2():
    done = veil()
    assert done.returncode == 2
    assert "usage: veil" in done.stdout


def test_doctor_warns_about_int8_on_tflite_runtime(tmp_path: Path):
    pytest.importorskip("tflite_runtime")
    config = tmp_path / "veil.toml"
    config.write_text(f"[model]\npath = '{bundled_model_path()}'\nbackend = 'tflite_runtime'\naccelerator = 'cpu'\n")
    done = veil("doctor", "--config", str(config), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["backend"]["name"] == "tflite_runtime"
    assert any("off XNNPACK" in w for w in report["warnings"])


def test_config_init_writes_the_example_and_check_accepts_it(tmp_path: Path):
    target = tmp_path / "conf" / "veil.toml"
    done = veil("config", "init", str(target))
    assert done.returncode == 0, done.stderr
    assert target.read_text() == (REPO / "config.example.toml").read_text()
    again = veil("config", "init", str(target))
    assert again.returncode == 2 and "already exists" in again.stderr
    check = veil("config", "check", str(target))
    assert check.returncode == 0 and "ok (profile child" in check.stdout


def test_config_check_names_the_first_problem(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[profiles.child]\nthreshold = 2\n")
    done = veil("config", "check", str(bad))
    assert done.returncode == 2
    assert done.stderr.strip() == f"veil: error: {bad}: profiles.child.threshold: must be in (0, 1], got 2.0"


def test_config_init_defaults_to_the_user_config_file(tmp_path: Path):
    target = tmp_path / "home-config" / "veil.toml"
    done = veil("config", "init", env={"VEIL_CONFIG": str(target)})
    assert done.returncode == 0 and target.is_file()
