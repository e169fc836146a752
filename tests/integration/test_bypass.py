"""What a curious child tries against the folder agent (issue 15): names, overwrites in place,
temporary download names, Veil's own folders over a watched one. Each attack is performed for
real against ``veil run --once`` or a running agent, and each one used to leave a flagged picture
in a watched folder with no quarantine and no audit row."""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.agent_process import Agent, audit_of, folder_rows, run_veil, vault_entries, wait_until, write_config
from tests.conftest import CANARIES, PHOTOS, REPO
from tests.video_media import make_video

CANARY = CANARIES / "porn-a.png"
PHOTO = PHOTOS / "scikit-coffee.jpg"


def _once(config: Path) -> subprocess.CompletedProcess:
    return run_veil("run", "--once", "--config", str(config))


def test_a_picture_under_any_name_is_judged_by_its_content(watched):
    folder, data, config = watched
    shutil.copy(CANARY, folder / "homework.dat")
    shutil.copy(CANARY, folder / "no-extension")
    shutil.copy(CANARY, folder / "LOUD.PNG")
    shutil.copy(CANARY, folder / "looks-like-a-video.mp4")  # a PNG named .mp4
    (folder / "notes.txt").write_text("just text\n")
    done = _once(config)
    assert done.returncode == 1, done.stderr
    for name in ("homework.dat", "no-extension", "LOUD.PNG", "looks-like-a-video.mp4"):
        assert not (folder / name).exists(), name
    assert (folder / "notes.txt").read_text() == "just text\n"
    assert "4 files decided, 4 flagged, 1 passed over (not images or videos)" in done.stderr
    quarantined = sorted(Path(r["subject"]).name for r in folder_rows(data) if r["action"] == "quarantine")
    assert quarantined == ["LOUD.PNG", "homework.dat", "looks-like-a-video.mp4", "no-extension"]
    assert len(vault_entries(data)) == 4


@pytest.mark.parametrize("name", ["clip.txt", "clip.ogv", "clip.mts"])
def test_a_flagged_video_under_any_name_is_judged(watched, tmp_path, name):
    folder, data, config = watched
    make_video(tmp_path / "made.mp4", 3, canary_seconds={0, 1, 2})
    shutil.copy(tmp_path / "made.mp4", folder / name)
    done = _once(config)
    assert done.returncode == 1, done.stderr + done.stdout
    assert not (folder / name).exists()
    assert [Path(r["subject"]).name for r in folder_rows(data) if r["action"] == "quarantine"] == [name]


def _same_size(data: bytes, size: int) -> bytes:
    """PNG and JPEG readers stop at their end marker: padding after it changes nothing shown."""
    assert len(data) <= size
    return data + b"\0" * (size - len(data))


def test_an_overwrite_in_place_with_the_old_size_and_mtime_is_judged_again(watched):
    folder, data, config = watched
    size = max(CANARY.stat().st_size, PHOTO.stat().st_size) + 100
    target = folder / "photo.jpg"
    target.write_bytes(_same_size(PHOTO.read_bytes(), size))
    assert _once(config).returncode == 0
    before = target.stat()
    with open(target, "r+b") as handle:  # the same inode, the same size...
        handle.write(_same_size(CANARY.read_bytes(), size))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # ...and the mtime set back (touch -d)
    after = target.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    done = _once(config)
    assert done.returncode == 1, done.stderr
    assert not target.exists()
    assert [(r["decision"], r["action"]) for r in folder_rows(data, target)] == [("benign", "none"), ("malign", "quarantine")]


def test_a_download_name_that_never_gets_its_rename_is_judged_once_it_stalls(tmp_path):
    folder = tmp_path / "Downloads"
    folder.mkdir()
    config = write_config(tmp_path, [folder])
    config.write_text(config.read_text().replace("[agent]\n", "[agent]\nstalled_download_s = 2\n", 1))
    data = tmp_path / "data"
    agent = Agent(config)
    try:
        for name in ("x.jpg.crdownload", "y.png.part", "~$z.png"):
            shutil.copy(CANARY, folder / name)
        assert wait_until(lambda: not any((folder / n).exists() for n in ("x.jpg.crdownload", "y.png.part", "~$z.png")), 30)
    finally:
        agent.stop()
    rows = [r for r in folder_rows(data) if r["action"] == "quarantine"]
    assert len(rows) == 3 and all("temporary download name" in r["detail"] for r in rows)


def test_a_download_renamed_to_its_final_name_is_judged_once_at_the_rename(watched):
    folder, data, config = watched
    agent = Agent(config)
    try:
        part = folder / "holiday.jpg.part"
        shutil.copy(PHOTO, part)
        part.rename(folder / "holiday.jpg")
        shutil.copy(CANARY, folder / "c.png.crdownload")
        (folder / "c.png.crdownload").rename(folder / "c.png")
        assert wait_until(lambda: not (folder / "c.png").exists(), 30)
        assert wait_until(lambda: len(folder_rows(data)) >= 2, 10)
        still_running = agent.proc.poll() is None
    finally:
        agent.stop()
    assert still_running
    # one row each (benign rows are logged in these tests), under the final names only
    rows = sorted((Path(r["subject"]).name, r["decision"], r["action"]) for r in folder_rows(data))
    assert rows == [("c.png", "malign", "quarantine"), ("holiday.jpg", "benign", "none")]
    assert (folder / "holiday.jpg").read_bytes() == PHOTO.read_bytes()


@pytest.mark.parametrize("own", ["quarantine", "audit", "data"])
def test_veil_own_folders_over_a_watched_folder_are_refused(tmp_path, own):
    folder = tmp_path / "Downloads"
    folder.mkdir()
    shutil.copy(CANARY, folder / "c.png")
    config = tmp_path / "veil.toml"
    tables = {
        "quarantine": f'[agent]\ndata_dir = "{tmp_path / "data"}"\n[quarantine]\npath = "{folder}"\n',
        "audit": f'[agent]\ndata_dir = "{tmp_path / "data"}"\n[audit]\npath = "{folder / "audit.csv"}"\n',
        "data": f'[agent]\ndata_dir = "{tmp_path}"\n',  # the data dir holds the watched folder
    }
    config.write_text(tables[own] + f'[screen]\nenabled = false\n[[watch]]\npath = "{folder}"\n')
    for command in (["config", "check", str(config)], ["run", "--once", "--config", str(config)]):
        done = run_veil(*command)
        assert done.returncode == 2, done.stdout + done.stderr
        [line] = done.stderr.strip().splitlines()
        assert "would hide the watched folder" in line and str(folder) in line
    assert (folder / "c.png").exists()


def test_a_data_dir_inside_a_watched_folder_is_only_itself_ignored(tmp_path):
    folder = tmp_path / "Downloads"
    folder.mkdir()
    config = write_config(tmp_path, [folder], data=folder / ".veil")
    shutil.copy(CANARY, folder / "c.png")
    done = _once(config)
    assert done.returncode == 1, done.stderr
    assert not (folder / "c.png").exists() and len(vault_entries(folder / ".veil")) == 1
    assert any(Path(r["subject"]).name == "c.png" for r in audit_of(folder / ".veil"))


def test_the_readme_names_the_video_suffixes_the_agent_watches():
    """The README says what the agent watches; it must name the suffixes the code knows."""
    from agent.scan import VIDEO_SUFFIXES

    readme = (REPO / "README.md").read_text()
    for suffix in (".ogv", ".mts", ".m2ts", ".vob"):
        assert suffix in VIDEO_SUFFIXES and suffix in readme, suffix


@pytest.fixture
def read_only_folder(tmp_path):
    """A watched folder whose files cannot be removed, even by root: a read-only bind mount
    (the OS edge of a folder the agent may read but not change)."""
    folder = tmp_path / "Downloads"
    folder.mkdir()
    shutil.copy(CANARY, folder / "c.png")
    for args in (["mount", "--bind", str(folder), str(folder)], ["mount", "-o", "remount,ro,bind", str(folder)]):
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
            pytest.skip(f"cannot make a read-only bind mount here ({done.stderr.strip()}); needs root")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_quarantine_that_fails_is_retried_shown_as_trouble_and_audited_twice(tmp_path, read_only_folder):
    from agent.app import App
    from agent.config import load_config
    from agent.loops import Intervals

    folder, data = read_only_folder, tmp_path / "data"
    app = App(load_config(write_config(tmp_path, [folder])), intervals=Intervals(retry_first_s=0.5, retry_check_s=0.2))
    app.start()
    try:
        assert wait_until(lambda: app.status().trouble.startswith("1 file not handled yet (quarantine failed"), 30), app.status()
        assert (folder / "c.png").exists()
        time.sleep(2)  # several retries of the same failure: still one audit row for it
        failures = [r for r in folder_rows(data) if r["decision"] == "error"]
        assert len(failures) == 1 and "Read-only file system" in failures[0]["detail"]
        subprocess.run(["umount", "-l", str(folder)], check=True)  # the folder can be changed again
        assert wait_until(lambda: not (folder / "c.png").exists(), 30)
        assert wait_until(lambda: app.status().trouble == "", 10), app.status()
    finally:
        app.stop()
    rows = [(r["decision"], r["action"]) for r in folder_rows(data)]
    assert rows == [("error", "none"), ("malign", "quarantine")]
    assert len(vault_entries(data)) == 1


def test_a_flagged_file_with_other_names_says_so_and_its_watched_names_are_judged(watched, tmp_path):
    folder, data, config = watched
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(CANARY, folder / "c.png")
    os.link(folder / "c.png", folder / "same-bytes.bin")  # a second name in the watched folder
    os.link(folder / "c.png", outside / "kept.png")  # and one where Veil does not look
    done = _once(config)
    assert done.returncode == 1, done.stderr
    assert not (folder / "c.png").exists() and not (folder / "same-bytes.bin").exists()
    assert (outside / "kept.png").read_bytes() == CANARY.read_bytes()  # not Veil's to move: but said
    rows = [r for r in folder_rows(data) if r["action"] == "quarantine"]
    assert sorted(Path(r["subject"]).name for r in rows) == ["c.png", "same-bytes.bin"]
    # each row says the bytes were reachable under other names when it was judged (two workers may
    # judge both names before either is moved, so the second may count 2 or 1)
    assert all(" of this file (hard link" in r["detail"] for r in rows)
    assert any("2 other names of this file (hard links) remain" in r["detail"] for r in rows)


NOBODY = 65534


@pytest.fixture
def as_user(tmp_path):
    """A folder and a command prefix under which file permissions bind the agent. Root reads
    every file whatever its mode, so as root the agent runs as ``nobody`` (setpriv) in a folder
    that user owns; as anyone else, as that user in tmp_path."""
    if os.geteuid() != 0:
        yield tmp_path, ()
        return
    prefix = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--")
    probe = subprocess.run([*prefix, sys.executable, "-c", "import agent"], capture_output=True, text=True, cwd=REPO)
    if probe.returncode != 0:
        pytest.skip(f"cannot run Python as an unprivileged user here: {probe.stderr.strip()[-200:]}")
    home = Path(tempfile.mkdtemp(prefix="veil-unprivileged-"))
    home.chmod(0o755)
    os.chown(home, NOBODY, NOBODY)
    try:
        yield home, prefix
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _owned(home: Path, path: Path) -> Path:
    """``path`` under ``home``, owned by whoever owns ``home`` (the agent's user)."""
    owner = home.stat()
    os.chown(path, owner.st_uid, owner.st_gid)
    return path


def test_a_file_unreadable_when_first_seen_is_judged_once_it_can_be_read(as_user):
    home, prefix = as_user
    folder = home / "Downloads"
    folder.mkdir()
    _owned(home, folder)
    data = home / "data"
    config = _owned(home, write_config(home, [folder]))
    hidden = _owned(home, Path(shutil.copy(CANARY, folder / "x.jpg")))
    hidden.chmod(0)  # chmod 000 before the agent ever sees it
    first = run_veil("run", "--once", "--config", str(config), prefix=prefix)
    assert first.returncode == 3, first.stderr  # something could not be handled
    assert "1 file decided, 0 flagged" in first.stderr and "1 unreadable" in first.stderr, first.stderr
    again = run_veil("run", "--once", "--config", str(config), prefix=prefix)  # still unreadable: no second row
    assert again.returncode == 3, again.stderr
    hidden.chmod(0o644)
    done = run_veil("run", "--once", "--config", str(config), prefix=prefix)
    assert done.returncode == 1, done.stderr
    assert not hidden.exists()
    rows = [(r["decision"], r["action"], r["detail"]) for r in folder_rows(data, hidden)]
    assert rows == [("error", "none", "permission denied"), ("malign", "quarantine", rows[1][2])]


def test_a_running_agent_retries_a_file_it_could_not_read(as_user):
    home, prefix = as_user
    folder = home / "Downloads"
    folder.mkdir()
    _owned(home, folder)
    config = _owned(home, write_config(home, [folder]))
    agent = Agent(config, prefix=prefix)
    try:
        staged = _owned(home, Path(shutil.copy(CANARY, home / "staged.png")))
        staged.chmod(0)
        staged.rename(folder / "x.png")
        assert wait_until(lambda: any(r["decision"] == "error" for r in folder_rows(home / "data")), 30)
        (folder / "x.png").chmod(0o644)  # a chmod alone: the retry (10 s) brings it back
        assert wait_until(lambda: not (folder / "x.png").exists(), 40)
    finally:
        agent.stop()
    assert [(r["decision"], r["action"]) for r in folder_rows(home / "data")] == [("error", "none"), ("malign", "quarantine")]


@pytest.mark.parametrize("swap", ["rename over it", "overwrite in place"])
def test_a_file_swapped_between_hash_and_decode_is_judged_again_and_poisons_nothing(watched, tmp_path, swap):
    """The agent pauses right after hashing a benign photo (fault-injection point); the test then
    swaps the flagged picture in. The flagged bytes must be what is acted on, and the photo's
    hash must never carry the flagged scores (a later copy of the photo stays untouched)."""
    folder, data, config = watched
    size = max(CANARY.stat().st_size, PHOTO.stat().st_size) + 100
    target = folder / "photo.jpg"
    target.write_bytes(_same_size(PHOTO.read_bytes(), size))
    flagged = _same_size(CANARY.read_bytes(), size)
    pauses = tmp_path / "pauses"
    pauses.mkdir()
    marker = pauses / "folder-hashed.paused"
    agent = Agent(config, env={"VEIL_TEST_PAUSE_AT": f"folder:hashed:{pauses}"})
    try:
        assert wait_until(marker.exists, 60), agent.lines
        if swap == "rename over it":
            (tmp_path / "staged").write_bytes(flagged)
            os.replace(tmp_path / "staged", target)
        else:
            before = target.stat()
            with open(target, "r+b") as handle:
                handle.write(flagged)
            os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
        marker.unlink()
        assert wait_until(lambda: not target.exists(), 30), agent.lines
        assert wait_until(lambda: len(folder_rows(data)) >= 1, 10)
    finally:
        agent.stop()
    [row] = folder_rows(data)
    assert (row["decision"], row["action"]) == ("malign", "quarantine")
    assert row["sha256"] == hashlib.sha256(flagged).hexdigest()
    (folder / "copy-of-photo.jpg").write_bytes(_same_size(PHOTO.read_bytes(), size))
    done = _once(config)
    assert done.returncode == 0, done.stderr
    assert (folder / "copy-of-photo.jpg").exists()


def test_a_video_crafted_against_fixed_samples_is_quarantined(watched, tmp_path):
    """Flagged frames only in the second half of each second: the first frame of every second,
    where a fixed sampler looks, is always benign."""
    folder, data, config = watched
    make_video(folder / "clip.mp4", 6, fps=10, gop_s=10.0, bframes=False, audio=False, canary_at=lambda t: t % 1.0 >= 0.5)
    done = _once(config)
    assert done.returncode == 1, done.stderr
    assert not (folder / "clip.mp4").exists()
    assert [r["action"] for r in folder_rows(data)] == ["quarantine"]
