"""``--cluster ADDRESS`` parsing and the cluster scan's progress line (no Ray needed for either)."""

from pathlib import Path

import pytest

from agent.cluster import ClusterAddress, ClusterProgress, parse_address
from agent.errors import FatalError
from agent.scan import ScanResult


def test_addresses():
    assert parse_address("auto") == ClusterAddress("auto")
    assert parse_address("local[3]") == ClusterAddress("local", 3)
    assert parse_address("local").address == "local" and (parse_address("local").cpus or 0) >= 1
    assert parse_address("10.0.0.5:6379") == ClusterAddress("10.0.0.5:6379")
    assert parse_address("ray://head:10001") == ClusterAddress("ray://head:10001")
    for bad in ("local[0]", " "):
        with pytest.raises(FatalError):
            parse_address(bad)


def test_progress_counts_against_what_the_walk_has_found(capsys):
    progress = ClusterProgress(enabled=True)
    progress.walked(512, done=False)
    progress.update(ScanResult(Path("a.jpg"), "error", 1.0, error="corrupt"))
    assert "1/512+ files" in capsys.readouterr().err
    progress.walked(600, done=True)
    progress.update(ScanResult(Path("b.jpg"), "benign", 1.0))
    line = capsys.readouterr().err
    assert "2/600 files" in line and "files/s" in line and "1 unreadable" in line
