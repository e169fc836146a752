"""veil video's sampling and segments on real encoded videos (PyAV fixtures)."""

import pytest

from agent.policy import BUILTIN_PROFILES
from agent.sources.video import VideoError, sample_frames
from agent.video import analyse_video
from tests.video_media import make_audio_only, make_video

CHILD = BUILTIN_PROFILES["child"]


@pytest.mark.parametrize("gop_s,bframes,strategy", [(10.0, True, "sequential"), (1.0, True, "keyframes"), (10.0, False, "sequential")])
def test_canary_seconds_become_one_segment(tmp_path, classifier, gop_s, bframes, strategy):
    path = make_video(tmp_path / "v.mp4", seconds=14, canary_seconds={5, 6, 7}, gop_s=gop_s, bframes=bframes)
    report = analyse_video(path, classifier, CHILD, every=1.0)
    assert report.strategy == strategy
    assert abs(report.duration_s - 14) < 0.5
    assert [s.t for s in report.samples] == pytest.approx(list(range(14)), abs=0.11)
    assert len(report.segments) == 1
    segment = report.segments[0]
    assert abs(segment.start - 5) <= 1 and abs(segment.end - 8) <= 1  # within ±1 sample of the truth
    assert segment.label == "porn" and segment.score > 0.8 and segment.coverage == 1.0
    assert report.flagged_s == pytest.approx(segment.end - segment.start)


def test_benign_video_has_no_segment(tmp_path, classifier):
    report = analyse_video(make_video(tmp_path / "b.mp4", seconds=9), classifier, CHILD)
    assert report.segments == [] and len(report.samples) == 9 and all(not s.flagged for s in report.samples)


def test_gaps_of_two_samples_are_bridged(tmp_path, classifier):
    path = make_video(tmp_path / "g.mp4", seconds=16, canary_seconds={3, 4, 7, 8, 13}, gop_s=1.0)
    report = analyse_video(path, classifier, CHILD)
    spans = [(round(s.start), round(s.end)) for s in report.segments]
    assert spans == [(3, 9), (13, 14)]  # 5,6 bridged (gap of two); 9..12 not (gap of four)
    assert report.segments[0].coverage == pytest.approx(4 / 6)


def test_every_two_seconds(tmp_path, classifier):
    report = analyse_video(make_video(tmp_path / "e.mp4", seconds=10, gop_s=2.0), classifier, CHILD, every=2.0)
    assert [round(s.t) for s in report.samples] == [0, 2, 4, 6, 8]


def test_truncated_stream_classifies_what_decodes(tmp_path, classifier):
    full = make_video(tmp_path / "full.mkv", seconds=12, canary_seconds={2, 3}, gop_s=1.0, audio=False)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    report = analyse_video(cut, classifier, CHILD)
    assert 3 <= len(report.samples) < 12
    assert [round(s.start) for s in report.segments] == [2]


def test_bad_videos_fail_clearly(tmp_path):
    with pytest.raises(VideoError, match="no video stream"):
        list(sample_frames(make_audio_only(tmp_path / "a.m4a"), 1.0))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 100)
    with pytest.raises(VideoError) as err:
        list(sample_frames(junk, 1.0))
    assert "\n" not in str(err.value)
    with pytest.raises(VideoError, match="vanished"):
        list(sample_frames(tmp_path / "none.mp4", 1.0))
