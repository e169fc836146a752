"""What a notification says, and how a burst collapses into one (the D-Bus side: tests/integration)."""

import threading
import time
from pathlib import Path

from agent.config import NotifySection
from agent.notify import SETTLE_S, Notice, Notifier, notice_for, wording
from agent.outcome import Outcome


class Shown:
    """The notification service's side: what was shown, and when (the OS edge)."""

    name = "test"

    def __init__(self):
        self.shown: list[tuple[float, str, str, int]] = []
        self.changed = threading.Event()

    def show(self, summary, body, replaces):
        self.shown.append((time.monotonic(), summary, body, replaces))
        self.changed.set()
        return len(self.shown)


def _moved(name: str, action: str = "quarantine") -> Outcome:
    return Outcome(f"/home/kid/Downloads/{name}", "malign", action, "vault entry x", "folder", Path(f"/home/kid/Downloads/{name}"))


def test_one_file_is_named_and_a_burst_is_counted():
    assert wording([Notice("quarantine", "holiday.png")]) == (
        "Veil moved holiday.png to quarantine", "A parent can restore a file from the tray, with the PIN.")
    summary, body = wording([Notice("quarantine", f"{n}.jpg") for n in range(200)])
    assert summary == "Veil moved 200 files to quarantine"
    assert body.splitlines()[0] == "0.jpg, 1.jpg, 2.jpg and 197 more"
    summary, _ = wording([Notice("quarantine", "a.jpg"), Notice("blur", "b.jpg"), Notice("screen", "screen:1")])
    assert summary == "Veil moved a file to quarantine, blurred a file and covered a picture on the screen"
    assert wording([Notice("screen", "screen:1")])[0] == "Veil covered a picture on the screen"
    assert wording([Notice("failed", "x.jpg")])[0] == "Veil could not move x.jpg"
    summary, body = wording([Notice("trouble", "Screen protection is off here: no display")])
    assert summary == "Veil: protection is degraded" and body == "Screen protection is off here: no display"


def test_a_name_cannot_smuggle_lines_or_run_on():
    summary, _ = wording([Notice("quarantine", "a\nVeil is off\x1b[2J.png")])
    assert "\n" not in summary and "\x1b" not in summary
    assert len(wording([Notice("quarantine", "x" * 500 + ".png")])[0]) < 120


def test_what_is_told_and_what_is_not():
    assert notice_for(_moved("a.jpg")) == Notice("quarantine", "a.jpg")
    assert notice_for(_moved("a.jpg", "blur")) == Notice("blur", "a.jpg")
    assert notice_for(_moved("a.jpg", "log")) is None  # the profile asked only for a record
    assert notice_for(Outcome("/x/b.jpg", "benign", "none", "", "folder", Path("/x/b.jpg"))) is None
    assert notice_for(Outcome("/x/c.jpg", "error", "none", "quarantine failed", "folder", Path("/x/c.jpg"), attempted="quarantine")) \
        == Notice("failed", "c.jpg")
    assert notice_for(Outcome("screen:1", "malign", "blur", "", "screen")) == Notice("screen", "screen:1")
    assert notice_for(Outcome("screen:1", "malign", "log", "", "screen")) is None


def test_a_burst_is_one_notification():
    shown = Shown()
    notifier = Notifier(NotifySection(min_interval_s=60.0), shown)
    notifier.start()
    try:
        began = time.monotonic()
        for n in range(200):
            notifier.outcome(_moved(f"{n}.jpg"))
            time.sleep(0.005)  # a second of files arriving
        assert shown.changed.wait(30)
        first_at, summary, _, _ = shown.shown[0]
        assert summary == "Veil moved 200 files to quarantine"
        assert first_at - began >= SETTLE_S  # told once the burst had settled
    finally:
        notifier.stop()
    assert len(shown.shown) == 1


def test_the_next_notification_waits_its_turn_and_replaces_the_last():
    shown = Shown()
    notifier = Notifier(NotifySection(min_interval_s=2.0), shown)
    notifier.start()
    try:
        notifier.outcome(_moved("first.jpg"))
        assert shown.changed.wait(10)
        shown.changed.clear()
        notifier.outcome(_moved("late.jpg"))
        assert shown.changed.wait(10)
    finally:
        notifier.stop()
    (first_at, first, _, _), (second_at, second, _, replaces) = shown.shown
    assert (first, second) == ("Veil moved first.jpg to quarantine", "Veil moved late.jpg to quarantine")
    assert replaces == 1  # the bubble is replaced, if still up, rather than stacked
    assert second_at - first_at >= 2.0  # never two within min_interval_s


def test_a_file_that_keeps_failing_is_told_once_and_stop_tells_what_waits():
    shown = Shown()
    notifier = Notifier(NotifySection(min_interval_s=60.0), shown)
    notifier.start()
    failing = Outcome("/x/c.jpg", "error", "none", "quarantine failed: read-only", "folder", Path("/x/c.jpg"), attempted="quarantine")
    for _ in range(5):  # retried every 10 s by the agent
        notifier.outcome(failing)
    notifier.trouble("disk full")
    notifier.trouble("disk full")
    notifier.stop()  # before SETTLE_S: what waits is told on the way out
    assert [s[1] for s in shown.shown] == ["Veil could not move c.jpg"]
    assert "disk full" in shown.shown[0][2] and shown.shown[0][2].count("disk full") == 1


def test_switched_off_it_tells_nothing():
    shown = Shown()
    notifier = Notifier(NotifySection(enabled=False), shown)
    notifier.start()
    notifier.outcome(_moved("a.jpg"))
    notifier.stop()
    assert shown.shown == [] and notifier.state == "notifications: off"
