"""Screen sampling and the on-screen blur, on a real X server (Xvfb) with real windows."""

import subprocess
import time

import pytest

from agent.audit import verify
from tests.agent_process import Agent, audit_of, wait_until
from tests.conftest import PHOTOS
from tests.media import child_flagged_canaries
from tests.xserver import XServer

CANARY = child_flagged_canaries()[5]  # porn-a


@pytest.fixture
def xserver(request):
    size = getattr(request, "param", "1920x1080")
    server = XServer(size)
    yield server
    server.stop()


def _config(tmp_path, screen_action="blur"):
    path = tmp_path / "config.toml"
    path.write_text(f'[agent]\ndata_dir = "{tmp_path / "data"}"\n'
                    f'[profiles.child]\nactions = {{ folder = "quarantine", screen = "{screen_action}", video = "quarantine" }}\n'
                    f'[[watch]]\npath = "{tmp_path / "none"}"\n[screen]\ninterval_s = 0.5\nmax_interval_s = 2.0\n')
    return path


def _stays(condition, seconds):
    """True if ``condition`` holds at every look for ``seconds`` (the overlay hides ~0.1 s per sample)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(0.05)
    return True


def _screen_rows(tmp_path):
    return [r for r in audit_of(tmp_path / "data") if r["source"] == "screen"]


def test_canary_window_is_covered_then_uncovered(tmp_path, xserver):
    agent = Agent(_config(tmp_path), env=xserver.env)
    try:
        assert any("screen: 1 monitor" in line for line in agent.lines), agent.lines
        viewer = xserver.show("640x480+300+200", CANARY)
        assert wait_until(lambda: xserver.mapped_overlays() == 1, 10), xserver.window_classes()
        for _ in range(3):  # the overlay, sampled under, must hold while the picture is there
            time.sleep(1)
            assert wait_until(lambda: xserver.mapped_overlays() == 1, 1, every=0.05)  # (hidden ~0.1 s per sample)
        xserver.close(viewer)
        assert wait_until(lambda: _stays(lambda: xserver.mapped_overlays() == 0, 1.0), 15)
        for _ in range(30):  # its own blurred picture must not start another episode
            time.sleep(0.1)
            assert xserver.mapped_overlays() == 0
    finally:
        agent.stop()
    rows = _screen_rows(tmp_path)
    assert len(rows) == 1 and rows[0]["subject"] == "screen:1" and rows[0]["action"] == "blur"
    assert "content gone" in rows[0]["detail"] and float(rows[0]["malign"]) >= 0.3
    assert verify(tmp_path / "data" / "audit" / "audit.csv").ok


def test_benign_pictures_changing_on_screen_are_left_alone(tmp_path, xserver):
    photos = [PHOTOS / n for n in ("scikit-coffee.jpg", "scikit-chelsea.jpg", "plasma-autumn.jpg", "lomiri-bridge_by_sander_klootwijk.jpg")]
    agent = Agent(_config(tmp_path), env=xserver.env)
    try:
        movie = xserver.show("800x600+100+100", *photos, every=0.4)  # a moving benign "video"
        for _ in range(60):
            time.sleep(0.1)
            assert xserver.mapped_overlays() == 0
        assert _screen_rows(tmp_path) == []
        xserver.close(movie)
        # the control: the same agent, still sampling, does cover a canary
        xserver.show("640x480+300+200", CANARY)
        assert wait_until(lambda: xserver.mapped_overlays() == 1, 10)
    finally:
        agent.stop()
    assert len(_screen_rows(tmp_path)) == 1  # the control's episode, closed at stop


@pytest.mark.parametrize("xserver", ["3840x2160"], indirect=True)
def test_small_picture_in_a_corner_of_a_4k_screen_is_caught(tmp_path, xserver):
    agent = Agent(_config(tmp_path, screen_action="log"), env=xserver.env)
    try:
        time.sleep(1.5)
        viewer = xserver.show("300x300+3500+1820", CANARY)  # 1/92 of the screen, bottom right
        time.sleep(4)
        assert xserver.mapped_overlays() == 0  # action log: nothing on screen
        xserver.close(viewer)
        assert wait_until(lambda: len(_screen_rows(tmp_path)) == 1, 15)
    finally:
        agent.stop()
    rows = _screen_rows(tmp_path)
    assert len(rows) == 1 and rows[0]["action"] == "log" and "peak" in rows[0]["detail"]


def test_nothing_about_the_screen_is_written(tmp_path, xserver):
    agent = Agent(_config(tmp_path), env=xserver.env)
    try:
        viewer = xserver.show("640x480+0+0", CANARY)
        assert wait_until(lambda: xserver.mapped_overlays() == 1, 10)
        xserver.close(viewer)
        assert wait_until(lambda: _stays(lambda: xserver.mapped_overlays() == 0, 1.0), 15)
    finally:
        agent.stop()
    image_magic = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF", b"BM")
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert not path.read_bytes()[:4].startswith(image_magic), path
            assert path.suffix not in (".png", ".jpg", ".bmp", ".ppm"), path


def _windows_of(xserver, klass: str) -> list[str]:
    found = subprocess.run(["xdotool", "search", "--onlyvisible", "--class", klass], env=xserver.env,
                           capture_output=True, text=True, timeout=10)
    return found.stdout.split()


def _overlay_geometries(xserver) -> list[tuple[int, int, int, int]]:
    """``(x, y, w, h)`` of each visible overlay window, as the X server has it (xdotool)."""
    geometries = []
    for window in _windows_of(xserver, "veil-overlay"):
        shown = subprocess.run(["xdotool", "getwindowgeometry", "--shell", window], env=xserver.env,
                               capture_output=True, text=True, timeout=10).stdout
        values = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
        if {"X", "Y", "WIDTH", "HEIGHT"} <= values.keys():
            geometries.append((int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])))
    return geometries


def _covers(outer, left, top, width, height) -> bool:
    x, y, w, h = outer
    return x <= left and y <= top and left + width <= x + w and top + height <= y + h


WHOLE = (0, 0, 1920, 1080)


def test_a_picture_in_a_window_is_covered_not_the_whole_screen(tmp_path, xserver):
    """The cover is the flagged window plus a margin: the rest of the screen stays usable."""
    agent = Agent(_config(tmp_path), env=xserver.env)
    try:
        viewer = xserver.show("640x480+300+200", CANARY)
        assert wait_until(lambda: len(_overlay_geometries(xserver)) == 1, 10), xserver.window_classes()
        [cover] = _overlay_geometries(xserver)
        assert _covers(cover, 300, 200, 640, 480), cover
        x, y, w, h = cover
        assert w * h < 0.5 * 1920 * 1080 and w <= 640 * 1.3 and h <= 480 * 1.3, cover
        xserver.close(viewer)
        assert wait_until(lambda: _stays(lambda: xserver.mapped_overlays() == 0, 1.0), 15)
    finally:
        agent.stop()
    assert len(_screen_rows(tmp_path)) == 1


def test_dragging_the_flagged_window_out_of_its_cover_covers_the_whole_screen(tmp_path, xserver):
    """What a child tries: move the window from under the cover. The next sample covers the
    whole monitor until the picture is gone."""
    agent = Agent(_config(tmp_path), env=xserver.env)
    try:
        viewer = xserver.show("640x480+300+200", CANARY)
        assert wait_until(lambda: len(_overlay_geometries(xserver)) == 1 and _overlay_geometries(xserver) != [WHOLE], 10)
        [window] = _windows_of(xserver, "veil-test-viewer")
        subprocess.run(["xdotool", "windowmove", window, "1200", "560"], env=xserver.env, timeout=10, check=True)
        assert wait_until(lambda: _overlay_geometries(xserver) == [WHOLE], 5), _overlay_geometries(xserver)
        assert _stays(lambda: _overlay_geometries(xserver) in ([WHOLE], []), 2.0)
        xserver.close(viewer)
        assert wait_until(lambda: _stays(lambda: xserver.mapped_overlays() == 0, 1.0), 15)
    finally:
        agent.stop()
    assert len(_screen_rows(tmp_path)) == 1  # one episode, not one per move


def test_an_overlay_resized_from_outside_covers_the_picture_again(tmp_path, xserver):
    """``xdotool windowsize`` on the overlay (what a child tries) uncovers the picture for one
    sample at most: the overlay re-asserts its geometry and stacking at every sample."""
    agent = Agent(_config(tmp_path), env=xserver.env)
    try:
        viewer = xserver.show("640x480+300+200", CANARY)
        assert wait_until(lambda: len(_overlay_geometries(xserver)) == 1, 10)
        [cover] = _overlay_geometries(xserver)
        for window in _windows_of(xserver, "veil-overlay"):
            subprocess.run(["xdotool", "windowsize", window, "40", "40"], env=xserver.env, timeout=10)
            subprocess.run(["xdotool", "windowmove", window, "1800", "1000"], env=xserver.env, timeout=10)
        assert wait_until(lambda: _overlay_geometries(xserver) == [cover], 5), _overlay_geometries(xserver)
        assert wait_until(lambda: _stays(lambda: _overlay_geometries(xserver) in ([cover], []), 2.0), 5)
        xserver.close(viewer)
    finally:
        agent.stop()


def test_a_picture_the_parent_blocked_is_covered_on_screen(tmp_path, xserver):
    """The model passes this photo; blocked by the parent (``veil block``), it is covered when a
    window shows it scaled, and another photo beside it is not."""
    from tests.agent_process import run_veil

    coffee, cat = PHOTOS / "scikit-coffee.jpg", PHOTOS / "scikit-chelsea.jpg"
    config = _config(tmp_path)
    blocked = run_veil("block", str(coffee), "--config", str(config))
    assert blocked.returncode == 0, blocked.stderr
    agent = Agent(config, env=xserver.env)
    try:
        xserver.show("700x400+1100+100", cat)
        time.sleep(2)
        assert xserver.mapped_overlays() == 0
        viewer = xserver.show("600x400+200+300", coffee)
        assert wait_until(lambda: xserver.mapped_overlays() == 1, 10)
        xserver.close(viewer)
        assert wait_until(lambda: _stays(lambda: xserver.mapped_overlays() == 0, 1.0), 15)
    finally:
        agent.stop()
    [row] = _screen_rows(tmp_path)
    assert "(blocked by the parent's correction #1)" in row["detail"]
