from pathlib import Path

import pytest

from agent.config import Config, example_text, load_config, parse_config, resolve_config
from agent.errors import ConfigError
from agent.policy import BUILTIN_PROFILES

REPO = Path(__file__).resolve().parents[2]


def test_no_file_means_built_in_defaults(tmp_path: Path):
    config = resolve_config(None, tmp_path / "absent.toml")
    assert config == Config()
    assert (config.agent.profile, config.model.accelerator, config.model.threads, config.model.backend) == ("child", "auto", 0, "auto")
    assert config.active_profile == BUILTIN_PROFILES["child"]
    assert [w.path for w in config.watch] == ["~/Downloads"]


def test_the_example_is_exactly_the_defaults():
    """config.example.toml documents every key with its built-in value; it cannot rot."""
    assert (REPO / "config.example.toml").read_text() == example_text()
    example = load_config(REPO / "config.example.toml")
    assert example == Config()
    assert example.profiles == BUILTIN_PROFILES
    assert [p.actions for p in example.profiles.values()] == [p.actions for p in BUILTIN_PROFILES.values()]


def test_valid_file_is_typed(tmp_path: Path):
    path = tmp_path / "veil.toml"
    path.write_text(
        '[agent]\nprofile = "teen"\n[model]\naccelerator = "cpu"\nthreads = 2\n[screen]\nenabled = false\ninterval_s = 2\n'
        '[[watch]]\npath = "/a"\n[[watch]]\npath = "/b"\nrecursive = false\ninclude = ["*.jpg"]\n'
    )
    config = load_config(path)
    assert config.agent.profile == "teen" and config.active_profile.threshold == 0.5
    assert config.model.accelerator == "cpu" and config.model.threads == 2
    assert config.screen.enabled is False and config.screen.interval_s == 2.0
    assert [(w.path, w.recursive, w.include) for w in config.watch] == [("/a", True, ()), ("/b", False, ("*.jpg",))]
    assert config.source == path


def test_profiles_are_overridden_key_by_key_and_added():
    config = parse_config({
        "agent": {"profile": "school"},
        "profiles": {
            "child": {"threshold": 0.2, "actions": {"screen": "log"}},
            "school": {"malign_classes": ["porn", "hentai", "sexy", "drawing"], "threshold": 0.4},
        },
    })
    child = config.profiles["child"]
    assert (child.threshold, child.malign_classes) == (0.2, ("porn", "hentai", "sexy"))
    assert child.actions == {"folder": "quarantine", "screen": "log", "video": "quarantine"}
    assert config.active_profile.name == "school" and config.active_profile.threshold == 0.4
    assert set(config.profiles) == {"child", "teen", "adult", "school"}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[model]\nacelerator = 'cpu'\n", "model.acelerator: unknown key"),
        ("[modle]\n", "config.modle: unknown key"),
        ("[model]\naccelerator = 'tpu'\n", "model.accelerator"),
        ("[model]\nthreads = -1\n", "model.threads"),
        ("[model]\nthreads = true\n", "model.threads"),
        ("[model]\nthreads = '2'\n", "model.threads"),
        ("[model]\nbackend = 'onnx'\n", "model.backend"),
        ("model = 3\n", "model: expected a table"),
        ("watch = 3\n", "watch: expected"),
        ("[[watch]]\npath = '/x'\nrecursiv = true\n", "watch[0].recursiv: unknown key"),
        ("[[watch]]\ninclude = '*.jpg'\n", "watch[0].include: expected a list"),
        ("[agent]\nprofile = 'toddler'\n", "agent.profile: no profile named 'toddler'"),
        ("[profiles.child]\nthreshold = 1.5\n", "profiles.child.threshold: must be in (0, 1]"),
        ("[profiles.child]\nmalign_classes = ['nudity']\n", "profiles.child.malign_classes: 'nudity'"),
        ("[profiles.child]\nmalign_classes = []\n", "profiles.child.malign_classes: must name"),
        ("[profiles.child]\nactions = { screen = 'quarantine' }\n", "profiles.child.actions.screen: 'quarantine'"),
        ("[profiles.child]\nactions = { printer = 'log' }\n", "profiles.child.actions.printer: unknown key"),
        ("[profiles.child]\ncolour = 'red'\n", "profiles.child.colour: unknown key"),
        ("[profiles.new]\nthreshold = 0.5\n", "profiles.new: a new profile needs malign_classes and threshold"),
        ("[screen]\ninterval_s = 0\n", "screen.interval_s: must be > 0"),
        ("[audit]\nrotate_mb = -1\n", "audit.rotate_mb"),
        ("[quarantine]\nretention_days = -3\n", "quarantine.retention_days"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, named: str):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert named in str(err.value)
    assert str(err.value).startswith(str(path))


def test_unreadable_and_invalid_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(broken)


def test_unknown_profile_asked_for_by_name():
    with pytest.raises(ConfigError, match="unknown profile 'x' \\(known: child, teen, adult\\)"):
        Config().profile("x")


def test_a_download_name_cannot_be_made_a_hiding_place_by_config():
    assert parse_config({"agent": {"stalled_download_s": 60}}).agent.stalled_download_s == 60
    for bad in (0, -1, 86401, 1e12):
        with pytest.raises(ConfigError, match="agent.stalled_download_s"):
            parse_config({"agent": {"stalled_download_s": bad}})
