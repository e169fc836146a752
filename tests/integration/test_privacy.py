"""Privacy as a test (issue 16): the agent, watching a folder and the screen, quarantines a
flagged picture and blurs a flagged window, traced by strace for every socket it opens. No
AF_INET or AF_INET6 socket may appear, and no file holding image data may be written anywhere
but the vault (sealed) and the user's own folder: HOME, TMPDIR and the data dir are searched by
content, not by name."""

import os
import re
import shutil
import signal
import time
from pathlib import Path

from tests.agent_process import Agent, audit_of, vault_entries, wait_until
from tests.conftest import require_tool
from tests.media import child_flagged_canaries
from tests.xserver import XServer

CANARY = child_flagged_canaries()[5]
# Image formats by their signature, wherever in a file it sits (a blob in a database, a cache entry)
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1", b"\xff\xd8\xff\xdb", b"GIF89a", b"GIF87a",
              b"WEBPVP8", b"ftypavif", b"ftypheic")


def _image_data_in(root: Path, skip: tuple[Path, ...]) -> list[str]:
    found = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            if any(path == s or s in path.parents for s in skip) or path.is_symlink():
                continue
            data = path.read_bytes()
            hits = [sig for sig in SIGNATURES if sig in data]
            if hits:
                found.append(f"{path}: {hits}")
    return found


def _stop_traced(agent: Agent) -> None:
    """SIGTERM to the agent under strace (strace itself would detach and leave it running)."""
    strace_pid = agent.proc.pid
    children = Path(f"/proc/{strace_pid}/task/{strace_pid}/children").read_text().split()
    for child in children:
        os.kill(int(child), signal.SIGTERM)
    agent.proc.wait(60)


def test_the_agent_opens_no_network_socket_and_writes_no_picture(tmp_path):
    strace = require_tool("strace", "strace")
    home, temp = tmp_path / "home", tmp_path / "tmp"
    downloads, data = home / "Downloads", home / ".local" / "share" / "veil"
    for folder in (downloads, temp):
        folder.mkdir(parents=True)
    config = home / "veil.toml"
    config.write_text(f'[agent]\ndata_dir = "{data}"\n'
                      '[profiles.child]\nactions = { folder = "quarantine", screen = "blur", video = "quarantine" }\n'
                      f'[[watch]]\npath = "{downloads}"\n[screen]\ninterval_s = 0.5\nmax_interval_s = 2.0\n')
    trace = tmp_path / "sockets.trace"
    server = XServer("1280x800")
    env = {**server.env, "HOME": str(home), "TMPDIR": str(temp), "XDG_CACHE_HOME": str(home / ".cache"),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local" / "share")}
    try:
        agent = Agent(config, env=env, prefix=(strace, "-f", "-qq", "-e", "trace=socket,socketpair", "-e", "signal=none",
                                               "-o", str(trace)))
        try:
            shutil.copy(CANARY, downloads / "x.png")
            viewer = server.show("640x480+200+100", CANARY)
            assert wait_until(lambda: server.mapped_overlays() == 1, 15), "no screen episode"
            assert wait_until(lambda: not (downloads / "x.png").exists(), 30)
            time.sleep(2)
            server.close(viewer)
            assert wait_until(lambda: any(r["source"] == "screen" for r in audit_of(data)), 20)
        finally:
            _stop_traced(agent)
    finally:
        server.stop()
    calls = trace.read_text().splitlines()
    assert any("socket(AF_UNIX" in c or "socketpair(AF_UNIX" in c for c in calls), "strace saw no socket at all: not traced?"
    network = [c for c in calls if re.search(r"socket(pair)?\((AF_INET|AF_INET6|AF_PACKET)\b", c)]
    assert not network, network
    assert len(vault_entries(data)) == 1
    for root in (home, temp):
        assert not _image_data_in(root, skip=(downloads, data / "quarantine")), _image_data_in(root, skip=(downloads, data / "quarantine"))
    sealed = vault_entries(data)[0].read_bytes()
    assert not any(sig in sealed for sig in SIGNATURES)  # even the vault holds it sealed, not in the clear
