"""The tray app on a real X server (Xvfb) with a real system tray (Debian's trayer), driven with
real pointer clicks and key presses (xdotool): the icon docks and shows the state, the menu's
entries drive the App, the PIN dialog refuses a wrong PIN (audited) and accepts the right one.

The first tests run the tray in the test's process, on a real App, so they can ask Tk where a
menu entry or button is before clicking it there; the last runs ``veil run`` as users do.
"""

from __future__ import annotations

import faulthandler
import hashlib
import shutil
import signal
import tempfile
import threading
import time

import numpy as np
import pytest

from agent.app import App
from agent.config import load_config
from agent.tray.icon import TrayIcon
from agent.tray.icons import STATE_COLOURS
from tests.agent_process import Agent, audit_of, run_veil, wait_until, write_config
from tests.conftest import PHOTOS
from tests.media import child_flagged_canaries
from tests.xserver import XServer

PIN = "246824"
CANARY = child_flagged_canaries()[5]
PHOTO = PHOTOS / "scikit-coffee.jpg"


@pytest.fixture
def desktop(monkeypatch):
    server = XServer("1280x800")
    server.start_tray_host()
    monkeypatch.setenv("DISPLAY", server.display)  # for the tray run in this process
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    yield server
    server.stop()


@pytest.fixture
def watched(tmp_path):
    folder = tmp_path / "Downloads"
    folder.mkdir()
    config = write_config(tmp_path, [folder])
    result = run_veil("pin", "set", "--config", str(config), env={"VEIL_PIN": PIN})
    assert result.returncode == 0, result.stderr
    return folder, config, tmp_path / "data"


class RunningTray:
    """A started App with its tray icon, in this process."""

    def __init__(self, config):
        self.app = App(load_config(config))
        self.app.start()
        self.quits: list[str] = []
        self.said: list[str] = []
        self.stop = threading.Event()
        self.tray = TrayIcon(self.app, quit=self._quit, about=self.app.about, say=self.said.append)
        self.thread = threading.Thread(target=self.tray.run, args=(self.stop,), name="test-tray")
        self.thread.start()

    def _quit(self, why: str) -> None:
        self.quits.append(why)
        self.stop.set()

    def close(self, reason: str = "test over") -> None:
        self.stop.set()
        self.thread.join(20)
        hung, threads = self.thread.is_alive(), ""
        if hung:  # stop Tk anyway: Tk's X library ends the whole process when its server goes
            self.tray.ui.stop()
            with tempfile.TemporaryFile("w+") as dump:
                faulthandler.dump_traceback(dump)
                dump.seek(0)
                threads = dump.read()
        self.tray.controls.wait(5)
        self.app.stop(reason)
        assert not hung, f"the tray did not stop; the tray said {self.said}; threads:\n{threads}"


@pytest.fixture
def running(desktop, watched):
    tray = RunningTray(watched[1])
    if not wait_until(lambda: (icon := desktop.tray_icon()) is not None and icon.docked, 20):
        tray.close()  # before the X server goes: Tk's X library ends the process when its server vanishes
        pytest.fail(f"the icon did not dock: {desktop.tray_icon()}; the tray said {tray.said}")
    yield tray
    if tray.app.started:
        tray.close()


def _on_tk(tray: RunningTray, action):
    return tray.tray.ui.call(action)


def _entry_point(menu, label: str) -> tuple[int, int]:
    index = menu.index(label)
    return menu.winfo_rootx() + 40, menu.winfo_rooty() + menu.yposition(index) + 8


def _click_until(server: XServer, point: tuple[int, int], done, what: str) -> None:
    """Click until ``done``: on a loaded machine a click can land before Tk has drawn the menu
    under it, as a person's would; they click again."""
    for _ in range(3):
        server.click(*point)
        if wait_until(done, 4):
            return
    raise AssertionError(what)


def choose(server: XServer, tray: RunningTray, *labels: str) -> None:
    """Click the tray icon, then the menu entries named (a submenu's entry after its parent)."""
    def mapped(menu) -> bool:
        return _on_tk(tray, lambda: menu is not None and bool(menu.winfo_exists()) and bool(menu.winfo_ismapped()))

    _click_until(server, server.tray_icon().centre, lambda: mapped(tray.tray.prompts.menu), "the menu did not open")
    top = menu = _on_tk(tray, lambda: tray.tray.prompts.menu)
    for depth, label in enumerate(labels):
        point = _on_tk(tray, lambda menu=menu, label=label: _entry_point(menu, label))
        if depth + 1 < len(labels):
            menu = _on_tk(tray, lambda menu=menu, label=label: menu.nametowidget(menu.entrycget(label, "menu")))
            _click_until(server, point, lambda menu=menu: mapped(menu), f"the {label} submenu did not open")
        else:  # choosing an entry closes the menu before its action runs
            _click_until(server, point, lambda: not mapped(top), f"{label} was not chosen")


def type_into_chooser(server: XServer, chooser: str, path, chosen, enters: int = 1) -> None:
    """Type ``path`` into Tk's file or folder chooser (window class ``chooser``) and press Return
    ``enters`` times (a folder chooser goes into the folder, then chooses it), until ``chosen()``.
    Keys typed before Tk has put its entry in place are lost, as a person's would be: they type
    again, over what the entry holds."""
    assert wait_until(lambda: server.mapped(chooser) == 1, 10), f"no {chooser}"
    assert wait_until(lambda: server.focused_class() == chooser, 10), f"the {chooser} did not take the keyboard"
    for _ in range(3):
        server.key("ctrl+slash")  # Tk's "select all" in an entry: the typing replaces it
        server.type(str(path))
        for n in range(enters):
            if n:
                time.sleep(0.5)
            server.key("Return")
        if wait_until(chosen, 5):
            return
    raise AssertionError(f"{path} was not chosen in the {chooser}")


def enter_pin(server: XServer, pin: str) -> None:
    assert wait_until(lambda: server.mapped("veil-pin") == 1, 10), "no PIN dialog"
    assert wait_until(lambda: server.focused_class() == "veil-pin", 10), "the PIN dialog did not take the keyboard"
    server.type(pin)
    server.key("Return")


def icon_state(server: XServer) -> str:
    """Which state colour the icon's pixels on the screen are nearest to."""
    icon = server.tray_icon()
    if icon is None:
        return ""  # missed in a moment of window churn: the caller looks again
    pixels = server.pixels(icon.x, icon.y, icon.width, icon.height).reshape(-1, 3).astype(int)
    coloured = pixels[(pixels.max(axis=1) > 60) & (pixels.min(axis=1) < 200)]  # neither the black ground nor the white mark
    if len(coloured) == 0:
        return ""  # not painted yet
    mean = coloured.mean(axis=0)
    return min(STATE_COLOURS, key=lambda state: np.abs(mean - np.array(STATE_COLOURS[state])).sum())


def title(server: XServer) -> str:
    icon = server.tray_icon()
    return icon.title if icon is not None else ""


def agent_rows(data, event: str) -> list[dict[str, str]]:
    return [r for r in audit_of(data) if r["source"] == "agent" and r["subject"] == event]


def test_pin_guards_pause_profile_and_quit_and_the_menu_drives_the_app(desktop, watched, running):
    _folder, config, data = watched
    app = running.app
    assert wait_until(lambda: title(desktop) == "Veil — protecting (child)", 5)
    assert wait_until(lambda: icon_state(desktop) == "protecting", 5)

    # a wrong PIN is refused and audited; the right one pauses
    choose(desktop, running, "Pause for 15 minutes")
    enter_pin(desktop, "1111")
    assert wait_until(lambda: len(agent_rows(data, "pin-failed")) == 1, 10)
    assert app.status().state == "protecting"
    enter_pin(desktop, PIN)  # the dialog asks again, saying the PIN was wrong
    assert wait_until(lambda: app.status().state == "paused", 10)
    assert "with the PIN" in agent_rows(data, "pause")[0]["detail"]
    assert wait_until(lambda: title(desktop).startswith("Veil — paused until "), 5)
    assert wait_until(lambda: icon_state(desktop) == "paused", 5)

    # resuming adds protection: no PIN asked
    choose(desktop, running, "Resume protection")
    assert wait_until(lambda: app.status().state == "protecting", 10)
    assert desktop.mapped("veil-pin") == 0
    assert wait_until(lambda: icon_state(desktop) == "protecting", 5)

    # profile change from the submenu, with the PIN
    choose(desktop, running, "Profile", "adult")
    enter_pin(desktop, PIN)
    assert wait_until(lambda: app.profile.name == "adult", 10)
    assert agent_rows(data, "profile")[0]["detail"] == "child -> adult; from the tray with the PIN"
    assert wait_until(lambda: title(desktop) == "Veil — protecting (adult)", 5)

    # quit: cancelling the PIN dialog leaves Veil running; the right PIN quits
    choose(desktop, running, "Quit Veil")
    assert wait_until(lambda: desktop.mapped("veil-pin") == 1, 10)
    desktop.key("Escape")
    assert wait_until(lambda: desktop.mapped("veil-pin") == 0, 5)
    running.tray.controls.wait(5)
    assert running.quits == [] and not running.stop.is_set()
    choose(desktop, running, "Quit Veil")
    enter_pin(desktop, PIN)
    assert wait_until(lambda: running.quits == ["quit (from the tray with the PIN)"], 10)
    running.close(running.quits[0])
    assert wait_until(lambda: desktop.tray_icon() is None, 5), "the icon outlived the tray"

    # the next start audits the gap with the reason
    again = App(load_config(config))
    again.start()
    again.stop("test over")
    gaps = agent_rows(data, "gap")
    assert len(gaps) == 1 and "quit (from the tray with the PIN)" in gaps[0]["detail"]
    assert len(agent_rows(data, "pin-failed")) == 1


def test_blocked_file_turns_the_icon_red_and_restore_from_the_quarantine_window(desktop, watched, running):
    folder, _config, data = watched
    original = folder / "picture.jpg"
    shutil.copyfile(CANARY, original)
    assert wait_until(lambda: not original.exists() and len(list((data / "quarantine").glob("*.veil"))) == 1, 30)
    assert wait_until(lambda: title(desktop) == "Veil — blocked just now (child)", 5)
    assert wait_until(lambda: icon_state(desktop) == "blocked", 5)

    choose(desktop, running, "Open quarantine…")
    enter_pin(desktop, PIN)
    assert wait_until(lambda: desktop.mapped("veil-quarantine") == 1, 10)

    def widgets():
        window = next(w for w in running.tray.ui.root.winfo_children() if w.winfo_class() == "veil-quarantine")
        listing = next(w for w in window.winfo_children() if w.winfo_class() == "Listbox")
        buttons = next(w for w in window.winfo_children() if w.winfo_class() == "Frame")
        restore = next(b for b in buttons.winfo_children() if b.cget("text") == "Restore")
        x, y, _w, h = listing.bbox(0)
        row = (listing.winfo_rootx() + x + 10, listing.winfo_rooty() + y + h // 2)
        button = (restore.winfo_rootx() + restore.winfo_width() // 2, restore.winfo_rooty() + restore.winfo_height() // 2)
        return listing.get(0), row, button

    line, row, button = _on_tk(running, widgets)
    assert line.endswith(str(original))
    desktop.click(*row)
    desktop.click(*button)
    assert wait_until(original.exists, 10)
    assert hashlib.sha256(original.read_bytes()).digest() == hashlib.sha256(CANARY.read_bytes()).digest()
    # restoring with the PIN is a parent's decision: the watching agent leaves the file be
    assert wait_until(lambda: running.app.state.lookup(original).decision == "allowed", 10)
    assert original.exists() and not list((data / "quarantine").glob("*.veil"))
    restores = [r for r in audit_of(data) if r["action"] == "restore"]
    assert len(restores) == 1 and restores[0]["subject"] == str(original) and "with the PIN" in restores[0]["detail"]

    # the audit window shows the chain's state and the rows
    choose(desktop, running, "Open audit log…")
    assert wait_until(lambda: desktop.mapped("veil-text") == 1, 10)
    text = _on_tk(running, lambda: next(c for w in running.tray.ui.root.winfo_children() if w.winfo_class() == "veil-text"
                                        for c in w.winfo_children() if c.winfo_class() == "Text").get("1.0", "end"))
    assert text.startswith(f"{data / 'audit' / 'audit.csv'}: hash chain intact (") and "restored from vault entry" in text

    # the week's report, written to the data dir and handed to the default browser (here, a recorder)
    opened: list[str] = []
    running.tray.controls.open_page = lambda url: opened.append(url) or True
    choose(desktop, running, "Open report…")
    assert wait_until(lambda: opened == [(data / "report.html").as_uri()], 15), opened
    page = (data / "report.html").read_text()
    assert "The audit log is intact" in page and "The quarantine is empty." in page  # restored above
    assert 'id="mark-blocked-0"' in page and 'id="mark-blocked-1"' not in page  # one flagged file, today


def test_veil_run_without_a_tray_says_so_once_docks_when_one_appears_and_a_kill_leaves_a_gap(tmp_path):
    server = XServer("1280x800")
    try:
        folder = tmp_path / "Downloads"
        folder.mkdir()
        config = write_config(tmp_path, [folder])
        data = tmp_path / "data"
        agent = Agent(config, env=server.env, tray=True)
        try:
            assert wait_until(lambda: any(line.startswith("veil: tray: unavailable (no system tray") for line in agent.lines), 15)
            server.start_tray_host()
            assert wait_until(lambda: (icon := server.tray_icon()) is not None and icon.docked, 20), agent.lines
            # no PIN yet: the icon asks for one, and the setup window opens by itself
            assert wait_until(lambda: title(server) == "Veil — set a PIN to lock the controls", 5)
            assert wait_until(lambda: icon_state(server) == "unlocked", 5)
            assert wait_until(lambda: server.mapped("veil-setup") == 1, 10)
            assert sum("tray: unavailable" in line for line in agent.lines) == 1
            assert agent.proc.poll() is None
        finally:
            assert agent.kill() == -signal.SIGKILL
        assert wait_until(lambda: server.tray_icon() is None, 5)

        again = Agent(config, env=server.env, tray=True)  # as the service manager restarts it
        try:
            assert wait_until(lambda: (icon := server.tray_icon()) is not None and icon.docked, 20), again.lines
        finally:
            assert again.stop() == 0
        gaps = [r for r in audit_of(data) if r["subject"] == "gap"]
        assert len(gaps) == 1 and ": killed" in gaps[0]["detail"]
        assert any(line == "veil: stopped: quit (SIGTERM)" for line in again.lines)
    finally:
        server.stop()


def test_no_display_means_no_tray_and_the_agent_runs_on(tmp_path):
    folder = tmp_path / "Downloads"
    folder.mkdir()
    agent = Agent(write_config(tmp_path, [folder]), env={"DISPLAY": "", "WAYLAND_DISPLAY": ""}, tray=True)
    try:
        assert wait_until(lambda: any("tray: unavailable (no X display)" in line for line in agent.lines), 10), agent.lines
        shutil.copyfile(CANARY, folder / "x.jpg")
        assert wait_until(lambda: not (folder / "x.jpg").exists(), 30)
    finally:
        assert agent.stop() == 0


def test_native_menu_for_trays_that_have_menus_matches_and_runs_the_same_entries(desktop, watched, running):
    """Windows, macOS and AppIndicator desktops get the menu as pystray items: same labels, states
    and actions as the Tk pop-up (checked here on pystray's own Menu objects)."""
    tray = running.tray
    entries = tray._entries()
    menu = tray._native_menu(entries)
    items = [item for item in menu.items if item is not menu.SEPARATOR]
    assert [item.text for item in items] == [e.label for e in entries]
    assert [item.enabled for item in items] == [e.enabled for e in entries]
    profiles = next(item for item in items if item.text == "Profile").submenu
    assert [(item.text, item.checked) for item in profiles.items] == [("child", True), ("teen", False), ("adult", False)]
    about = next(item for item in items if item.text == "About Veil…")
    about(None)  # as pystray calls an item when it is chosen
    assert wait_until(lambda: desktop.mapped("veil-text") == 1, 10)
    teen = next(item for item in profiles.items if item.text == "teen")
    teen(None)
    enter_pin(desktop, PIN)
    assert wait_until(lambda: running.app.profile.name == "teen", 10)


def test_closing_while_the_pin_dialog_waits_pauses_nothing(desktop, watched, running):
    running.tray.controls.pause(60)  # as the menu entry does
    assert wait_until(lambda: desktop.mapped("veil-pin") == 1, 10)
    running.close("quit (SIGTERM)")  # e.g. the service manager stops Veil meanwhile
    assert desktop.mapped("veil-pin") == 0
    assert not running.tray.controls._thread.is_alive()
    assert not agent_rows(watched[2], "pause")


def test_closing_while_the_folder_chooser_is_open_stops_at_once(desktop, watched, running):
    """Tk's chooser runs a nested event loop; a stop (logout, SIGTERM) must end it, not hang."""
    running.tray.controls.scan_folder()  # as the menu entry does
    assert wait_until(lambda: desktop.mapped("TkChooseDir") == 1, 10)
    running.close("quit (SIGTERM)")  # asserts the tray thread ended
    assert desktop.mapped("TkChooseDir") == 0
    assert not running.tray.controls._thread.is_alive()
    assert running.app.status().last_event == ""  # nothing was scanned


def test_scanning_a_folder_chosen_in_the_chooser_acts_like_a_watched_one(tmp_path, watched, desktop, running):
    """"Scan a folder…": Tk's folder chooser gets the keyboard, a path typed into it is scanned."""
    other = tmp_path / "usb-stick"
    (other / "deeper").mkdir(parents=True)
    shutil.copyfile(CANARY, other / "deeper" / "c.png")
    shutil.copyfile(PHOTO, other / "photo.jpg")
    choose(desktop, running, "Scan a folder…")
    type_into_chooser(desktop, "TkChooseDir", other, lambda: desktop.mapped("TkChooseDir") == 0, enters=2)
    assert wait_until(lambda: desktop.mapped("veil-note") == 1, 10), "no word on the scan"
    assert wait_until(lambda: not (other / "deeper" / "c.png").exists(), 30)
    assert wait_until(lambda: running.app.state.lookup(other / "photo.jpg") is not None, 10)
    assert (other / "photo.jpg").read_bytes() == PHOTO.read_bytes()
    # the file goes into the vault a moment before the status hears of it
    assert wait_until(lambda: running.app.status().last_event.endswith("c.png: malign, quarantine"), 10)


def test_the_quarantine_window_closes_when_idle_and_drops_the_key(desktop):
    """Left open and unused, the quarantine window (which holds the unlocked vault key) closes
    by itself and hands the key back to be forgotten; a restore after that is refused."""
    from agent.tray.dialogs import TkPrompts
    from agent.ui import TkThread

    ui = TkThread("veil-test-dialogs")
    ui.start()
    try:
        forgotten = threading.Event()
        TkPrompts(ui).show_quarantine([("ab12", "a quarantined file")], lambda entry_id: "restored", forget=forgotten.set,
                                      idle_s=2.0)
        assert wait_until(lambda: desktop.mapped("veil-quarantine") == 1, 10)
        assert not forgotten.wait(1.0)  # still open a second in
        assert forgotten.wait(10)
        assert wait_until(lambda: desktop.mapped("veil-quarantine") == 0, 5)
    finally:
        ui.stop()


def _setup_window(tray: RunningTray):
    return next(w for w in tray.tray.ui.root.winfo_children() if w.winfo_class() == "veil-setup")


def _widgets(window, kind: str) -> list:
    found, stack = [], list(window.winfo_children())
    while stack:
        widget = stack.pop(0)
        if widget.winfo_class() == kind:
            found.append(widget)
        stack.extend(widget.winfo_children())
    return found


def _centre_of(widget) -> tuple[int, int]:
    return widget.winfo_rootx() + widget.winfo_width() // 2, widget.winfo_rooty() + widget.winfo_height() // 2


def test_first_run_setup_window_sets_the_pin_profile_folders_and_screen(tmp_path, desktop):
    """No PIN: the icon is blue and asks for one, and the setup window opens by itself. Driven with
    real keys and clicks: a mistyped PIN is refused in the window, then the PIN, the teen profile,
    a folder added with the chooser and the old one removed, the screen on — written to the config
    file (comments kept) and audited; the icon turns green and "Change PIN…" asks for the PIN."""
    from agent.config import example_text

    old, new = tmp_path / "Downloads", tmp_path / "Pictures"
    old.mkdir()
    new.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(example_text().replace('data_dir = ""', f'data_dir = "{tmp_path / "data"}"', 1)
                      .replace('path = "~/Downloads"', f'path = "{old}"', 1).replace("[screen]\nenabled = true", "[screen]\nenabled = false"))
    tray = RunningTray(config)
    try:
        assert wait_until(lambda: (icon := desktop.tray_icon()) is not None and icon.docked, 20)
        assert wait_until(lambda: title(desktop) == "Veil — set a PIN to lock the controls", 5)
        assert wait_until(lambda: icon_state(desktop) == "unlocked", 5)
        assert wait_until(lambda: desktop.mapped("veil-setup") == 1, 10), "no setup window at first start"
        assert wait_until(lambda: desktop.focused_class() == "veil-setup", 10), "the setup window did not take the keyboard"

        desktop.type(PIN)
        desktop.key("Tab")
        desktop.type("246825")  # a slip of the finger
        desktop.key("Return")
        note = lambda: _on_tk(tray, lambda: [w.cget("text") for w in _widgets(_setup_window(tray), "Label") if w.cget("fg") == "#b00020"])  # noqa: E731
        assert wait_until(lambda: "The two PINs differ." in note(), 5), note()
        assert not tray.app.pin_set and "246824" not in config.read_text()
        for _ in range(6):
            desktop.key("BackSpace")
        desktop.type(PIN)

        teen = _on_tk(tray, lambda: _centre_of(next(r for r in _widgets(_setup_window(tray), "Radiobutton") if r.cget("value") == "teen")))
        desktop.click(*teen)
        screen = _on_tk(tray, lambda: _centre_of(_widgets(_setup_window(tray), "Checkbutton")[0]))
        desktop.click(*screen)
        add = _on_tk(tray, lambda: _centre_of(next(b for b in _widgets(_setup_window(tray), "Button") if b.cget("text") == "Add…")))
        desktop.click(*add)
        type_into_chooser(desktop, "TkChooseDir", new, lambda: desktop.mapped("TkChooseDir") == 0, enters=2)
        listed = lambda: _on_tk(tray, lambda: list(_widgets(_setup_window(tray), "Listbox")[0].get(0, "end")))  # noqa: E731
        assert wait_until(lambda: listed() == [str(old), str(new)], 5), listed()

        def first_row_and_remove():
            window = _setup_window(tray)
            listing = _widgets(window, "Listbox")[0]
            x, y, _w, h = listing.bbox(0)
            remove = next(b for b in _widgets(window, "Button") if b.cget("text") == "Remove")
            return (listing.winfo_rootx() + x + 10, listing.winfo_rooty() + y + h // 2), _centre_of(remove)

        row, remove = _on_tk(tray, first_row_and_remove)
        desktop.click(*row)
        desktop.click(*remove)
        assert wait_until(lambda: listed() == [str(new)], 5), listed()
        save = _on_tk(tray, lambda: _centre_of(next(b for b in _widgets(_setup_window(tray), "Button") if b.cget("text") == "Save")))
        desktop.click(*save)
        assert wait_until(lambda: desktop.mapped("veil-setup") == 0, 20), note()
        assert wait_until(lambda: desktop.mapped("veil-note") == 1, 10)

        assert tray.app.pin_set and tray.app.profile.name == "teen"
        text = config.read_text()
        assert "# active profile: child, teen, adult, or one of yours below" in text  # comments kept
        import tomllib

        written = tomllib.loads(text)
        assert written["agent"]["profile"] == "teen" and written["screen"]["enabled"] is True
        assert [w["path"] for w in written["watch"]] == [str(new)]
        rows = [r["detail"] for r in agent_rows(tmp_path / "data", "config")]
        assert "PIN set" in rows and any(r.startswith("setup (tray): profile teen; watching ") for r in rows)
        assert wait_until(lambda: title(desktop) == "Veil — protecting (teen)", 10)
        assert wait_until(lambda: icon_state(desktop) == "protecting", 5)

        def note_text_and_ok():  # read in the Tk thread: a Tk object must never reach this one
            window = next(w for w in tray.tray.ui.root.winfo_children() if w.winfo_class() == "veil-note")
            return _widgets(window, "Label")[0].cget("text"), _centre_of(_widgets(window, "Button")[0])

        said, ok = _on_tk(tray, note_text_and_ok)
        assert said.startswith(f"Saved to {config}."), said
        desktop.click(*ok)
        assert wait_until(lambda: desktop.mapped("veil-note") == 0, 10)

        # afterwards the same window is behind the PIN
        choose(desktop, tray, "Change PIN…")
        enter_pin(desktop, PIN)
        assert wait_until(lambda: desktop.mapped("veil-setup") == 1, 10)
    finally:
        tray.close()


def test_always_block_a_picture_from_the_tray(tmp_path, watched, desktop, running):
    """"Always block a picture…": Tk's file chooser, the PIN, and a re-saved copy arriving later is quarantined."""
    from PIL import Image

    folder, _config, data = watched
    choose(desktop, running, "Always block a picture…")
    type_into_chooser(desktop, "TkFDialog", PHOTO, lambda: desktop.mapped("veil-pin") == 1)
    enter_pin(desktop, PIN)
    assert wait_until(lambda: desktop.mapped("veil-note") == 1, 10)
    blocks = [r["detail"] for r in agent_rows(data, "config") if r["detail"].startswith("blocked by picture #1")]
    assert blocks and blocks[0].endswith(": scikit-coffee.jpg")
    with Image.open(PHOTO) as image:
        image.convert("RGB").resize((image.width * 2 // 3, image.height * 2 // 3)).save(folder / "coffee.png")
    assert wait_until(lambda: not (folder / "coffee.png").exists(), 30)
