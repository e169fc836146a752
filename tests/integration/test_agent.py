"""``veil run``: the folder agent in its own process, on real folders, with the real model."""

import errno
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from agent.audit import verify
from tests.agent_process import Agent, audit_of, folder_rows, run_veil, vault_entries, wait_until, write_config
from tests.conftest import CANARIES, PHOTOS

CANARY = CANARIES / "porn-a.png"
BLUR_IMAGES = '[profiles.child]\nactions = { folder = "blur", screen = "blur", video = "quarantine" }\n'
PHOTO = PHOTOS / "scikit-coffee.jpg"


def _write_slowly(path, data, chunks=8, pause=0.25):
    with open(path, "wb") as handle:
        for i in range(chunks):
            handle.write(data[i * len(data) // chunks:(i + 1) * len(data) // chunks])
            handle.flush()
            time.sleep(pause)


def test_new_files_are_decided_once_complete(watched):
    folder, data, config = watched
    agent = Agent(config)
    try:
        start_line = next(line for line in agent.lines if "protecting with profile" in line)
        assert "child" in start_line and "threads" in start_line and str(folder) in start_line
        shutil.copy(PHOTO, folder / "photo.jpg")
        shutil.copy(CANARY, folder / "dl.png.crdownload")  # a browser download, then its rename
        os.rename(folder / "dl.png.crdownload", folder / "dl.png")
        (folder / "new" / "deeper").mkdir(parents=True)  # a new sub-folder, filled at once
        shutil.copy(CANARIES / "hentai-a.png", folder / "new" / "deeper" / "h.png")
        _write_slowly(folder / "slow.png", CANARY.read_bytes())  # written over two seconds
        assert wait_until(lambda: len(folder_rows(data)) >= 4, 60), (
            [os.path.basename(r["subject"]) for r in folder_rows(data)], "\n".join(agent.lines))
        time.sleep(1.0)
    finally:
        assert agent.stop() == 0
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == ["photo.jpg"]
    assert (folder / "photo.jpg").read_bytes() == PHOTO.read_bytes()
    rows = folder_rows(data)
    by_name = {os.path.basename(r["subject"]): r for r in rows}
    assert len(rows) == 4 and set(by_name) == {"photo.jpg", "dl.png", "h.png", "slow.png"}
    assert by_name["photo.jpg"]["decision"] == "benign" and by_name["photo.jpg"]["action"] == "none"
    for name in ("dl.png", "h.png", "slow.png"):
        assert by_name[name]["decision"] == "malign" and by_name[name]["action"] == "quarantine"
    assert not any(r["decision"] == "error" for r in rows)  # the slow file was never read half-written
    assert len(vault_entries(data)) == 3
    events = [r["subject"] for r in audit_of(data) if r["source"] == "agent"]
    assert events == ["start", "config", "stop"]
    [made] = [r for r in audit_of(data) if r["subject"] == "config"]  # the vault key, made at the first quarantine
    assert "vault key" in made["detail"] and "made" in made["detail"]
    assert verify(data / "audit" / "audit.csv").ok


def test_restart_decides_nothing_twice_and_audits_the_gap(watched):
    folder, data, config = watched
    shutil.copy(PHOTO, folder / "before.jpg")
    shutil.copy(CANARY, folder / "before.png")
    agent = Agent(config)
    assert wait_until(lambda: len(folder_rows(data)) == 2, 60)  # scan_existing: both decided
    assert agent.stop() == 0
    shutil.copy(PHOTOS / "scikit-chelsea.jpg", folder / "while-stopped.jpg")
    agent = Agent(config)
    assert wait_until(lambda: len(folder_rows(data)) == 3, 60)
    time.sleep(1.0)
    assert agent.stop() == 0
    rows = folder_rows(data)
    assert sorted(os.path.basename(r["subject"]) for r in rows) == ["before.jpg", "before.png", "while-stopped.jpg"]
    gaps = [r for r in audit_of(data) if r["subject"] == "gap"]
    assert len(gaps) == 1 and "quit (SIGTERM)" in gaps[0]["detail"]


def test_killed_agent_leaves_a_killed_gap_row(watched):
    folder, data, config = watched
    agent = Agent(config)
    assert agent.kill() == -signal.SIGKILL
    agent = Agent(config)
    agent.stop()
    gaps = [r for r in audit_of(data) if r["subject"] == "gap"]
    assert len(gaps) == 1 and ": killed" in gaps[0]["detail"]
    assert verify(data / "audit" / "audit.csv").ok


def test_one_agent_per_data_dir(watched):
    _, _, config = watched
    agent = Agent(config)
    try:
        second = run_veil("run", "--no-tray", "--config", str(config), timeout=60)
    finally:
        agent.stop()
    assert second.returncode == 2
    assert "another Veil agent is already running" in second.stderr and str(agent.proc.pid) in second.stderr


def test_watched_folder_deleted_and_recreated_resumes(watched):
    folder, data, config = watched
    agent = Agent(config)
    try:
        shutil.rmtree(folder)
        time.sleep(1.5)
        folder.mkdir()
        time.sleep(1.5)  # the health check re-watches it
        shutil.copy(CANARY, folder / "after.png")
        assert wait_until(lambda: not (folder / "after.png").exists(), 30)
    finally:
        agent.stop()
    notes = [r["detail"] for r in audit_of(data) if r["source"] == "agent" and r["subject"] == "error"]
    assert any("was removed" in n for n in notes) and any("is back" in n for n in notes)
    assert [r["action"] for r in folder_rows(data)] == ["quarantine"]


def test_symlink_out_of_the_tree_is_not_followed(watched, tmp_path):
    folder, data, config = watched
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(CANARY, outside / "elsewhere.png")
    (folder / "link.png").symlink_to(outside / "elsewhere.png")
    (folder / "linkdir").symlink_to(outside)
    outcome = run_veil("run", "--once", "--config", str(config))
    assert outcome.returncode == 0, outcome.stderr
    assert (outside / "elsewhere.png").read_bytes() == CANARY.read_bytes()
    assert (folder / "link.png").is_symlink() and folder_rows(data) == []


def test_run_once_exit_codes_and_output(watched):
    folder, data, config = watched
    shutil.copy(PHOTO, folder / "a.jpg")
    assert run_veil("run", "--once", "--config", str(config)).returncode == 0
    (folder / "broken.jpg").write_bytes(PHOTO.read_bytes()[:300])
    unreadable = run_veil("run", "--once", "--config", str(config))
    assert unreadable.returncode == 3 and "broken.jpg" in unreadable.stdout
    shutil.copy(CANARY, folder / "c.png")
    flagged = run_veil("run", "--once", "--config", str(config))
    assert flagged.returncode == 1 and "malign\tquarantine" in flagged.stdout
    assert "1 file decided, 1 flagged, 0 passed over (not images or videos), 0 could not be handled, 0 unreadable" \
        in flagged.stderr  # a.jpg and broken.jpg were decided before
    assert [os.path.basename(r["subject"]) for r in folder_rows(data)] == ["a.jpg", "broken.jpg", "c.png"]


@pytest.mark.parametrize("point", ["folder:decided", "vault:entry-written", "folder:acted", "folder:audited"])
def test_sigkill_at_each_step_decides_exactly_once(watched, point):
    folder, data, config = watched
    shutil.copy(CANARY, folder / "c.png")
    vault_point = point.split(":", 1)[1] if point.startswith("vault:") else point
    killed = run_veil("run", "--once", "--config", str(config), env={"VEIL_TEST_KILL_AT": vault_point})
    assert killed.returncode == -signal.SIGKILL
    again = run_veil("run", "--once", "--config", str(config))
    assert again.returncode in (0, 1), again.stderr
    rows = folder_rows(data, folder / "c.png")
    assert len(rows) == 1 and rows[0]["action"] == "quarantine", rows
    assert not (folder / "c.png").exists() and len(vault_entries(data)) == 1
    assert verify(data / "audit" / "audit.csv").ok
    assert run_veil("run", "--once", "--config", str(config)).returncode == 0  # nothing left to decide


def test_inotify_limit_falls_back_to_polling(tmp_path, monkeypatch):
    """The per-user inotify limits are an OS edge: simulated by failing the watch as the kernel would."""
    from agent.app import App
    from agent.config import load_config
    from agent.sources import folder as folder_source

    folder = tmp_path / "w"
    folder.mkdir()
    config = load_config(write_config(tmp_path, [folder]))

    def no_more_watches(*args, **kwargs):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    def limited_observer(on_overflow):
        observer = real_observer(on_overflow)
        observer.schedule = no_more_watches
        return observer

    real_observer = folder_source._observer
    monkeypatch.setattr(folder_source, "_observer", limited_observer)
    app = App(config)
    app.start()
    try:
        shutil.copy(CANARY, folder / "c.png")
        assert wait_until(lambda: not (folder / "c.png").exists(), 30)
        assert any("(polling)" in w for w in app.status().watching)
    finally:
        app.stop()
    warnings = [r["detail"] for r in audit_of(tmp_path / "data") if r["subject"] == "error"]
    assert any("max_user_watches" in w and "polling" in w for w in warnings)


def test_duplicates_are_classified_once(watched):
    import sqlite3

    folder, data, config = watched
    for i in range(3):
        shutil.copy(PHOTO, folder / f"same-{i}.jpg")
    for i in range(2):
        shutil.copy(CANARY, folder / f"dup-{i}.png")
    assert run_veil("run", "--once", "--config", str(config)).returncode == 1
    with sqlite3.connect(data / "state.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM contents").fetchone()[0] == 2  # two contents, five files
        assert db.execute("SELECT COUNT(*) FROM files WHERE status = 'done'").fetchone()[0] == 5
    rows = folder_rows(data)
    assert sorted(r["action"] for r in rows) == ["none"] * 3 + ["quarantine"] * 2  # every copy acted on
    assert len(vault_entries(data)) == 2


def test_veil_never_judges_its_own_outputs(tmp_path):
    folder = tmp_path / "home"
    folder.mkdir()
    # the data dir (vault, audit, state) inside the watched tree, and blur as the folder action
    config = write_config(tmp_path, [folder], BLUR_IMAGES, data=folder / ".veil", include='["*"]')
    shutil.copy(CANARY, folder / "c.png")
    data = folder / ".veil"
    assert run_veil("run", "--once", "--config", str(config)).returncode == 1
    standin = (folder / "c.png").read_bytes()
    assert standin != CANARY.read_bytes()  # blurred in place
    agent = Agent(config)
    try:
        shutil.copy(folder / "c.png", folder / "copy-of-standin.png")  # Veil's output, under a new name
        time.sleep(3)
    finally:
        agent.stop()
    assert run_veil("run", "--once", "--config", str(config)).returncode == 0
    rows = folder_rows(data)
    assert [(os.path.basename(r["subject"]), r["action"]) for r in rows] == [("c.png", "blur")]
    assert (folder / "c.png").read_bytes() == standin and not any(".veil" in r["subject"] for r in rows)


def test_config_changes_while_running_are_audited_and_bad_ones_ignored(watched):
    folder, data, config = watched
    original = config.read_text()
    agent = Agent(config)
    try:
        config.write_text(original.replace("[agent]\n", '[agent]\nprofile = "adult"\n'))
        assert wait_until(lambda: any("profile child -> adult" in r["detail"] for r in audit_of(data)), 15)
        config.write_text(original + "\n[agent]\nbogus = 1\n")  # not even valid TOML any more
        assert wait_until(lambda: any("cannot be loaded" in r["detail"] for r in audit_of(data)), 15)
        shutil.copy(CANARIES / "sexy-a.png", folder / "s.png")  # sexy: flagged by child, not by adult
        assert wait_until(lambda: len(folder_rows(data)) == 1, 30)
    finally:
        agent.stop()
    rows = [r for r in audit_of(data) if r["subject"] == "config"]
    assert len(rows) == 2 and all("sha256 " in r["detail"] for r in rows)
    assert "previous config stays in force" in rows[1]["detail"]
    assert folder_rows(data)[0]["decision"] == "benign" and (folder / "s.png").exists()  # adult still in force


def test_videos_follow_actions_video_even_as_duplicates(tmp_path):
    from tests.video_media import make_video

    folder = tmp_path / "w"
    folder.mkdir()
    config = write_config(tmp_path, [folder], BLUR_IMAGES)
    clip = make_video(tmp_path / "clip.mp4", seconds=4, canary_seconds={1, 2}, gop_s=1.0)
    shutil.copy(clip, folder / "a.mp4")
    shutil.copy(clip, folder / "b.mp4")  # the same content: its scores come from the state database
    shutil.copy(CANARY, folder / "c.png")
    assert run_veil("run", "--once", "--config", str(config)).returncode == 1
    actions = {os.path.basename(r["subject"]): r["action"] for r in folder_rows(tmp_path / "data")}
    assert actions == {"a.mp4": "quarantine", "b.mp4": "quarantine", "c.png": "blur"}
    assert not (folder / "a.mp4").exists() and not (folder / "b.mp4").exists() and (folder / "c.png").exists()


def _in_process_app(tmp_path, folder, **intervals):
    from agent.app import App
    from agent.config import load_config
    from agent.loops import Intervals

    return App(load_config(write_config(tmp_path, [folder])), intervals=Intervals(**intervals))


def test_a_pause_ends_on_its_own_and_what_came_meanwhile_is_decided(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    app = _in_process_app(tmp_path, folder, retry_check_s=0.2)
    app.start()
    try:
        app.pause(0.02)  # 1.2 s
        assert app.status().state == "paused"
        shutil.copy(CANARY, folder / "during-pause.png")
        time.sleep(0.8)
        assert (folder / "during-pause.png").exists()  # paused: left alone
        assert wait_until(lambda: not (folder / "during-pause.png").exists(), 15)  # resumed by itself, then walked
        assert app.status().state == "protecting"
    finally:
        app.stop()
    events = [r["subject"] for r in audit_of(tmp_path / "data") if r["source"] == "agent"]
    assert [e for e in events if e != "config"] == ["start", "pause", "resume", "stop"]  # (config: the vault key made)


def test_a_real_kernel_queue_overflow_is_audited_and_reconciled(watched):
    """A real IN_Q_OVERFLOW: the agent is frozen (SIGSTOP, a stalled reader) while more events
    happen than the kernel queues for it, so the picture written last has its events dropped. Only
    the overflow's reconcile can find it: the periodic walk is ten minutes away. As root the queue
    is made small for the agent's inotify instance (the limit is read when one is created)."""
    folder, data, config = watched
    limit = Path("/proc/sys/fs/inotify/max_queued_events")
    default = int(limit.read_text())
    queued = default
    if os.geteuid() == 0:
        try:
            limit.write_text("64")
            queued = 64
        except OSError:
            pass
    try:
        agent = Agent(config)
    finally:
        if queued != default:
            limit.write_text(str(default))
    try:
        os.kill(agent.proc.pid, signal.SIGSTOP)
        try:
            for i in range(queued + 100):  # at least one event each
                (folder / f"note-{i}.txt").write_bytes(b"")
            shutil.copy(CANARY, folder / "missed.png")
        finally:
            os.kill(agent.proc.pid, signal.SIGCONT)
        assert wait_until(lambda: not (folder / "missed.png").exists(), 120), agent.lines[-5:]
    finally:
        agent.stop()
    assert any("overflowed" in line and "reconciling" in line for line in agent.lines), agent.lines[-10:]
    errors = [r["detail"] for r in audit_of(data) if r["subject"] == "error"]
    assert any("overflowed" in e and "reconciling" in e for e in errors)


def test_a_file_restored_from_the_quarantine_is_not_quarantined_again(watched):
    """Restoring (with the PIN when one is set) is a parent's decision; the running agent keeps to it,
    for that content only: another flagged file is still quarantined."""
    folder, data, config = watched
    agent = Agent(config)
    try:
        shutil.copy(CANARY, folder / "drawing.png")
        assert wait_until(lambda: len(vault_entries(data)) == 1 and not (folder / "drawing.png").exists(), 30)
        entry_id = vault_entries(data)[0].stem
        restored = run_veil("quarantine", "restore", entry_id, "--config", str(config))
        assert restored.returncode == 0, restored.stderr
        assert (folder / "drawing.png").read_bytes() == CANARY.read_bytes()
        assert wait_until(lambda: any(r["action"] == "restore" for r in audit_of(data)), 10)
        shutil.copy(CANARIES / "hentai-a.png", folder / "other.png")  # the control: still guarded
        assert wait_until(lambda: not (folder / "other.png").exists(), 30)
        time.sleep(1.0)  # the restored file's own events have long been handled by now
        assert (folder / "drawing.png").read_bytes() == CANARY.read_bytes()
        assert len(vault_entries(data)) == 1
    finally:
        assert agent.stop() == 0
    result = verify(data / "audit" / "audit.csv")  # the CLI's row and the agent's rows: one chain
    assert result.ok, result.problem


def test_a_scan_beside_the_running_agent_shares_its_vault_and_keeps_one_audit_chain(watched, tmp_path):
    """A parent runs `veil scan --action quarantine` on another folder while the agent is busy:
    both write the same vault (first use: one key pair) and the same audit log."""
    folder, data, config = watched
    other = tmp_path / "usb-stick"
    other.mkdir()
    for i in range(6):
        shutil.copy(CANARIES / ("porn-a.png" if i % 2 else "hentai-a.png"), other / f"s{i}.png")
    agent = Agent(config)
    try:
        for i in range(6):
            shutil.copy(CANARIES / ("hentai-a.png" if i % 2 else "porn-a.png"), folder / f"a{i}.png")
        scan = run_veil("scan", str(other), "--action", "quarantine", "--config", str(config))
        assert scan.returncode == 1, scan.stderr  # flagged files found (and quarantined)
        assert wait_until(lambda: len(folder_rows(data)) == 6, 60)
    finally:
        assert agent.stop() == 0
    assert not list(other.iterdir()) and not list(folder.iterdir()), [
        (os.path.basename(r["subject"]), r["decision"], r["action"], r["detail"]) for r in audit_of(data) if r["source"] != "agent"]
    result = verify(data / "audit" / "audit.csv")
    assert result.ok, result.problem
    assert sum(r["source"] == "scan" and r["action"] == "quarantine" for r in audit_of(data)) == 6
    listed = run_veil("quarantine", "list", "--config", str(config))
    assert listed.returncode == 0 and listed.stdout.count("usb-stick") == 6 and listed.stdout.count("Downloads") == 6


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB file system of its own (tmpfs) for the data dir: the OS edge of a full disk."""
    data = tmp_path / "data"
    data.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(data)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()}); needs root")
    yield data
    subprocess.run(["umount", "-l", str(data)], check=False)


def _fill(folder):
    filler = folder / "filler"
    with pytest.raises(OSError) as full, open(filler, "wb") as handle:
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    assert full.value.errno == errno.ENOSPC
    return filler


def test_a_full_data_disk_is_said_in_one_line_and_the_file_is_handled_once_there_is_room(tmp_path, small_disk):
    folder = tmp_path / "Downloads"
    folder.mkdir()
    agent = Agent(write_config(tmp_path, [folder], data=small_disk))
    try:
        filler = _fill(small_disk)
        shutil.copy(CANARY, folder / "a.png")
        shutil.copy(PHOTO, folder / "b.jpg")
        assert wait_until(lambda: any("trying it later" in line and "a.png" in line for line in agent.lines), 60), agent.lines
        assert (folder / "a.png").read_bytes() == CANARY.read_bytes()  # nowhere to put it yet: left in place, whole
        filler.unlink()  # room again
        assert wait_until(lambda: not (folder / "a.png").exists(), 60), agent.lines
        assert (folder / "b.jpg").read_bytes() == PHOTO.read_bytes()
    finally:
        assert agent.stop() == 0
    assert not any("Traceback" in line or "Logging error" in line for line in agent.lines), agent.lines
    result = verify(small_disk / "audit" / "audit.csv")
    assert result.ok, result.problem  # no false alarm from a chain head that could not be written
    rows = {os.path.basename(r["subject"]): r for r in folder_rows(small_disk)}
    assert rows["a.png"]["action"] == "quarantine" and rows["b.jpg"]["decision"] == "benign"
    assert len(vault_entries(small_disk)) == 1


def test_the_status_names_files_waiting_for_room_until_they_are_handled(tmp_path, small_disk):
    """What the tray shows (grey icon, "trouble: …") while files wait for a full disk."""
    from agent.app import App
    from agent.config import load_config
    from agent.tray.menu import tray_state

    folder = tmp_path / "Downloads"
    folder.mkdir()
    app = App(load_config(write_config(tmp_path, [folder], data=small_disk)))
    app.start()
    try:
        filler = _fill(small_disk)
        shutil.copy(CANARY, folder / "a.png")
        assert wait_until(lambda: app.status().trouble.startswith("1 file not handled yet ("), 60), app.status()
        assert "full" in app.status().trouble and tray_state(app.status()) == "error"
        filler.unlink()
        assert wait_until(lambda: app.status().trouble == "", 60), app.status()
        assert not (folder / "a.png").exists() and tray_state(app.status()) == "blocked"
    finally:
        app.stop("test over")
