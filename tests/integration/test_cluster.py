"""``veil scan --cluster`` on a real Ray cluster of two nodes started here (issue 21): a head and a
second node of one CPU each, in temporary folders of their own, stopped at the end even when a
test fails. No mocks: real workers, a real SIGKILL, a real SIGINT."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CANARIES, PHOTOS, REPO
from tests.ray_cluster import ray_cluster
from tests.video_media import make_video

pytest.importorskip("ray", reason="Ray is the [cluster] extra: pip install -e '.[cluster]'")

SCAN_TIMEOUT = 180


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[dict[str, str]]:
    """Two nodes of one CPU each; the environment a driver needs to reach them."""
    with ray_cluster(tmp_path_factory.mktemp("ray"), [1, 1]) as env:
        yield env


def _veil(*args: str, env: dict[str, str] | None = None, **popen) -> subprocess.CompletedProcess:
    full_env = {**(env or os.environ), "VEIL_CONFIG": "/nonexistent/veil.toml"}
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True, env=full_env, cwd=REPO,
                          timeout=SCAN_TIMEOUT, **popen)


def _rows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _without_latency(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "latency_ms"} for row in rows]


@pytest.fixture(scope="module")
def many_photos(tmp_path_factory) -> Path:
    """Enough stills that two one-CPU nodes take some seconds: time to kill a worker or press Ctrl-C."""
    folder = tmp_path_factory.mktemp("many")
    photos = sorted(PHOTOS.glob("*.jpg"))
    for i in range(160):
        shutil.copy(photos[i % len(photos)], folder / f"{i:03d}-{photos[i % len(photos)].name}")
    return folder


def _judging(pattern: str = "ray::judge_chunk") -> list[int]:
    """Ray worker processes busy judging (Ray sets a worker's title to the task it runs)."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except (OSError, ValueError):
            continue
        if title.startswith(pattern):
            found.append(int(pid))
    return found


def test_rows_audit_and_exit_code_are_those_of_the_local_scan(cluster, tmp_path):
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    for photo in sorted(PHOTOS.glob("*.jpg"))[:10]:
        shutil.copy(photo, folder / photo.name)
    for name in ("porn-a", "hentai-a", "sexy-a", "drawing-a"):
        shutil.copy(CANARIES / f"{name}.png", folder / "sub" / f"{name}.png")
    make_video(folder / "sub" / "clip.mp4", seconds=4, canary_seconds={2}, gop_s=1.0)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (folder / "notes.txt").write_text("passed over, not media")
    runs = {}
    for where in ("local", "cluster"):
        data = tmp_path / f"data-{where}"
        config = tmp_path / f"{where}.toml"
        config.write_text(f"[agent]\ndata_dir = '{data}'\n")
        extra = ("--cluster", "auto") if where == "cluster" else ()
        done = _veil("scan", str(folder), "--format", "jsonl", "--action", "log", "--config", str(config), *extra, env=cluster)
        audit = (data / "audit" / "audit.csv").read_text().splitlines()
        assert done.returncode == 1, done.stderr  # canaries flagged, on both
        runs[where] = (_rows(done.stdout), [line.split(",")[2:4] + line.split(",")[8:10] for line in audit])  # subject, sha256, decision, action
    (local_rows, local_audit), (rows, audit) = runs["local"], runs["cluster"]
    assert len(rows) == 16 and any(r["file"].endswith("clip.mp4") and r["frames"] == 4 for r in rows)
    assert _without_latency(rows) == _without_latency(local_rows)
    assert audit == local_audit and len(audit) == 1 + 5  # header, the broken file, three canaries and the video


def test_a_worker_killed_mid_scan_is_retried_without_losing_or_repeating_rows(cluster, many_photos, tmp_path):
    local = _veil("scan", str(many_photos), "--format", "jsonl", "--regions", "off")
    out = tmp_path / "out.jsonl"
    scan = subprocess.Popen([sys.executable, "-m", "agent", "scan", str(many_photos), "--format", "jsonl", "--regions", "off",
                             "-o", str(out), "--cluster", cluster["RAY_ADDRESS"]], cwd=REPO, env={**cluster, "VEIL_CONFIG": "/none"},
                            stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and scan.poll() is None and time.monotonic() < deadline:
        busy = _judging()
        if busy:
            os.kill(busy[0], signal.SIGKILL)
            killed = busy[0]
        time.sleep(0.05)
    _, stderr = scan.communicate(timeout=SCAN_TIMEOUT)
    assert killed is not None, "no worker was seen judging"
    assert scan.returncode == local.returncode, stderr
    rows = _rows(out.read_text())
    assert [r["file"] for r in rows] == sorted({r["file"] for r in rows})  # in path order, each once
    assert _without_latency(rows) == _without_latency(_rows(local.stdout))


def test_files_whose_workers_die_every_time_become_error_rows_not_a_hung_scan(cluster, tmp_path):
    """Every worker that starts judging is SIGKILLed, as if each file crashed it: the chunk is
    retried, split into a task per file, each retried once, and then each file is an error row."""
    folder = tmp_path / "doomed"
    folder.mkdir()
    for photo in sorted(PHOTOS.glob("*.jpg"))[:2]:
        shutil.copy(photo, folder / photo.name)
    out = tmp_path / "out.jsonl"
    scan = subprocess.Popen([sys.executable, "-m", "agent", "scan", str(folder), "--format", "jsonl", "-o", str(out), "--cluster", "auto"],
                            cwd=REPO, env={**cluster, "VEIL_CONFIG": "/none"}, stderr=subprocess.PIPE, text=True)
    kills = 0
    deadline = time.monotonic() + SCAN_TIMEOUT
    while scan.poll() is None and time.monotonic() < deadline:
        for pid in _judging():
            try:
                os.kill(pid, signal.SIGKILL)
                kills += 1
            except ProcessLookupError:
                pass
        time.sleep(0.005)
    _, stderr = scan.communicate(timeout=60)
    assert scan.returncode == 3, stderr  # nothing flagged, two files unreadable
    rows = _rows(out.read_text())
    assert [Path(r["file"]).name for r in rows] == sorted(p.name for p in folder.iterdir())
    assert {r["error"] for r in rows} == {"the worker judging it died twice (killed, or crashed on this file)"}
    assert kills >= 2 + 2 * 2  # the chunk twice, then each file twice (a dying process may be counted twice)


def _default_sigint() -> None:
    # A shell's background job (CI steps often are) inherits SIGINT ignored, and so would the scan.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_cancels_the_job_and_marks_the_output_partial(cluster, many_photos, tmp_path):
    out = tmp_path / "out.csv"
    scan = subprocess.Popen([sys.executable, "-m", "agent", "scan", str(many_photos), "--format", "csv", "-o", str(out),
                             "--cluster", "auto"], cwd=REPO, env={**cluster, "VEIL_CONFIG": "/none"}, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    deadline = time.monotonic() + 90
    while scan.poll() is None and time.monotonic() < deadline and len(out.read_text().splitlines() if out.exists() else []) < 3:
        time.sleep(0.05)
    assert scan.poll() is None, "the scan ended before it could be interrupted"
    scan.send_signal(signal.SIGINT)
    _, stderr = scan.communicate(timeout=60)
    assert scan.returncode == 130 and "interrupted" in stderr, stderr
    lines = out.read_text().splitlines()
    assert re.fullmatch(r"# partial: interrupted after \d+ rows", lines[-1])
    assert int(lines[-1].split()[-2]) == len(lines) - 2 < 160  # header and marker around the rows written
    deadline = time.monotonic() + 15
    while _judging() and time.monotonic() < deadline:  # cancelled, so nothing goes on judging
        time.sleep(0.2)
    assert not _judging()


def test_a_file_a_worker_cannot_open_is_one_line_naming_it_and_the_node(cluster, tmp_path):
    link = tmp_path / "gone.jpg"
    link.symlink_to(tmp_path / "nowhere.jpg")  # the walk finds it; no node can open it
    done = _veil("scan", str(link), "--format", "jsonl", "--cluster", "auto", env=cluster)
    assert done.returncode == 3, done.stderr
    (row,) = _rows(done.stdout)
    assert row["prediction"] == "error" and re.match(r"cannot be read on node \S+: file vanished", row["error"])
    (line,) = [line for line in done.stderr.splitlines() if "gone.jpg" in line]
    assert re.search(r"gone\.jpg: cannot be read on node \S+: .*shared mount", line)


def test_moving_actions_and_bad_addresses_are_refused_in_one_line(tmp_path):
    for args in (("--action", "quarantine", "--cluster", "auto"), ("--action", "blur", "--cluster", "local[2]"), ("--cluster", "local[0]")):
        done = _veil("scan", str(tmp_path), *args)
        assert done.returncode == 2 and done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1 and "--" in done.stderr, done.stderr
    assert "runs only on this machine" in _veil("scan", str(tmp_path), "--action", "quarantine", "--cluster", "auto").stderr
