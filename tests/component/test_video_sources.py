"""Sources users really have: rotated phone videos, variable frame rate, 10-bit, HEVC, VP9, odd
sizes, 4K and 8K. Each is checked against the truth of the fixture (canary seconds) and, for
orientation, against what the ffmpeg CLI shows."""

import numpy as np
import pytest

from agent.policy import BUILTIN_PROFILES
from agent.sources.video import sample_frames
from agent.video import analyse_video
from tests.video_media import ffmpeg_frame, make_video, with_rotation

CHILD = BUILTIN_PROFILES["child"]


def _quadrant_means(pixels: np.ndarray) -> np.ndarray:
    h, w = pixels.shape[0] // 2, pixels.shape[1] // 2
    return np.array([pixels[:h, :w].mean(), pixels[:h, w:].mean(), pixels[h:, :w].mean(), pixels[h:, w:].mean()])


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotation_metadata_is_applied_as_players_show_it(tmp_path, degrees):
    # a landscape source with a photo that is far from symmetric, then a stream copy that only
    # adds the container's rotation: Veil's sample must look like ffmpeg's (autorotating) frame
    plain = make_video(tmp_path / "plain.mp4", seconds=2, size=(320, 176), gop_s=1.0, audio=False)
    rotated = with_rotation(plain, tmp_path / f"rot{degrees}.mp4", degrees)
    ours = next(iter(sample_frames(rotated, 1.0))).pixels
    theirs = ffmpeg_frame(rotated, 0.0)
    unrotated = next(iter(sample_frames(plain, 1.0))).pixels
    assert np.abs(ours.astype(int) - theirs).mean() < 8
    # and the rotation really changed something the test can see
    assert np.abs(unrotated.astype(int) - theirs).mean() > 20
    assert np.allclose(_quadrant_means(ours), _quadrant_means(theirs), atol=8)


def test_variable_frame_rate_samples_each_second_and_finds_the_canary(tmp_path, classifier):
    path = make_video(tmp_path / "vfr.mp4", seconds=12, canary_seconds={6, 7}, fps=15, gop_s=10.0, vfr_seed=7)
    report = analyse_video(path, classifier, CHILD)
    assert len(report.samples) == 12
    assert all(int(s.t) == i for i, s in enumerate(report.samples))  # the first frame of each second
    assert [(round(g.start), round(g.end)) for g in report.segments] == [(6, 8)]


@pytest.mark.parametrize("codec,pix_fmt,container", [
    ("libx264", "yuv420p10le", "mp4"),   # 10-bit H.264 (High 10)
    ("libx265", "yuv420p10le", "mkv"),   # 10-bit HEVC, as phones record HDR
    ("libvpx-vp9", "yuv420p", "webm"),
])
def test_other_codecs_and_10_bit(tmp_path, classifier, codec, pix_fmt, container):
    path = make_video(tmp_path / f"v.{container}", seconds=8, canary_seconds={3, 4}, codec=codec, pix_fmt=pix_fmt, gop_s=2.0, audio=False)
    report = analyse_video(path, classifier, CHILD)
    assert len(report.samples) == 8
    assert [(round(g.start), round(g.end)) for g in report.segments] == [(3, 5)]


def test_odd_size(tmp_path, classifier):
    path = make_video(tmp_path / "odd.webm", seconds=6, canary_seconds={2}, codec="libvpx-vp9", size=(333, 187), gop_s=1.0, audio=False)
    frames = list(sample_frames(path, 1.0))
    assert len(frames) == 6 and all(f.pixels.shape == (224, 224, 3) for f in frames)
    report = analyse_video(path, classifier, CHILD)
    assert [(round(g.start), round(g.end)) for g in report.segments] == [(2, 3)]


@pytest.mark.parametrize("size,codec", [((3840, 2160), "libx264"), ((7680, 4320), "libx265")])
def test_4k_and_8k(tmp_path, classifier, size, codec):
    path = make_video(tmp_path / "big.mkv", seconds=3, canary_seconds={1}, fps=2, size=size, codec=codec, gop_s=1.0, audio=False)
    report = analyse_video(path, classifier, CHILD)
    assert report.strategy == "keyframes" and len(report.samples) == 3
    assert [(round(g.start), round(g.end)) for g in report.segments] == [(1, 2)]


def _second_halves(t: float) -> bool:
    """Flagged frames only in the second half of every second: where the first frame of each
    second, the old fixed sample, never falls."""
    return t % 1.0 >= 0.5


@pytest.mark.parametrize("gop_s,bframes,seconds", [
    (10.0, False, 12),  # long GOPs, every frame a reference: decoded in sequence
    (1.0, True, 40),  # one keyframe a second: keyframe mode, the in-between frames decoded for random GOPs only
])
def test_frames_placed_between_the_fixed_samples_are_found_by_unpredictable_sampling(tmp_path, classifier, gop_s, bframes, seconds):
    path = make_video(tmp_path / "crafted.mp4", seconds, fps=10, gop_s=gop_s, bframes=bframes, audio=False, canary_at=_second_halves)
    fixed = analyse_video(path, classifier, CHILD)
    assert not fixed.segments  # the crafted file beats the predictable samples...
    assert all(s.t % 1.0 < 0.5 for s in fixed.samples)
    report = analyse_video(path, classifier, CHILD, unpredictable=True)
    assert report.segments  # ...not the unpredictable ones
    flagged = [s.t for s in report.samples if s.flagged]
    assert flagged and all(t % 1.0 >= 0.5 for t in flagged)


def test_unpredictable_samples_differ_from_run_to_run_and_cover_every_second(tmp_path):
    path = make_video(tmp_path / "plain.mp4", 10, fps=25, gop_s=10.0, audio=False)
    runs = [[f.t for f in sample_frames(path, 1.0, unpredictable=True)] for _ in range(3)]
    for times in runs:
        assert {int(t) for t in times} == set(range(10))  # every interval still has its sample
    assert len({tuple(times) for times in runs}) > 1
