"""`veil run --keep-alive`: how long a killed agent leaves the machine unprotected.

    python benchmarks/bench_keeper.py [--trials 10]

The keeper runs ``veil run --no-tray`` on one watched folder; each trial SIGKILLs the agent
and times, from outside, until the new agent's start-up line ("protecting with profile …"),
and then until a canary written right after that line is quarantined. The keeper waits 2 s
before a restart (like the systemd unit's RestartSec=2); the rest is the agent's start-up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.agent_process import Agent, wait_until, write_config  # noqa: E402
from tests.conftest import CANARIES  # noqa: E402
from tests.media import machine_line  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp) / "Downloads"
        folder.mkdir()
        keeper = Agent(write_config(Path(temp), [folder]), args=("--keep-alive",))
        to_start, to_protect = [], []
        try:
            for trial in range(args.trials):
                time.sleep(3)
                agent = int(Path(f"/proc/{keeper.proc.pid}/task/{keeper.proc.pid}/children").read_text().split()[0])
                starts = sum("protecting with profile" in line for line in keeper.lines)
                killed = time.monotonic()
                os.kill(agent, signal.SIGKILL)
                wait_until(lambda n=starts: sum("protecting with profile" in line for line in keeper.lines) > n, 60, every=0.01)
                to_start.append(time.monotonic() - killed)
                canary = folder / f"canary-{trial}.png"
                shutil.copy(CANARIES / "porn-a.png", canary)
                wait_until(lambda c=canary: not c.exists(), 60, every=0.01)
                to_protect.append(time.monotonic() - killed)
        finally:
            child = Path(f"/proc/{keeper.proc.pid}/task/{keeper.proc.pid}/children").read_text().split()
            keeper.stop()
            for pid in child:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
    print(f"SIGKILL → new agent's start-up line, {args.trials} trials: median {statistics.median(to_start):.2f} s, "
          f"max {max(to_start):.2f} s")
    print(f"SIGKILL → a canary written then is quarantined: median {statistics.median(to_protect):.2f} s, max {max(to_protect):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
