"""``veil scan`` as a user runs it: real processes, real folders, the INTERFACES.md contract."""

import csv
import io
import json
import os
import shutil
from pathlib import Path

from tests import media
from tests.conftest import CANARIES, GOLDEN, PHOTOS
from tests.integration.test_cli import veil
from tests.make_golden import SCAN_FOLDER_CANARIES, SCAN_FOLDER_PHOTOS

# INTERFACES.md: the first-wave columns, then `region` (second wave), appended so scripts reading by position keep working
COLUMNS = "file,prediction,latency_ms,benign,malign,drawing,hentai,neutral,porn,sexy,frames,worst_frame,error,region".split(",")


def _folder(root: Path, photos: int = 6, canaries: tuple[str, ...] = ()) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for p in sorted(PHOTOS.glob("*.jpg"))[:photos]:
        shutil.copy(p, root / p.name)
    for name in canaries:
        shutil.copy(CANARIES / f"{name}.png", root / f"{name}.png")
    return root


def test_exit_0_when_nothing_is_flagged(tmp_path):
    done = veil("scan", str(_folder(tmp_path / "f")), "--format", "csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert list(rows[0]) == COLUMNS
    assert len(rows) == 6 and {r["prediction"] for r in rows} == {"benign"}
    assert all(r["frames"] == "1" and r["worst_frame"] == "0" and r["error"] == "" for r in rows)


def test_exit_1_when_something_is_flagged(tmp_path):
    done = veil("scan", str(_folder(tmp_path / "f", 2, ("hentai-a",))), "--format", "jsonl")
    assert done.returncode == 1, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert list(rows[0]) == COLUMNS
    flagged = [r for r in rows if r["prediction"] == "malign"]
    assert [Path(r["file"]).name for r in flagged] == ["hentai-a.png"]
    assert flagged[0]["hentai"] > 0.8 and flagged[0]["error"] is None
    assert abs(sum(flagged[0][c] for c in ("drawing", "hentai", "neutral", "porn", "sexy")) - 1) <= 0.01


def test_exit_3_when_something_is_unreadable(tmp_path):
    folder = _folder(tmp_path / "f", 2)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    done = veil("scan", str(folder), "--format", "jsonl")
    assert done.returncode == 3, done.stderr
    broken = [json.loads(line) for line in done.stdout.splitlines() if "broken.jpg" in line][0]
    assert broken["prediction"] == "error" and broken["error"] and broken["malign"] is None


def test_exit_2_on_usage_errors(tmp_path):
    assert veil("scan").returncode == 2
    done = veil("scan", str(tmp_path), "--profile", "toddler")
    assert done.returncode == 2 and "unknown profile 'toddler'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_output_file_and_profile(tmp_path):
    folder = _folder(tmp_path / "f", 1, ("sexy-a",))
    out = tmp_path / "out.csv"
    done = veil("scan", str(folder), "--format", "csv", "-o", str(out), "--profile", "teen")
    assert done.returncode == 0, done.stderr  # sexy is not malign for teen
    assert done.stdout == ""
    rows = list(csv.DictReader(out.open()))
    assert [r["prediction"] for r in rows] == ["benign", "benign"]


def test_table_lists_file_prediction_latency_scores_and_top_class(tmp_path):
    done = veil("scan", str(_folder(tmp_path / "f", 1, ("porn-a",))))
    assert done.returncode == 1
    header, *lines = done.stdout.splitlines()
    assert header.split() == ["file", "prediction", "latency_ms", "benign", "malign", "top"]
    porn = [line for line in lines if "porn-a.png" in line][0].split()
    assert porn[1] == "malign" and float(porn[4]) > 0.9 and porn[5] == "porn"


def test_animation_row(tmp_path):
    path = media.save_animation(tmp_path / "anim.gif", media.animation_frames(canary_at=6), "GIF")
    done = veil("scan", str(path), "--format", "jsonl")
    row = json.loads(done.stdout)
    assert done.returncode == 1 and (row["frames"], row["worst_frame"]) == (8, 6)


def test_golden_results_for_a_small_folder(tmp_path):
    """Predictions and malign scores for a fixed folder stay what they were (LiteRT, int8)."""
    folder = _folder(tmp_path / "golden", SCAN_FOLDER_PHOTOS, SCAN_FOLDER_CANARIES)  # tests/make_golden.py writes its golden
    done = veil("scan", str(folder), "--format", "csv", "--threads", "2")
    rows = [(Path(r["file"]).name, r["prediction"], round(float(r["malign"]), 3)) for r in csv.DictReader(io.StringIO(done.stdout))]
    expected = json.loads((GOLDEN / "scan-folder.json").read_text())
    assert [(n, p) for n, p, _ in rows] == [(n, p) for n, p, _ in expected]
    for (name, _, got), (_, _, want) in zip(rows, expected):
        assert abs(got - want) <= 2 / 256, name


def test_scan_uses_profiles_from_the_config(tmp_path):
    folder = _folder(tmp_path / "f", 0, ("drawing-a",))
    config = tmp_path / "veil.toml"
    config.write_text("[agent]\nprofile = 'strict'\n[profiles.strict]\nmalign_classes = ['drawing']\nthreshold = 0.5\n")
    assert veil("scan", str(folder), "--config", str(config)).returncode == 1  # drawing counts here
    assert veil("scan", str(folder), "--config", str(config), "--profile", "child").returncode == 0


def test_action_log_appends_flagged_and_errors_to_a_verifiable_audit_log(tmp_path):
    folder = _folder(tmp_path / "f", 2, ("porn-b",))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    data = tmp_path / "data"
    config = tmp_path / "veil.toml"
    config.write_text(f"[agent]\ndata_dir = '{data}'\n")
    done = veil("scan", str(folder), "--action", "log", "--config", str(config), "--format", "csv")
    assert done.returncode == 1, done.stderr
    log = data / "audit" / "audit.csv"
    rows = list(csv.DictReader(log.open(newline="")))
    assert [(Path(r["subject"]).name, r["decision"], r["action"]) for r in rows] == [
        ("broken.png", "error", "none"), ("porn-b.png", "malign", "log")]
    import hashlib
    assert rows[1]["sha256"] == hashlib.sha256((folder / "porn-b.png").read_bytes()).hexdigest()
    assert rows[1]["profile"] == "child" and rows[1]["model"] == "nsfw-mobilenet-v2-int8" and float(rows[1]["malign"]) > 0.9
    verify = veil("audit", "verify", "--config", str(config))
    assert verify.returncode == 0 and "intact (2 rows)" in verify.stdout
    tail = veil("audit", "tail", "-n", "1", "--config", str(config))
    assert "porn-b.png" in tail.stdout and "malign log" in tail.stdout
    lines = log.read_text().splitlines(keepends=True)
    log.write_text(lines[0] + lines[2])  # delete the first row
    broken = veil("audit", "verify", "--config", str(config))
    assert broken.returncode == 1 and "row 1: prev_hash does not match" in broken.stderr
    assert veil("audit", "verify", str(tmp_path / "none.csv")).returncode == 2


def test_quarantine_end_to_end_with_a_pin(tmp_path):
    """scan --action quarantine → list → wrong PIN refused and audited → restore byte-identical."""
    import hashlib

    folder = _folder(tmp_path / "f", 1, ("porn-a",))
    original = (folder / "porn-a.png").read_bytes()
    data = tmp_path / "data"
    config = tmp_path / "veil.toml"
    config.write_text(f"[agent]\ndata_dir = '{data}'\n")
    cfg = ["--config", str(config)]
    done = veil("scan", str(folder), "--action", "quarantine", *cfg)
    assert done.returncode == 1, done.stderr
    assert not (folder / "porn-a.png").exists() and len(list(folder.iterdir())) == 1  # the benign photo stays
    assert veil("pin", "set", *cfg, env={"VEIL_PIN": "432143"}).returncode == 0
    listed = veil("quarantine", "list", "--format", "jsonl", *cfg, env={"VEIL_PIN": "432143"})
    assert listed.returncode == 0, listed.stderr
    [entry] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert entry["original"] == str(folder / "porn-a.png") and entry["profile"] == "child" and entry["malign"] > 0.9
    wrong = veil("quarantine", "restore", entry["id"], *cfg, env={"VEIL_PIN": "0000"})
    assert wrong.returncode == 2 and "wrong PIN" in wrong.stderr and not (folder / "porn-a.png").exists()
    no_pin = veil("quarantine", "restore", entry["id"], *cfg)  # no terminal, no VEIL_PIN
    assert no_pin.returncode == 2
    right = veil("quarantine", "restore", entry["id"], *cfg, env={"VEIL_PIN": "432143"})
    assert right.returncode == 0, right.stderr
    assert (folder / "porn-a.png").read_bytes() == original
    rows = list(csv.DictReader((data / "audit" / "audit.csv").open(newline="")))
    assert [(r["subject"].rsplit("/", 1)[-1], r["action"]) for r in rows if r["action"]] == [("porn-a.png", "quarantine"), ("porn-a.png", "restore")]
    assert rows[0]["sha256"] == hashlib.sha256(original).hexdigest()
    assert sum(r["subject"] == "pin-failed" for r in rows) == 2
    assert veil("audit", "verify", *cfg).returncode == 0


def test_blur_action_from_the_command_line(tmp_path):
    folder = _folder(tmp_path / "f", 0, ("sexy-b",))
    original = (folder / "sexy-b.png").read_bytes()
    config = tmp_path / "veil.toml"
    config.write_text(f"[agent]\ndata_dir = '{tmp_path / 'data'}'\n")
    assert veil("scan", str(folder), "--action", "blur", "--config", str(config)).returncode == 1
    assert (folder / "sexy-b.png").read_bytes() != original
    assert veil("scan", str(folder), "--config", str(config)).returncode == 0  # the stand-in is benign
    entry = json.loads(veil("quarantine", "list", "--format", "jsonl", "--config", str(config)).stdout)
    assert veil("quarantine", "restore", entry["id"], "--config", str(config)).returncode == 0
    assert (folder / "sexy-b.png").read_bytes() == original


def test_blur_of_a_collage_covers_the_flagged_cell_only(tmp_path):
    """A region decided: the stand-in blurs that part, the pictures away from it stay as they were,
    the audit row says where, and restoring brings back the original bytes."""
    import numpy as np
    from PIL import Image

    folder = tmp_path / "f"
    folder.mkdir()
    cells = [media.photo(name) for name in media.BENIGN[:3]]
    cells.insert(3, media.canary("porn-a"))  # bottom right
    media.collage(cells).save(folder / "collage.png")
    original = (folder / "collage.png").read_bytes()
    config = tmp_path / "veil.toml"
    config.write_text(f"[agent]\ndata_dir = '{tmp_path / 'data'}'\n")
    assert veil("scan", str(folder), "--action", "blur", "--config", str(config)).returncode == 1
    before = np.asarray(Image.open(io.BytesIO(original)).convert("RGB")).astype(int)
    after = np.asarray(Image.open(folder / "collage.png").convert("RGB")).astype(int)
    # The flagged area is the deciding tile and the tiles beside it that half-see the same picture;
    # the pictures on the left, well away from it, stay exactly as they were.
    assert np.array_equal(after[:, :480], before[:, :480])
    assert np.abs(after[660:, 660:] - before[660:, 660:]).mean() > 10  # the flagged cell, blurred
    rows = list(csv.DictReader((tmp_path / "data" / "audit" / "audit.csv").open(newline="")))
    blurred_row = next(r for r in rows if r["action"] == "blur")
    assert "region " in blurred_row["detail"], blurred_row
    entry = json.loads(veil("quarantine", "list", "--format", "jsonl", "--config", str(config)).stdout)
    assert veil("quarantine", "restore", entry["id"], "--config", str(config)).returncode == 0
    assert (folder / "collage.png").read_bytes() == original


def test_regions_can_be_turned_off_for_speed(tmp_path):
    """`--regions off` (or `[model] regions = false`) judges the whole picture only: the canary in
    one cell of a collage then passes, as it did before regions existed."""
    folder = tmp_path / "f"
    folder.mkdir()
    cells = [media.photo(name) for name in media.BENIGN[:3]]
    cells.insert(1, media.canary("porn-a"))
    media.collage(cells).save(folder / "collage.jpg", quality=90)
    assert veil("scan", str(folder)).returncode == 1
    assert veil("scan", str(folder), "--regions", "off").returncode == 0
    config = tmp_path / "veil.toml"
    config.write_text("[model]\nregions = false\n")
    assert veil("scan", str(folder), "--config", str(config)).returncode == 0
    assert veil("scan", str(folder), "--config", str(config), "--regions", "on").returncode == 1


def test_ctrl_c_leaves_output_that_says_it_is_partial(tmp_path):
    """Interrupted, the scan stops with 130 and its output's last line says it is cut short (as under --cluster)."""
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "many"
    folder.mkdir()
    photos = sorted(PHOTOS.glob("*.jpg"))
    for i in range(200):
        shutil.copy(photos[i % len(photos)], folder / f"{i:03d}.jpg")
    out = tmp_path / "out.jsonl"
    scan = subprocess.Popen([sys.executable, "-m", "agent", "scan", str(folder), "--format", "jsonl", "-o", str(out), "--threads", "1"],
                            env={**os.environ, "VEIL_CONFIG": "/nonexistent/veil.toml"}, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a background job inherits SIGINT ignored
    deadline = time.monotonic() + 60
    while scan.poll() is None and time.monotonic() < deadline and len(out.read_text().splitlines() if out.exists() else []) < 2:
        time.sleep(0.02)
    scan.send_signal(signal.SIGINT)
    _, stderr = scan.communicate(timeout=60)
    assert scan.returncode == 130 and "interrupted" in stderr, stderr
    *rows, last = [json.loads(line) for line in out.read_text().splitlines()]
    assert last == {"partial": True, "reason": "interrupted", "rows": len(rows)} and 0 < len(rows) < 200
