"""Desktop notifications on a real D-Bus session bus: the agent tells the person at the screen
what it did, a burst in one notification, never the picture; degraded protection is told too."""

import os
import shutil
import time

import pytest

from agent.notify import DBusBackend
from tests.agent_process import Agent, wait_until, write_config
from tests.dbus_session import NotificationService
from tests.media import child_flagged_canaries

CANARY = child_flagged_canaries()[5]


@pytest.fixture
def service():
    running = NotificationService()
    yield running
    running.stop()


def test_a_burst_of_200_flagged_files_is_one_notification(tmp_path, service):
    folder = tmp_path / "Downloads"
    folder.mkdir()
    staging = tmp_path / "staging"
    staging.mkdir()
    canary = CANARY.read_bytes()
    for n in range(200):  # 200 different files (bytes after the PNG's end), as a download of a folder brings
        (staging / f"picture-{n:03d}.png").write_bytes(canary + n.to_bytes(2, "big"))
    config = write_config(tmp_path, [folder], extra="[notify]\nmin_interval_s = 120\n")
    agent = Agent(config, env=service.env)
    try:
        assert any("notifications: desktop notifications (D-Bus)" in line for line in agent.lines), agent.lines
        for path in sorted(staging.iterdir()):
            os.rename(path, folder / path.name)
        vault = tmp_path / "data" / "quarantine"
        assert wait_until(lambda: len(list(vault.glob("*.veil"))) == 200, 240), len(list(vault.glob("*.veil")))
        assert service.changed.wait(30)
        time.sleep(4)  # longer than the settling time: a second notification would be out by now
    finally:
        agent.stop()
    assert len(service.received) == 1, service.received
    [told] = service.received
    assert told["app_name"] == "Veil" and told["summary"] == "Veil moved 200 files to quarantine"
    assert told["body"].splitlines()[0].endswith(" and 197 more") and "picture-" in told["body"]
    # words only: no image or sound hint, no icon made of the content
    assert set(told["hints"]) == {"urgency"} and told["app_icon"] == "security-high"


def test_a_screen_that_cannot_be_protected_is_told(tmp_path, service):
    folder = tmp_path / "Downloads"
    folder.mkdir()
    config = write_config(tmp_path, [folder])
    config.write_text(config.read_text().replace("[screen]\nenabled = false", "[screen]\nenabled = true"))
    env = {**service.env, "DISPLAY": ""}
    agent = Agent(config, env=env)
    try:
        assert service.changed.wait(30)
    finally:
        agent.stop()
    [told] = service.received
    assert told["summary"] == "Veil: protection is degraded"
    assert told["body"].startswith("Screen protection is off here: no display")


def test_a_server_that_reads_markup_gets_names_escaped(monkeypatch):
    service = NotificationService(capabilities=("body", "body-markup"))
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", service.address)
    try:
        backend = DBusBackend()
        assert backend.show("Veil moved a file", "<b>x</b> & y.png", 0) == 1
        backend.close()
    finally:
        service.stop()
    assert service.received[0]["body"] == "&lt;b&gt;x&lt;/b&gt; &amp; y.png"


def test_no_session_bus_says_so_and_the_agent_runs(tmp_path):
    folder = tmp_path / "Downloads"
    folder.mkdir()
    agent = Agent(write_config(tmp_path, [folder]), env={"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"})
    try:
        assert any("notifications: unavailable here (no notification service on the session bus" in line for line in agent.lines), agent.lines
        shutil.copyfile(CANARY, folder / "x.png")
        assert wait_until(lambda: not (folder / "x.png").exists(), 60)  # protection goes on
    finally:
        agent.stop()
