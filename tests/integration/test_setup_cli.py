"""``veil setup`` at a terminal's place (options and VEIL_NEW_PIN / VEIL_PIN): the PIN set, the
config written with its comments kept, the change audited, and a set PIN guarding any later change."""

import tomllib

from agent.config import example_text
from tests.agent_process import audit_of, run_veil

PIN = "246824"


def _example_config(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(example_text().replace('data_dir = ""', f'data_dir = "{tmp_path / "data"}"', 1))
    return path


def test_setup_sets_the_pin_and_writes_the_choices_keeping_comments(tmp_path):
    config = _example_config(tmp_path)
    pictures, downloads = tmp_path / "Pictures", tmp_path / "Downloads"
    pictures.mkdir()
    downloads.mkdir()
    done = run_veil("setup", "--config", str(config), "--profile", "teen", "--watch", str(downloads), "--watch", str(pictures),
                    "--screen", "off", env={"VEIL_NEW_PIN": PIN})
    assert done.returncode == 0, done.stderr
    assert "PIN set" in done.stdout and "profile teen" in done.stdout
    text = config.read_text()
    assert "# active profile: child, teen, adult, or one of yours below" in text  # comments kept, in place
    assert "# Folders to watch; repeat the [[watch]] table for more.\n[[watch]]" in text
    written = tomllib.loads(text)
    assert written["agent"]["profile"] == "teen" and written["screen"]["enabled"] is False
    assert [w["path"] for w in written["watch"]] == [str(downloads), str(pictures)]
    assert written["agent"]["data_dir"] == str(tmp_path / "data")  # what setup does not touch stays
    rows = [r for r in audit_of(tmp_path / "data") if r["source"] == "agent" and r["subject"] == "config"]
    assert [r["detail"] for r in rows][-2] == "PIN set"
    assert rows[-1]["detail"].startswith("setup (veil setup): profile teen; watching ") and "screen off" in rows[-1]["detail"]
    assert run_veil("config", "check", str(config)).returncode == 0


def test_once_a_pin_is_set_setup_asks_for_it_and_a_wrong_one_is_audited(tmp_path):
    config = _example_config(tmp_path)
    assert run_veil("setup", "--config", str(config), "--watch", str(tmp_path), env={"VEIL_NEW_PIN": PIN}).returncode == 0
    before = config.read_text()
    refused = run_veil("setup", "--config", str(config), "--profile", "adult")
    assert refused.returncode == 2 and "a PIN is set" in refused.stderr
    wrong = run_veil("setup", "--config", str(config), "--profile", "adult", env={"VEIL_PIN": "000000"})
    assert wrong.returncode == 2 and config.read_text() == before
    failed = [r for r in audit_of(tmp_path / "data") if r["subject"] == "pin-failed"]
    assert failed and "setup (veil setup)" in failed[-1]["detail"]
    right = run_veil("setup", "--config", str(config), "--profile", "adult", env={"VEIL_PIN": PIN})
    assert right.returncode == 0, right.stderr
    assert tomllib.loads(config.read_text())["agent"]["profile"] == "adult"


def test_setup_refuses_a_short_pin_and_an_unknown_profile_and_changes_nothing(tmp_path):
    config = _example_config(tmp_path)
    before = config.read_text()
    short = run_veil("setup", "--config", str(config), "--watch", str(tmp_path), env={"VEIL_NEW_PIN": "123"})
    assert short.returncode == 2 and "at least 6 characters" in short.stderr
    unknown = run_veil("setup", "--config", str(config), "--profile", "nobody", "--watch", str(tmp_path), env={"VEIL_NEW_PIN": PIN})
    assert unknown.returncode == 2 and "nobody" in unknown.stderr
    assert config.read_text() == before
    assert not any(r["detail"] == "PIN set" for r in audit_of(tmp_path / "data"))
