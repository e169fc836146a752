"""Sampling decodes only what its samples need (issue 20), and what it skips never changes a
sample: every sample is exactly the frame a full decode shows at that time, on B-pyramid H.264,
open-GOP HEVC and short GOPs, and the file is read once."""

import io
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from agent.sources import gops
from agent.sources.video import SampleRun, _to_pixels, sample_frames
from tests.video_media import make_video


def _full_decode(path: Path) -> dict[float, np.ndarray]:
    """Every frame of the file, decoded plainly (nothing skipped), as the sampler scales it."""
    frames = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            frames[round(float(frame.pts * stream.time_base), 3)] = _to_pixels(frame)
    return frames


@pytest.mark.parametrize("codec,gop_s,every", [
    ("libx264", 10.0, 1.0),   # long GOP, B-pyramid: decoded up to each GOP's last sample
    ("libx264", 10.0, 3.0),   # samples sparser than frames: most of each GOP is skipped
    ("libx264", 1.0, 1.0),    # a keyframe in every interval: keyframes only
    ("libx265", 2.5, 1.0),    # open GOP: leading pictures before each keyframe refer to skipped frames
    ("libx265", 2.5, 2.0),
])
def test_every_sample_is_the_frame_a_full_decode_shows(tmp_path, codec, gop_s, every):
    path = make_video(tmp_path / "v.mkv", seconds=16, fps=10, gop_s=gop_s, codec=codec, audio=False)
    truth = _full_decode(path)
    run = SampleRun()
    samples = list(sample_frames(path, every, run))
    assert len(samples) == int(np.ceil(16 / every))
    for i, sample in enumerate(samples):
        assert i * every <= sample.t < (i + 1) * every  # one per interval, in its own interval
        assert np.array_equal(sample.pixels, truth[sample.t]), f"sample at {sample.t}s differs from the decoded frame"
    assert run.packets_fed < run.packets_read  # something really was skipped


def test_a_long_gop_is_decoded_only_up_to_its_last_sample(tmp_path):
    path = make_video(tmp_path / "long.mp4", seconds=20, fps=10, gop_s=10.0, audio=False)
    every_second, every_five = SampleRun(), SampleRun()
    list(sample_frames(path, 1.0, every_second))
    list(sample_frames(path, 5.0, every_five))
    assert every_second.packets_read == every_five.packets_read == 200
    # each 10-s GOP is needed up to its sample at 9 s (1-s samples) or 5 s (5-s samples), plus
    # the few packets a decoder holds back to put B-frames in order
    assert 180 <= every_second.packets_fed <= 195
    assert 100 <= every_five.packets_fed <= 115
    assert every_second.info is not None and every_second.info.strategy == "sequential"


def test_keyframes_beyond_the_one_an_interval_needs_are_not_decoded(tmp_path):
    path = make_video(tmp_path / "short-gops.mp4", seconds=10, fps=10, gop_s=0.5, audio=False)
    run = SampleRun()
    samples = list(sample_frames(path, 1.0, run))
    assert [s.t for s in samples] == pytest.approx(list(range(10)))
    assert run.info is not None and run.info.keyframes == 20 and run.info.strategy == "keyframes"
    assert run.packets_fed == 10  # one keyframe a second, not two


class _CountingReader(io.RawIOBase):
    def __init__(self, data: bytes):
        self._data, self._pos, self.read_bytes = data, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = [offset, self._pos + offset, len(self._data) + offset][whence]
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:
        chunk = self._data[self._pos:self._pos + len(buffer)]
        buffer[:len(chunk)] = chunk
        self._pos += len(chunk)
        self.read_bytes += len(chunk)
        return len(chunk)


def test_the_file_is_read_once(tmp_path):
    path = make_video(tmp_path / "once.mp4", seconds=12, fps=10, gop_s=10.0)
    reader = _CountingReader(path.read_bytes())
    assert len(list(sample_frames(reader, 1.0))) == 12
    # one demuxing pass (an index pass before it read the file twice); probing rereads its start
    assert reader.read_bytes <= 1.3 * path.stat().st_size


def test_an_over_long_gop_is_decoded_in_parts_with_the_same_samples(tmp_path, monkeypatch):
    # a GOP longer than the lookahead (one keyframe in a whole file, as some screen recorders
    # write) is never held whole: it is handed on in parts, each decoded in full
    path = make_video(tmp_path / "one-gop.mp4", seconds=12, fps=10, gop_s=100.0, audio=False)
    whole = list(sample_frames(path, 1.0))
    monkeypatch.setattr(gops, "LOOKAHEAD_BYTES", path.stat().st_size // 10)
    run = SampleRun()
    parted = list(sample_frames(path, 1.0, run))
    assert [f.t for f in parted] == [f.t for f in whole]
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(parted, whole))
    assert run.packets_fed == run.packets_read  # no part knew where its GOP ends, so none was cut short


def test_a_raw_elementary_stream_without_times_is_sampled_by_frame_count(tmp_path, classifier):
    # a CCTV export's .h264: Annex B, no container, no packet or frame times at all
    from agent.policy import BUILTIN_PROFILES
    from agent.video import analyse_video
    from tests.video_media import tool

    mp4 = make_video(tmp_path / "cam.mp4", seconds=8, canary_seconds={4, 5}, fps=10, gop_s=2.0, audio=False)
    raw = tmp_path / "cam.h264"
    subprocess.run([tool("ffmpeg"), "-v", "error", "-i", str(mp4), "-c", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264", str(raw)],
                   check=True)
    with av.open(str(raw)) as container:
        assert all(p.pts is None and p.dts is None for p in container.demux(container.streams.video[0]) if p.size)
    report = analyse_video(raw, classifier, BUILTIN_PROFILES["child"])
    assert [s.t for s in report.samples] == pytest.approx(list(range(8)))
    assert report.duration_s == pytest.approx(8.0)
    assert [(round(g.start), round(g.end)) for g in report.segments] == [(4, 6)]
