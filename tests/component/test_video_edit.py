"""Cut, kept and blurred copies, checked frame by frame with the model and for audio length."""

import av
import numpy as np
import pytest

from agent.actions.video_edit import complement, widen, write_edit
from agent.policy import BUILTIN_PROFILES, decide
from agent.video import analyse_video
from tests.video_media import ffmpeg_decode_errors, ffprobe, make_video

CHILD = BUILTIN_PROFILES["child"]


@pytest.fixture(scope="module")
def source(tmp_path_factory, classifier):
    path = make_video(tmp_path_factory.mktemp("v") / "src.mp4", seconds=14, canary_seconds={5, 6, 7}, gop_s=10.0)
    report = analyse_video(path, classifier, CHILD)
    return path, report, widen([(g.start, g.end) for g in report.segments], 1.0, report.duration_s)


def _frames_and_audio(path):
    """Every video frame's child decision, the video duration, and the audio duration."""
    with av.open(str(path)) as container:
        frames = [f.reformat(width=224, height=224, format="rgb24", interpolation="AREA").to_ndarray() for f in container.decode(video=0)]
        v = container.streams.video[0]
        video_s = float(v.duration * v.time_base) if v.duration else len(frames) / float(v.average_rate)
    audio_samples, rate = 0, 1
    with av.open(str(path)) as container:
        if container.streams.audio:
            for frame in container.decode(audio=0):
                audio_samples += frame.samples
                rate = frame.sample_rate
    return frames, video_s, audio_samples / rate


def _plays_in_standard_players(path, video_s):
    """ffprobe finds an H.264 video and an AAC audio stream of the expected length, frames count,
    and the ffmpeg CLI decodes every packet of both without a complaint."""
    probe = ffprobe(path)
    streams = {s["codec_type"]: s for s in probe["streams"]}
    assert streams["video"]["codec_name"] == "h264" and streams["video"]["pix_fmt"] == "yuv420p"
    assert streams["audio"]["codec_name"] == "aac"
    assert int(streams["video"]["nb_read_frames"]) > 0
    assert float(probe["format"]["duration"]) == pytest.approx(video_s, abs=0.3)
    assert ffmpeg_decode_errors(path) == ""


def _flagged(classifier, frames):
    return [decide(s, CHILD).flagged for s in classifier.classify(np.stack(frames))]


def test_widen_and_complement():
    assert widen([(5.0, 8.0), (9.0, 10.0)], 1.0, 12.0) == [(4.0, 10.0)]
    assert complement([(4.0, 10.0)], 12.0) == [(0.0, 4.0), (10.0, 12.0)]


def test_cut_copy_has_no_flagged_frame_and_audio_in_sync(tmp_path, classifier, source):
    src, report, flagged = source
    out = tmp_path / "cut.mp4"
    write_edit(src, out, drop=flagged)
    frames, video_s, audio_s = _frames_and_audio(out)
    removed = sum(e - s for s, e in flagged)
    assert video_s == pytest.approx(report.duration_s - removed, abs=0.25)
    assert audio_s == pytest.approx(video_s, abs=0.15)
    assert not any(_flagged(classifier, frames))
    _plays_in_standard_players(out, video_s)


def test_keep_copy_holds_only_the_segments(tmp_path, classifier, source):
    src, _, flagged = source
    out = tmp_path / "keep.mp4"
    write_edit(src, out, drop=complement(flagged, 14.0))
    frames, video_s, audio_s = _frames_and_audio(out)
    assert video_s == pytest.approx(sum(e - s for s, e in flagged), abs=0.25)
    assert audio_s == pytest.approx(video_s, abs=0.15)
    assert sum(_flagged(classifier, frames)) >= 25  # the three canary seconds at 10 fps
    _plays_in_standard_players(out, video_s)


def test_blur_copy_keeps_length_and_everything_else(tmp_path, classifier, source):
    src, report, flagged = source
    out = tmp_path / "blur.mp4"
    write_edit(src, out, blur=flagged)
    frames, video_s, audio_s = _frames_and_audio(out)
    original, _, _ = _frames_and_audio(src)
    assert len(frames) == len(original) and video_s == pytest.approx(report.duration_s, abs=0.25)
    assert audio_s == pytest.approx(video_s, abs=0.15)
    assert not any(_flagged(classifier, frames))
    _plays_in_standard_players(out, video_s)
    untouched = [i for i in range(len(frames)) if not any(s <= i / 10 < e for s, e in flagged)]
    diff = np.mean([np.abs(frames[i].astype(int) - original[i].astype(int)).mean() for i in untouched])
    assert diff < 6  # outside the segments only re-encoding differences
