"""A real Ray cluster of separate nodes on this machine, for the ``--cluster`` tests and benchmark:
each node is ``ray start … --block`` in a session of its own, with its own temporary folder, so a
node and every process it starts (daemons, workers) can be stopped by one process-group id."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RAY = Path(sys.executable).with_name("ray")


def _start_node(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("w") as out:
        node = subprocess.Popen([str(RAY), "start", *args, "--disable-usage-stats", "--block"], stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    deadline = time.monotonic() + 90
    while "Ray runtime started" not in log.read_text():
        if node.poll() is not None or time.monotonic() > deadline:
            _stop_node(node)
            raise RuntimeError(f"ray start failed:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    return node


def group(pgid: int) -> list[int]:
    """Live processes of a process group (zombies left out: they are gone, only not yet reaped)."""
    members = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(pid))
    return members


def _stop_node(node: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, to the node's whole group (SIGTERM alone drains for up to 30 s)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(node.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + 5
        while group(node.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not group(node.pid):
            break
    node.wait(timeout=10)
    if group(node.pid):
        raise RuntimeError(f"ray processes left running: {group(node.pid)}")


@contextmanager
def ray_cluster(root: Path, cpus: list[int]) -> Iterator[dict[str, str]]:
    """A head and further nodes with these CPU counts; yields the environment a driver needs
    (``RAY_ADDRESS`` and the cluster's token). Every node is stopped on the way out, failing or not."""
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}
    nodes: list[subprocess.Popen] = []
    try:
        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        nodes.append(_start_node(["--head", "--port", str(port), "--num-cpus", str(cpus[0]), "--include-dashboard", "false",
                                  "--temp-dir", str(root / "n0")], root / "n0.log", env))
        found = re.search(r"ray start --address='([^']+)'", (root / "n0.log").read_text())
        if not found:
            raise RuntimeError((root / "n0.log").read_text()[-3000:])
        for i, n in enumerate(cpus[1:], 1):
            nodes.append(_start_node(["--address", found.group(1), "--num-cpus", str(n), "--temp-dir", str(root / f"n{i}")],
                                     root / f"n{i}.log", env))
        yield {**env, "RAY_ADDRESS": found.group(1)}
    finally:
        for node in reversed(nodes):
            _stop_node(node)
