"""What the tray shows for a given agent status: state, title, menu entries, icon pictures."""

import time

import numpy as np

from agent.facade import Status
from agent.tray.icons import STATE_COLOURS, STATES, state_icon
from agent.tray.menu import BLOCKED_SHOW_S, build_menu, tray_state, tray_title
from agent.tray.xembed import latin1


def status(**changes):
    return Status(**{"state": "protecting", "profile": "child", "profiles": ("child", "teen", "adult"),
                     "watching": ("/home/ana/Downloads",), **changes})


class Recorder:
    """Stands in for Controls: records which entry ran (the real one is driven in tests/integration/test_tray.py)."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


def test_state_follows_the_status_and_blocked_fades():
    now = time.time()
    assert tray_state(status(), now) == "protecting"
    assert tray_state(status(state="paused", paused_until=now + 60), now) == "paused"
    assert tray_state(status(last_flag_at=now - 5), now) == "blocked"
    assert tray_state(status(last_flag_at=now - BLOCKED_SHOW_S - 1), now) == "protecting"
    assert tray_state(status(state="failed", failure="model gone", last_flag_at=now), now) == "error"
    trouble = "2 files not handled yet (cannot write the audit log: disk full); trying again"
    assert tray_state(status(trouble=trouble, last_flag_at=now), now) == "error"  # unprotected files outrank a block
    assert tray_state(status(state="paused", paused_until=now + 60, trouble=trouble), now) == "paused"


def test_titles_start_with_veil_and_name_the_profile():
    paused_until = time.mktime((2026, 11, 22, 14, 5, 0, 0, 0, -1))
    assert tray_title(status(), "protecting") == "Veil — protecting (child)"
    assert tray_title(status(state="paused", paused_until=paused_until), "paused") == "Veil — paused until 14:05 (child)"
    assert tray_title(status(), "blocked") == "Veil — blocked just now (child)"
    assert tray_title(status(failure="workers crashed"), "error") == "Veil — not protecting: workers crashed (child)"
    assert tray_title(status(trouble="1 file not handled yet; trying again"), "error") == \
        "Veil — trouble: 1 file not handled yet; trying again (child)"


def test_menu_entries_run_their_controls():
    controls = Recorder()
    entries = build_menu(status(), controls, home="/home/ana")
    labels = [e.label for e in entries]
    assert labels[0] == "Veil: protecting (child)"
    assert labels[1] == "Watching ~/Downloads; screen: off"
    assert not any(e.enabled for e in entries[:3]) and all(e.action is None for e in entries[:3])
    by_label = {e.label: e for e in entries}
    assert not by_label["Resume protection"].enabled  # nothing to resume
    for label in ("Pause for 15 minutes", "Pause for 1 hour", "Scan a folder…", "Open quarantine…", "Open audit log…",
                  "About Veil…", "Quit Veil"):
        by_label[label].action()
    profiles = by_label["Profile"].children
    assert [(p.label, p.checked) for p in profiles] == [("child", True), ("teen", False), ("adult", False)]
    profiles[2].action()
    assert controls.calls == [("pause", 15), ("pause", 60), ("scan_folder",), ("open_quarantine",), ("open_audit_log",),
                              ("about",), ("quit",), ("set_profile", "adult")]


def test_paused_menu_offers_resume():
    entries = build_menu(status(state="paused", paused_until=time.time() + 900), Recorder())
    assert {e.label: e for e in entries}["Resume protection"].enabled


def test_icons_differ_by_colour_and_mark():
    pictures = {state: np.asarray(state_icon(state, 32)) for state in STATES}
    for state, picture in pictures.items():
        assert picture.shape == (32, 32, 4)
        opaque = picture[picture[:, :, 3] == 255][:, :3].astype(int)
        share = (np.abs(opaque - STATE_COLOURS[state]).sum(axis=1) < 30).mean()
        assert share > 0.5, state  # mostly the state's colour...
        assert (opaque.min(axis=1) > 230).any(), state  # ...with a white mark
    masks = {state: (p[:, :, :3].min(axis=2) > 230) for state, p in pictures.items()}
    assert len({m.tobytes() for m in masks.values()}) == len(STATES)  # each mark its own shape


def test_x11_titles_stay_readable_in_latin1():
    assert latin1("Veil — paused until 14:05 (child)") == "Veil - paused until 14:05 (child)"
    latin1("Veil — ✓ …").encode("latin-1")
