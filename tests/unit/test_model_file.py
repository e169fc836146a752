"""Bad model files give one clear error naming the file and the expected sha256."""

import json
import shutil
from pathlib import Path

import pytest

from agent.classifier.model import BUNDLED_F16, BUNDLED_INT8, bundled_model_path, load_model_file
from agent.errors import ModelError


def _copy_bundled(tmp_path: Path) -> Path:
    src = bundled_model_path(BUNDLED_INT8)
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


def _expected(path: Path) -> str:
    return json.loads(path.with_suffix(".json").read_text())["sha256"]


@pytest.mark.parametrize("name", [BUNDLED_INT8, BUNDLED_F16])
def test_bundled_models_pass_their_own_check(name: str):
    model = load_model_file(bundled_model_path(name))
    assert model.sha256 == _expected(model.path)
    assert model.sidecar["labels"] == ["drawing", "hentai", "neutral", "porn", "sexy"]


@pytest.mark.parametrize("name", [BUNDLED_INT8, BUNDLED_F16])
def test_the_sidecar_states_the_tensors_a_runtime_sees(name: str):
    from ai_edge_litert.interpreter import Interpreter

    model = load_model_file(bundled_model_path(name))
    interpreter = Interpreter(model_path=str(model.path))
    [tensor_in], [tensor_out] = interpreter.get_input_details(), interpreter.get_output_details()
    assert model.sidecar["input"]["dtype"] == tensor_in["dtype"].__name__
    assert model.sidecar["output"]["dtype"] == tensor_out["dtype"].__name__
    assert list(tensor_in["shape"]) == model.sidecar["input"]["shape"]
    assert model.int8 == (name == BUNDLED_INT8)


def test_missing_model(tmp_path: Path):
    with pytest.raises(ModelError, match="model file not found: .*nope.tflite"):
        load_model_file(tmp_path / "nope.tflite")


def test_truncated_model(tmp_path: Path):
    path = _copy_bundled(tmp_path)
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(ModelError) as err:
        load_model_file(path)
    message = str(err.value)
    assert str(path) in message and _expected(path) in message and "truncated" in message


def test_foreign_file(tmp_path: Path):
    path = _copy_bundled(tmp_path)
    path.write_bytes(b"<html>not a model</html>")
    with pytest.raises(ModelError, match="not a TFLite model.*expected sha256"):
        load_model_file(path)


def test_missing_or_broken_sidecar(tmp_path: Path):
    path = _copy_bundled(tmp_path)
    path.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match="sidecar .* is missing"):
        load_model_file(path)
    path.with_suffix(".json").write_text("{")
    with pytest.raises(ModelError, match="unreadable model sidecar"):
        load_model_file(path)


def test_sidecar_of_another_model(tmp_path: Path):
    path = _copy_bundled(tmp_path)
    shutil.copy(bundled_model_path(BUNDLED_F16).with_suffix(".json"), path.with_suffix(".json"))
    with pytest.raises(ModelError, match="does not match its sidecar"):
        load_model_file(path)
