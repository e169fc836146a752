from pathlib import Path

import pytest

from agent.config import Config, load_config, parse_config, resolve_config
from agent.errors import ConfigError


def test_no_file_means_built_in_defaults(tmp_path: Path):
    config = resolve_config(None, tmp_path / "absent.toml")
    assert config == Config()
    assert (config.agent.profile, config.model.accelerator, config.model.threads, config.model.backend) == ("child", "auto", 0, "auto")


def test_valid_file_is_typed(tmp_path: Path):
    path = tmp_path / "veil.toml"
    path.write_text('[agent]\nprofile = "teen"\n[model]\naccelerator = "cpu"\nthreads = 2\n[screen]\nenabled = false\n')
    config = load_config(path)
    assert config.agent.profile == "teen"
    assert config.model.accelerator == "cpu" and config.model.threads == 2
    assert config.source == path
    assert config.pending["screen"] == {"enabled": False}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[model]\nacelerator = 'cpu'\n", "model.acelerator"),
        ("[modle]\n", "config.modle"),
        ("[model]\naccelerator = 'tpu'\n", "model.accelerator"),
        ("[model]\nthreads = -1\n", "model.threads"),
        ("[model]\nthreads = true\n", "model.threads"),
        ("[model]\nthreads = '2'\n", "model.threads"),
        ("[model]\nbackend = 'onnx'\n", "model.backend"),
        ("model = 3\n", "model"),
        ("watch = 3\n", "watch"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, named: str):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert named in str(err.value)
    assert str(path) in str(err.value)


def test_unreadable_and_invalid_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(broken)


def test_parse_rejects_unknown_sections_without_a_file():
    with pytest.raises(ConfigError, match="config.telemetry"):
        parse_config({"telemetry": {}})
