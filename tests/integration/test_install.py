"""``veil install`` / ``uninstall`` into a temporary HOME, the results checked with the standard tools."""

import plistlib
import subprocess
import sys
from pathlib import Path

import pytest

from agent.install import render_macos_plist, render_windows_task, run_command, template
from tests.agent_process import audit_of, run_veil
from tests.conftest import require_tool


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[agent]\ndata_dir = "{tmp_path / "data"}"\n')
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "DBUS_SESSION_BUS_ADDRESS": "", "XDG_RUNTIME_DIR": ""}
    return home, config, env, tmp_path / "data"


def test_install_writes_a_valid_unit_and_autostart_entry(home):
    home_dir, config, env, data = home
    done = run_veil("install", "--user", "--config", str(config), env=env)
    assert done.returncode == 0, done.stderr
    unit = home_dir / ".config" / "systemd" / "user" / "veil.service"
    desktop = home_dir / ".config" / "autostart" / "veil.desktop"
    assert unit.exists() and desktop.exists()
    text = unit.read_text()
    assert "Restart=always" in text and f"--config {config}" in text and "@" not in text
    program = text.split("ExecStart=")[1].split()[0]
    assert program in (sys.executable, str(Path(sys.executable).with_name("veil")))
    verify = subprocess.run([require_tool("systemd-analyze", "systemd"), "verify", str(unit)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    assert desktop.read_text().split("Exec=")[1].split("\n")[0].endswith(f"run --config {config} --keep-alive")
    valid = subprocess.run([require_tool("desktop-file-validate", "desktop-file-utils"), str(desktop)], capture_output=True, text=True)
    assert valid.returncode == 0 and "error" not in valid.stdout, valid.stdout
    assert any("autostart installed" in r["detail"] for r in audit_of(data))


def test_uninstall_needs_the_pin_when_one_is_set(home):
    home_dir, config, env, data = home
    assert run_veil("install", "--config", str(config), env=env).returncode == 0
    assert run_veil("pin", "set", "--config", str(config), env={**env, "VEIL_PIN": "246824"}).returncode == 0
    refused = run_veil("uninstall", "--config", str(config), env={**env, "VEIL_PIN": "1111"})
    assert refused.returncode == 2 and (home_dir / ".config" / "systemd" / "user" / "veil.service").exists()
    assert any(r["subject"] == "pin-failed" for r in audit_of(data))
    done = run_veil("uninstall", "--config", str(config), env={**env, "VEIL_PIN": "246824"})
    assert done.returncode == 0, done.stderr
    assert not (home_dir / ".config" / "systemd" / "user" / "veil.service").exists()
    assert not (home_dir / ".config" / "autostart" / "veil.desktop").exists()
    assert any("autostart removed" in r["detail"] for r in audit_of(data))


def test_windows_and_macos_files_are_well_formed(tmp_path):
    args = ["C:\\Program Files\\Veil\\veil.exe", "run", "--config", "C:\\Users\\kid\\veil config.toml"]
    plist = plistlib.loads(render_macos_plist(["/Applications/Veil.app/veil", "run", "--config", "/Users/kid/a&b.toml"]).encode())
    assert plist["KeepAlive"] is True and plist["RunAtLoad"] is True
    assert plist["ProgramArguments"] == ["/Applications/Veil.app/veil", "run", "--config", "/Users/kid/a&b.toml"]
    script = render_windows_task(args)
    assert "@" not in script.replace("$ErrorActionPreference", "")
    assert '-Execute "C:\\Program Files\\Veil\\veil.exe"' in script and "-RestartCount 999" in script and "-AtLogOn" in script
    assert script.count('"') % 2 == 0 and script.count("(") == script.count(")")
    compile(template("windows/veil.spec"), "veil.spec", "exec")  # the PyInstaller spec is valid Python
    assert run_command(None)[-1] == "run"


def test_a_pin_quit_asks_the_service_manager_not_to_restart(tmp_path, monkeypatch):
    """The unit restarts Veil when it is killed; a quit with the PIN stops the unit instead.
    systemctl is the OS edge here (no systemd user session in CI): a stand-in records its call."""
    from agent.install import UNIT, stop_without_restart

    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    assert stop_without_restart("linux") is None  # started by hand or XDG autostart: nothing restarts it
    assert not calls.exists()
    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef")  # as systemd sets for its services
    assert stop_without_restart("linux") == f"systemctl --user stop {UNIT}"
    assert calls.read_text().split() == ["--user", "stop", "--no-block", UNIT]
