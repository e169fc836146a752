"""The parent's corrections by picture, on real files with the real model and a running agent:
an allowed picture's resized copy passes, a blocked picture's re-saved copy is quarantined, other
pictures are untouched, a restored picture's copies stay, and the corrections survive a deleted
state database (the audit log is their record)."""

import io
import sqlite3
import time

import numpy as np
import pytest
from PIL import Image

from agent.corrections import MATCH_DISTANCE, hashes_of_file
from agent.decode import DecodeLimits, decode_image
from agent.picture_hash import distances, phash
from tests.agent_process import Agent, audit_of, run_veil, wait_until, write_config
from tests.conftest import PHOTOS
from tests.media import child_flagged_canaries

PIN = "246824"
FALSE_ALARM = PHOTOS / "ukui-fluent-color.jpg"  # a benign photo the model flags under the child profile (0.81)
COFFEE, CAT = PHOTOS / "scikit-coffee.jpg", PHOTOS / "scikit-chelsea.jpg"
CANARY = child_flagged_canaries()[5]


@pytest.fixture
def home(tmp_path):
    folder = tmp_path / "Downloads"
    folder.mkdir()
    config = write_config(tmp_path, [folder])
    assert run_veil("pin", "set", "--config", str(config), env={"VEIL_PIN": PIN}).returncode == 0
    return folder, config, tmp_path / "data"


def _copy(source, target, size=0.5, fmt="JPEG", quality=60, mirror=False):
    with Image.open(source) as image:
        image = image.convert("RGB")
        if mirror:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        image = image.resize((int(image.width * size), int(image.height * size)), Image.Resampling.LANCZOS)
        image.save(target, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return target


def _veil(config, *args, pin=PIN):
    return run_veil(*args, "--config", str(config), env={"VEIL_PIN": pin} if pin else {})


def _rows(data, subject_end):
    return [r for r in audit_of(data) if r["subject"].endswith(subject_end)]


def test_an_allowed_false_alarm_passes_as_a_resized_copy_and_is_on_record(home, tmp_path):
    folder, config, data = home
    scanned = run_veil("scan", str(FALSE_ALARM), "--format", "csv", "--regions", "off")
    assert ",malign," in scanned.stdout  # the model does flag it: the correction is what changes the outcome
    refused = _veil(config, "allow", str(FALSE_ALARM), pin="000000")
    assert refused.returncode == 2 and not _veil(config, "allow", "list").stdout.strip()
    done = _veil(config, "allow", str(FALSE_ALARM))
    assert done.returncode == 0 and done.stdout.startswith("#1 ukui-fluent-color.jpg allowed"), done.stderr
    assert "ukui-fluent-color.jpg" in _veil(config, "allow", "list").stdout
    agent = Agent(config)
    try:
        copy = _copy(FALSE_ALARM, tmp_path / "wallpaper small.jpg")
        (folder / copy.name).write_bytes(copy.read_bytes())
        assert wait_until(lambda: _rows(data, "wallpaper small.jpg"), 30)
        time.sleep(0.5)
    finally:
        agent.stop()
    assert (folder / "wallpaper small.jpg").exists()
    [row] = _rows(data, "wallpaper small.jpg")
    assert row["decision"] == "benign" and row["action"] == "none"
    assert row["detail"].startswith("allowed (parent's correction #1, like ukui-fluent-color.jpg, distance ")
    assert "the model said 0." in row["detail"]


def test_a_blocked_picture_is_quarantined_as_a_resaved_copy_and_other_pictures_are_not(home, tmp_path):
    folder, config, data = home
    assert _veil(config, "block", str(COFFEE)).returncode == 0
    agent = Agent(config)
    try:
        _copy(COFFEE, folder / "coffee.png", size=0.8, fmt="PNG")
        _copy(COFFEE, folder / "coffee-mirrored.jpg", mirror=True, quality=85)
        _copy(CAT, folder / "cat.jpg", size=0.8)
        assert wait_until(lambda: not (folder / "coffee.png").exists() and not (folder / "coffee-mirrored.jpg").exists(), 30)
        assert wait_until(lambda: _rows(data, "cat.jpg"), 30)
    finally:
        agent.stop()
    assert (folder / "cat.jpg").exists()
    for name in ("coffee.png", "coffee-mirrored.jpg"):
        [row] = _rows(data, name)
        assert row["decision"] == "malign" and row["action"] == "quarantine"
        assert "blocked (parent's correction #1, like scikit-coffee.jpg" in row["detail"]
    assert _rows(data, "cat.jpg")[0]["decision"] == "benign"
    # removed, the block is gone: a new copy passes
    assert _veil(config, "block", "remove", "1").returncode == 0
    agent = Agent(config)
    try:
        _copy(COFFEE, folder / "coffee-again.png", size=0.7, fmt="PNG")
        assert wait_until(lambda: _rows(data, "coffee-again.png"), 30)
    finally:
        agent.stop()
    assert (folder / "coffee-again.png").exists()


def test_a_restored_picture_is_allowed_as_a_picture(home, tmp_path):
    folder, config, data = home
    agent = Agent(config)
    try:
        (folder / "kept.png").write_bytes(CANARY.read_bytes())
        assert wait_until(lambda: not (folder / "kept.png").exists(), 30)
        entry = next(r["detail"].split()[-1] for r in _rows(data, "kept.png") if r["action"] == "quarantine")
        assert _veil(config, "quarantine", "restore", entry).returncode == 0
        assert (folder / "kept.png").exists()
        _copy(CANARY, folder / "kept-copy.jpg", size=0.75, quality=70)  # the same picture, other bytes
        assert wait_until(lambda: _rows(data, "kept-copy.jpg"), 30)
    finally:
        agent.stop()
    assert (folder / "kept-copy.jpg").exists()
    assert _rows(data, "kept-copy.jpg")[0]["detail"].startswith("allowed (parent's correction #1, like kept.png (restored from vault entry")
    # a later block beats the restore: the exact bytes that were restored are flagged again
    assert _veil(config, "block", str(CANARY)).returncode == 0
    agent = Agent(config)
    try:
        (folder / "again.png").write_bytes(CANARY.read_bytes())
        assert wait_until(lambda: not (folder / "again.png").exists(), 30)
    finally:
        agent.stop()
    assert _rows(data, "again.png")[-1]["action"] == "quarantine"  # the model flags it; the restore no longer shields it


def test_a_deleted_state_database_does_not_lose_a_block_and_a_smuggled_allow_is_dropped(home, tmp_path):
    folder, config, data = home
    assert _veil(config, "block", str(COFFEE)).returncode == 0
    (data / "state.sqlite3").unlink()  # what a child tries with the agent stopped
    for extra in ("-wal", "-shm"):
        (data / f"state.sqlite3{extra}").unlink(missing_ok=True)
    agent = Agent(config)
    try:
        _copy(COFFEE, folder / "coffee.jpg", size=0.6)
        assert wait_until(lambda: not (folder / "coffee.jpg").exists(), 30)
    finally:
        agent.stop()
    errors = [r["detail"] for r in audit_of(data) if r["subject"] == "error"]
    assert any("correction #1 (block: scikit-coffee.jpg) was missing or changed in the state database; put back" in e for e in errors)
    # an allow written into the database by hand is not one the audit log knows
    views = " ".join(f"{h:016x}" for h in hashes_of_file(CANARY))
    with sqlite3.connect(data / "state.sqlite3") as db:
        db.execute("INSERT INTO corrections VALUES (7, 'allow', ?, 'sneaky', 0)", (views,))
    agent = Agent(config)
    try:
        (folder / "sneaky.png").write_bytes(CANARY.read_bytes())
        assert wait_until(lambda: not (folder / "sneaky.png").exists(), 30)
    finally:
        agent.stop()
    errors = [r["detail"] for r in audit_of(data) if r["subject"] == "error"]
    assert any("correction #7 (allow: sneaky) was in the state database but not so in the audit log; removed" in e for e in errors)


def test_distinct_pictures_stay_apart_and_copies_match():
    """On committed photos: a half-size JPEG q60 copy of each is within the matching distance, and
    no other photo is (the full study: benchmarks/study_picture_hash.py)."""
    names = ["scikit-coffee.jpg", "scikit-chelsea.jpg", "scikit-astronaut.jpg", "scikit-rocket.jpg", "plasma-volna.jpg",
             "lomiri-wine_by_jakkub_mede.jpg"]
    hashes = {n: hashes_of_file(PHOTOS / n)[0] for n in names}
    stored = np.array(list(hashes.values()), np.uint64)
    for name, value in hashes.items():
        near = sorted(distances(stored, value))
        assert near[0] == 0 and near[1] > MATCH_DISTANCE, (name, near)  # itself, then the nearest other photo
        buffer = io.BytesIO()
        with Image.open(PHOTOS / name) as image:
            image.convert("RGB").resize((image.width // 2, image.height // 2)).save(buffer, "JPEG", quality=60)
        copy = phash(decode_image(io.BytesIO(buffer.getvalue()), DecodeLimits(glance=True)).glance)
        assert distances(np.array([value], np.uint64), copy)[0] <= MATCH_DISTANCE, name
