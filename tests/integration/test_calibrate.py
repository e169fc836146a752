"""``veil calibrate`` on real benign photos and canaries (a dry run, as a parent would make one)."""

import re
import shutil
import tomllib

import numpy as np
from PIL import Image

from agent.config import example_text
from tests.agent_process import audit_of, run_veil
from tests.conftest import PHOTOS

PIN = "246824"
CANARIES = PHOTOS.parent / "canaries"


def test_calibrate_charts_reports_and_writes_the_threshold_only_with_the_pin(tmp_path):
    benign, flagged = tmp_path / "family photos", tmp_path / "to flag"
    (benign / "2019").mkdir(parents=True)
    flagged.mkdir()
    for n, photo in enumerate(sorted(PHOTOS.glob("*.jpg"))[:40]):
        shutil.copyfile(photo, benign / ("2019" if n % 2 else "") / photo.name)  # recursively
    for canary in sorted(CANARIES.glob("*-[abc].png")):
        shutil.copyfile(canary, flagged / canary.name)
    (benign / "notes.txt").write_text("not a picture")
    config = tmp_path / "config.toml"
    config.write_text(example_text().replace('data_dir = ""', f'data_dir = "{tmp_path / "data"}"', 1))
    assert run_veil("pin", "set", "--config", str(config), env={"VEIL_PIN": PIN}).returncode == 0
    out = tmp_path / "out"

    done = run_veil("calibrate", str(benign), str(flagged), "--config", str(config), "-o", str(out), "--max-false-alarms", "5%")
    assert done.returncode == 0, done.stderr
    assert f"40 benign and {len(list(flagged.iterdir()))} pictures to flag" in done.stdout
    assert "only as good as the folders given" in done.stdout
    child = re.search(r"^child +AUC (\d\.\d+); at its threshold 0\.30: .*threshold (\d\.\d+) \((\d+\.\d)% false alarms", done.stdout, re.M)
    assert child, done.stdout
    assert 0.5 < float(child[1]) <= 1.0 and float(child[3]) <= 5.0  # separates better than chance; the rate asked for holds
    chart = np.asarray(Image.open(out / "calibration.png").convert("L"))
    assert chart.shape[1] > 800 and chart.std() > 20  # a drawn figure
    page = (out / "calibration.html").read_text()
    assert "<svg" in page and "only as good as the folders given" in page and "<script" not in page

    before = config.read_text()
    refused = run_veil("calibrate", str(benign), str(flagged), "--config", str(config), "-o", str(out), "--write")
    assert refused.returncode == 2 and config.read_text() == before
    written = run_veil("calibrate", str(benign), str(flagged), "--config", str(config), "-o", str(out), "--max-false-alarms", "5%",
                       "--write", env={"VEIL_PIN": PIN})
    assert written.returncode == 0, written.stderr
    threshold = tomllib.loads(config.read_text())["profiles"]["child"]["threshold"]
    assert abs(threshold - float(child[2])) < 0.01
    assert "# active profile: child, teen, adult, or one of yours below" in config.read_text()  # comments kept
    assert run_veil("config", "check", str(config)).returncode == 0
    rows = [r["detail"] for r in audit_of(tmp_path / "data") if r["subject"] == "config"]
    assert any(r.startswith("calibrate: profile child threshold ") for r in rows)


def test_calibrate_says_what_is_wrong_with_its_folders(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = run_veil("calibrate", str(tmp_path / "nope"), str(empty))
    assert missing.returncode == 2 and "not a folder" in missing.stderr
    nothing = run_veil("calibrate", str(empty), str(CANARIES))
    assert nothing.returncode == 2 and "need pictures in both folders" in nothing.stderr
