"""``veil install`` / ``veil uninstall``: start at login, come back when killed (installers/).

Linux: a systemd user unit with ``Restart=always`` (enabled when a systemd user session answers)
plus an XDG autostart entry for desktops without one; Windows: a Task Scheduler script; macOS: a
LaunchAgent with ``KeepAlive``. Templates live in installers/ and ship as ``agent.installers``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from xml.sax.saxutils import escape

UNIT = "veil.service"
DESKTOP = "veil.desktop"
PLIST = "org.veil.agent.plist"


@dataclass
class InstallReport:
    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def run_command(config: Path | None) -> list[str]:
    """The agent's command line: the ``veil`` script beside this interpreter, else ``python -m agent``."""
    script = Path(sys.executable).with_name("veil.exe" if sys.platform == "win32" else "veil")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "agent"]
    return [*base, "run", *(["--config", str(config.resolve())] if config else [])]


def template(name: str) -> str:
    return resources.files("agent.installers").joinpath(name).read_text(encoding="utf-8")


def _systemd_quote(args: list[str]) -> str:
    return " ".join(f'"{a}"' if any(c in a for c in ' "\\') else a for a in args).replace("%", "%%")


def render_linux_unit(args: list[str]) -> str:
    return template("linux/veil.service").replace("@RUN@", _systemd_quote(args))


def render_linux_desktop(args: list[str]) -> str:
    # no service manager watches an autostarted program: Veil's own keeper brings it back
    return template("linux/veil.desktop").replace("@RUN@", shlex.join([*args, "--keep-alive"]))


def render_windows_task(args: list[str]) -> str:
    arguments = " ".join(f'`"{a}`"' if " " in a else a for a in args[1:])
    return template("windows/install-task.ps1").replace("@PROGRAM@", args[0]).replace("@ARGUMENTS@", arguments)


def render_macos_plist(args: list[str]) -> str:
    strings = "\n".join(f"        <string>{escape(a)}</string>" for a in args)
    return template("macos/" + PLIST).replace("@ARGS@", strings)


def _config_home(home: Path) -> Path:
    configured = os.environ.get("XDG_CONFIG_HOME")
    return Path(configured) if configured else home / ".config"


def _systemctl(*args: str) -> subprocess.CompletedProcess | None:
    if shutil.which("systemctl") is None:
        return None
    try:
        return subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None


def stop_without_restart(platform: str = sys.platform) -> str | None:
    """A quit with the PIN is wanted: ask the service manager (or Veil's own keeper) that started
    this agent not to bring it back (it restarts it when killed). Returns what was asked, or None
    where nothing needs asking (Windows' task restarts only after a failure; the PIN quit exits 0).

    systemd marks the services it starts with INVOCATION_ID; stopping the unit (without waiting:
    the stop's SIGTERM arrives while this agent is already closing) is an explicit stop, which is
    never restarted. launchd names its job in XPC_SERVICE_NAME; booting it out unloads it until
    the next login."""
    from agent.keeper import release_keeper

    released = release_keeper()  # `veil run --keep-alive` (XDG autostart): the keeper lets go
    if released:
        return released
    if platform.startswith("linux") and os.environ.get("INVOCATION_ID"):
        done = _systemctl("stop", "--no-block", UNIT)
        return f"systemctl --user stop {UNIT}" + ("" if done is not None and done.returncode == 0 else " (failed)")
    label = PLIST.removesuffix(".plist")
    if platform == "darwin" and os.environ.get("XPC_SERVICE_NAME") == label:
        try:
            done = subprocess.run(["launchctl", "bootout", f"gui/{os.getuid()}/{label}"], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            done = None
        return f"launchctl bootout {label}" + ("" if done is not None and done.returncode == 0 else " (failed)")
    return None


def install(config: Path | None, home: Path | None = None, platform: str = sys.platform) -> InstallReport:
    home = home or Path.home()
    args = run_command(config)
    report = InstallReport()
    if platform.startswith("linux"):
        unit = _config_home(home) / "systemd" / "user" / UNIT
        desktop = _config_home(home) / "autostart" / DESKTOP
        for path, text in ((unit, render_linux_unit(args)), (desktop, render_linux_desktop(args))):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            report.written.append(path)
        session = _systemctl("show-environment")
        if session is not None and session.returncode == 0:
            _systemctl("daemon-reload")
            enabled = _systemctl("enable", UNIT)
            report.notes.append("systemd user unit enabled: it starts with the session and restarts 2 s after any exit"
                                if enabled and enabled.returncode == 0 else
                                f"systemd user unit written but not enabled: {(enabled.stderr if enabled else '').strip()}")
        else:
            report.notes.append("no systemd user session here: the XDG autostart entry starts Veil at the next login")
    elif platform == "win32":
        script = home / "AppData" / "Local" / "veil" / "install-task.ps1"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(render_windows_task(args), encoding="utf-8")
        report.written.append(script)
        report.notes.append(f"run: powershell -ExecutionPolicy Bypass -File \"{script}\"")
    elif platform == "darwin":
        plist = home / "Library" / "LaunchAgents" / PLIST
        plist.parent.mkdir(parents=True, exist_ok=True)
        plist.write_text(render_macos_plist(args), encoding="utf-8")
        report.written.append(plist)
        report.notes.append(f"load it now with: launchctl load -w {plist}")
    else:
        report.notes.append(f"no autostart for {platform}")
    return report


def uninstall(home: Path | None = None, platform: str = sys.platform) -> InstallReport:
    home = home or Path.home()
    report = InstallReport()
    if platform.startswith("linux"):
        session = _systemctl("show-environment")
        if session is not None and session.returncode == 0:
            _systemctl("disable", "--now", UNIT)
        candidates = [_config_home(home) / "systemd" / "user" / UNIT, _config_home(home) / "autostart" / DESKTOP]
    elif platform == "win32":
        candidates = [home / "AppData" / "Local" / "veil" / "install-task.ps1"]
        report.notes.append('also run: Unregister-ScheduledTask -TaskName "Veil" -Confirm:$false')
    elif platform == "darwin":
        candidates = [home / "Library" / "LaunchAgents" / PLIST]
    else:
        candidates = []
    for path in candidates:
        if path.exists():
            path.unlink()
            report.removed.append(path)
    return report
