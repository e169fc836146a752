"""`veil run --keep-alive` (what the XDG autostart entry runs): a killed agent comes back within
seconds and its gap is audited; a logout or a quit with the PIN stops it for good."""

import os
import shutil
import signal
from pathlib import Path

import pytest

from agent.audit import verify
from tests.agent_process import Agent, audit_of, run_veil, wait_until, write_config
from tests.conftest import CANARIES
from tests.xserver import XServer


def _child(keeper_pid: int) -> int | None:
    """The keeper's agent process (Linux: the kernel lists a task's children)."""
    pids = Path(f"/proc/{keeper_pid}/task/{keeper_pid}/children").read_text().split()
    return int(pids[0]) if pids else None


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def kept(tmp_path):
    folder = tmp_path / "Downloads"
    folder.mkdir()
    config = write_config(tmp_path, [folder])
    keeper = Agent(config, args=("--keep-alive",))
    yield keeper, folder, tmp_path / "data"
    _end(keeper)


def _end(keeper: Agent) -> None:
    """Kill a keeper still running, and its agent: an agent left without its keeper runs on (and
    holds the output pipe the test reads)."""
    if keeper.proc.poll() is None:
        agent = _child(keeper.proc.pid)
        keeper.proc.kill()
        if agent is not None:
            os.kill(agent, signal.SIGKILL)
        keeper.stop(signal.SIGKILL)


def _restarted_after(keeper: Agent, sig: int) -> tuple[int, int | None]:
    first = _child(keeper.proc.pid)
    assert first is not None
    starts = sum("protecting with profile" in line for line in keeper.lines)
    os.kill(first, sig)
    assert wait_until(lambda: sum("protecting with profile" in line for line in keeper.lines) > starts, 60), keeper.lines
    return first, _child(keeper.proc.pid)


def test_a_killed_agent_is_back_within_seconds_and_the_gap_is_audited(kept):
    keeper, folder, data = kept
    first, second = _restarted_after(keeper, signal.SIGKILL)
    assert second is not None and second != first and not _alive(first)
    assert any("keep-alive: the agent was killed (SIGKILL); starting it again in 2 s" in line for line in keeper.lines)
    shutil.copy(CANARIES / "porn-a.png", folder / "after.png")  # the new agent protects
    assert wait_until(lambda: not (folder / "after.png").exists(), 30)
    first, second = _restarted_after(keeper, signal.SIGTERM)  # a plain kill of the agent: back as well
    assert second != first
    assert keeper.stop() == 0  # a logout: the keeper's SIGTERM is passed on, and nothing comes back
    assert not _alive(second)
    gaps = [r["detail"] for r in audit_of(data) if r["subject"] == "gap"]
    assert len(gaps) == 2 and ": killed;" in gaps[0] and gaps[1].endswith(": quit (SIGTERM)")
    assert verify(data / "audit" / "audit.csv").ok


def test_a_quit_with_the_pin_releases_the_keeper(kept, monkeypatch):
    """The tray's PIN quit calls stop_without_restart() (its clicks are tested in test_tray);
    here it is called as the agent calls it, with the keeper's pid in the environment."""
    from agent.install import stop_without_restart

    keeper, _, data = kept
    agent = _child(keeper.proc.pid)
    monkeypatch.setenv("VEIL_KEEPER_PID", str(keeper.proc.pid))
    assert stop_without_restart("linux") == f"keep-alive (pid {keeper.proc.pid})"
    os.kill(agent, signal.SIGTERM)  # the agent then stops itself
    assert keeper.proc.wait(30) == 0
    assert not any("starting it again" in line for line in keeper.lines)


def test_keep_alive_refuses_once_and_a_broken_config_says_so_once(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[agent\n")
    done = run_veil("run", "--no-tray", "--keep-alive", "--config", str(bad), timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and str(bad) in done.stderr
    once = run_veil("run", "--once", "--keep-alive", "--config", str(write_config(tmp_path, [])), timeout=60)
    assert once.returncode == 2 and "does not go with --once" in once.stderr


def test_a_logout_that_takes_the_display_down_ends_the_keeper_too(tmp_path):
    """Without this the keeper would restart the agent headless after the session, and that
    agent would hold the single-instance lock against the next login's."""
    server = XServer("1024x768")
    folder = tmp_path / "Downloads"
    folder.mkdir()
    keeper = Agent(write_config(tmp_path, [folder]), env=server.env, tray=True, args=("--keep-alive",))
    try:
        # said once the tray's Tk is up, connected to the display
        assert wait_until(lambda: any(line.startswith("veil: tray: unavailable (no system tray") for line in keeper.lines), 15), \
            keeper.lines
    finally:
        server.stop()  # the X server goes first, taking the agent's Tk with it
    try:
        assert keeper.proc.wait(30) == 0, keeper.lines
    finally:
        _end(keeper)
    assert any("the display" in line and "the session is over; not starting it again" in line for line in keeper.lines), keeper.lines


def test_the_session_is_gone_when_its_display_socket_is(tmp_path, monkeypatch):
    from agent.keeper import session_gone

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "wayland-1").touch()  # stands for the compositor's socket
    assert session_gone(None, "wayland-1") is None
    assert session_gone(None, "wayland-2") == "the Wayland display wayland-2 is gone"
    assert session_gone(None, str(tmp_path / "wayland-1")) is None  # an absolute name
    server = XServer("640x480")
    try:
        assert session_gone(server.display, None) is None
    finally:
        server.stop()
    assert session_gone(server.display, None) == f"the display {server.display} is gone"
