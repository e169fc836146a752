"""Fixtures the agent's integration tests share."""

import pytest

from tests.agent_process import write_config


@pytest.fixture
def watched(tmp_path):
    """A watched ~/Downloads-like folder, the data dir, and a config for them (screen off)."""
    folder = tmp_path / "Downloads"
    folder.mkdir()
    return folder, tmp_path / "data", write_config(tmp_path, [folder])
