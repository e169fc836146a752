"""Which files a watch wants, and when a pending file counts as complete (real files, a fake clock)."""

from pathlib import Path

from agent.sources.folder import Settler, WatchedFolder, is_temporary


def test_temporary_download_names():
    for name in ("movie.mp4.part", "a.jpg.crdownload", "x.tmp", "~$report.docx", "b.PNG.partial", "c.jpg.download"):
        assert is_temporary(name), name
    for name in ("photo.jpg", "clip.mp4", "part.png", "tmp.gif"):
        assert not is_temporary(name), name


def test_wants_by_type_globs_depth_and_veil_own_folders(tmp_path):
    root = tmp_path / "watched"
    vault = root / ".veil" / "quarantine"
    everything = WatchedFolder(root, ignored=(vault,))
    assert everything.wants(root / "a.jpg") and everything.wants(root / "deep" / "er" / "b.webm")
    # by default every file: the decider's sniff decides whether it is an image or a video
    assert everything.wants(root / "notes.txt") and everything.wants(root / "a.jpg.part")
    assert not everything.wants(vault / "x.jpg")
    assert not everything.wants(tmp_path / "elsewhere.jpg")
    top = WatchedFolder(root, recursive=False)
    assert top.wants(root / "a.jpg") and not top.wants(root / "sub" / "a.jpg")
    picky = WatchedFolder(root, include=("*.dat", "raw/*"), exclude=("*skip*",))
    assert picky.wants(root / "x.dat") and picky.wants(root / "raw" / "y.bin")
    assert not picky.wants(root / "a.jpg") and not picky.wants(root / "skip-me.dat")


def test_walk_does_not_follow_symlinks(tmp_path):
    root, outside = tmp_path / "w", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"x")
    (root / "sub" / "a.jpg").write_bytes(b"x")
    (root / "link-dir").symlink_to(outside)
    (root / "link.jpg").symlink_to(outside / "secret.jpg")
    assert sorted(WatchedFolder(root).walk()) == [root / "sub" / "a.jpg"]


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_closed_after_write_is_ready_once_quiet(tmp_path):
    clock, path = Clock(), tmp_path / "a.jpg"
    path.write_bytes(b"12345")
    settler = Settler(quiet_s=0.5, idle_s=30, closed_quiet_s=0.1, clock=clock)
    settler.changed(path)
    settler.opened(path)
    settler.closed(path, wrote=True)
    assert settler.due() == []  # not quiet yet
    clock.now += 0.15
    assert settler.due() == [path] and len(settler) == 0


def test_without_close_events_two_equal_stats_are_needed(tmp_path):
    clock, path = Clock(), tmp_path / "a.jpg"
    path.write_bytes(b"1")
    settler = Settler(quiet_s=0.5, clock=clock)
    settler.changed(path)
    clock.now += 0.6
    assert settler.due() == []  # first look: remembered
    with open(path, "ab") as f:
        f.write(b"2")  # it grew in between: not complete
    clock.now += 0.6
    assert settler.due() == []
    clock.now += 0.6
    assert settler.due() == [path]


def test_open_writer_holds_the_file_until_idle_too_long(tmp_path):
    clock, path = Clock(), tmp_path / "big.mp4"
    path.write_bytes(b"partial")
    settler = Settler(quiet_s=0.5, idle_s=30, clock=clock)
    settler.changed(path)
    settler.opened(path)
    for _ in range(5):
        clock.now += 5
        assert settler.due() == []  # the writer still has it open
    clock.now += 30
    settler.due()
    clock.now += 1
    assert settler.due() == [path]  # a writer silent for idle_s: taken as done (a lost close event)


def test_vanished_pending_files_are_dropped(tmp_path):
    clock, path = Clock(), tmp_path / "gone.jpg"
    path.write_bytes(b"x")
    settler = Settler(quiet_s=0.1, clock=clock)
    settler.changed(path)
    path.unlink()
    clock.now += 1
    assert settler.due() == [] and len(settler) == 0
    settler.changed(Path(tmp_path / "never-existed.jpg"))
    clock.now += 1
    assert settler.due() == [] and len(settler) == 0


def test_a_download_name_is_handed_over_only_once_it_stalls(tmp_path):
    clock = Clock()
    settler = Settler(quiet_s=0.5, idle_s=30, clock=clock, stalled_s=60)
    part, done = tmp_path / "a.jpg.part", tmp_path / "b.jpg"
    part.write_bytes(b"half")
    done.write_bytes(b"whole")
    settler.changed(part)
    settler.changed(done)
    settler.closed(part, wrote=True)
    settler.closed(done, wrote=True)
    clock.now += 1
    assert settler.due() == [done] and settler.settling() == 0 and len(settler) == 1  # the download waits
    clock.now += 30
    assert settler.due() == []
    clock.now += 30
    assert settler.due() == [part]  # a minute with no write: judged under its temporary name
