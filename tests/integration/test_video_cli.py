"""``veil video`` and videos met by ``veil scan``, as a user runs them."""

import csv
import io
import json

import pytest

from tests.integration.test_cli import veil
from tests.video_media import make_audio_only, make_video


def test_video_json_report(tmp_path):
    path = make_video(tmp_path / "v.mp4", seconds=10, canary_seconds={4, 5}, gop_s=1.0)
    done = veil("video", str(path))
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert set(report) >= {"file", "duration_s", "every_s", "profile", "samples", "segments", "flagged_s", "elapsed_s"}
    assert report["profile"] == "child" and report["every_s"] == 1.0 and len(report["samples"]) == 10
    assert set(report["samples"][0]["scores"]) == {"drawing", "hentai", "neutral", "porn", "sexy"}
    [segment] = report["segments"]
    assert (round(segment["start"]), round(segment["end"]), segment["label"]) == (4, 6, "porn")
    assert report["flagged_s"] == segment["end"] - segment["start"]


def test_video_tag_format_and_output_file(tmp_path):
    path = make_video(tmp_path / "movie.mp4", seconds=8, canary_seconds={2}, gop_s=1.0)
    out = tmp_path / "movie.tag"
    done = veil("video", str(path), "--format", "tag", "-o", str(out), "--profile", "teen")
    assert done.returncode == 1 and done.stdout == ""
    lines = out.read_text().splitlines()
    assert lines[0] == "movie.mp4, porn, hentai"
    total, porn, hentai = (float(x) for x in lines[1].split(","))
    assert abs(total - 8) < 0.5 and porn == 1.0 and hentai == 0.0
    label, start, end, score, coverage = (x.strip() for x in lines[2].split(","))
    assert (label, float(start), float(end), float(coverage)) == ("porn", 2.0, 3.0, 1.0) and float(score) > 0.8


def test_video_errors_and_exit_codes(tmp_path):
    benign = make_video(tmp_path / "b.mp4", seconds=4, gop_s=1.0)
    assert veil("video", str(benign)).returncode == 0
    audio = veil("video", str(make_audio_only(tmp_path / "a.m4a")))
    assert audio.returncode == 3 and audio.stderr.strip().endswith("no video stream")
    assert len(audio.stderr.strip().splitlines()) == 1
    assert veil("video", str(benign), "--every", "0").returncode == 2
    keep = veil("video", str(benign), "--keep", str(tmp_path / "k.mp4"))
    assert keep.returncode == 0 and "nothing flagged" in keep.stderr and not (tmp_path / "k.mp4").exists()


def test_scan_gives_videos_one_row(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    make_video(folder / "clip.mp4", seconds=6, canary_seconds={3}, gop_s=1.0)
    make_video(folder / "calm.mkv", seconds=5, gop_s=1.0, audio=False)
    done = veil("scan", str(folder), "--format", "csv")
    assert done.returncode == 1, done.stderr
    rows = {r["file"].rsplit("/", 1)[-1]: r for r in csv.DictReader(io.StringIO(done.stdout))}
    assert rows["clip.mp4"]["prediction"] == "malign" and rows["clip.mp4"]["frames"] == "6" and rows["clip.mp4"]["worst_frame"] == "3"
    assert rows["calm.mkv"]["prediction"] == "benign" and rows["calm.mkv"]["frames"] == "5"


def test_cut_keep_and_blur_outputs_from_the_command_line(tmp_path):
    import av

    path = make_video(tmp_path / "v.mp4", seconds=10, canary_seconds={4, 5}, gop_s=1.0)
    outs = {name: tmp_path / f"{name}.mp4" for name in ("cut", "keep", "blur")}
    done = veil("video", str(path), "--cut", str(outs["cut"]), "--keep", str(outs["keep"]), "--blur", str(outs["blur"]))
    assert done.returncode == 1, done.stderr
    lengths = {}
    for name, out in outs.items():
        with av.open(str(out)) as container:
            lengths[name] = sum(1 for _ in container.decode(video=0)) / 10
    assert lengths["blur"] == pytest.approx(10, abs=0.2)
    assert lengths["cut"] + lengths["keep"] == pytest.approx(10, abs=0.3)
    rescan = veil("scan", str(outs["cut"]), str(outs["blur"]), "--format", "csv")
    assert rescan.returncode == 0, rescan.stdout  # nothing flagged left in either copy
