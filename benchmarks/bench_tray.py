"""What the tray icon costs and how quickly it answers, measured from outside the agent under
Xvfb (1280×800) with Debian's trayer as the system tray.

    python benchmarks/bench_tray.py [--seconds 60] [--trials 20]

1. Idle CPU and peak RSS: `veil run --no-tray` and `veil run` (icon docked), one after the other
   in the same run, same config (five watched folders, screen sampling off), nothing happening.
2. Click → menu: from the moment a real click on the icon completes (its release, sent through
   XTest, the X server's own input injection, on a connection of the benchmark's) to the moment
   the X server reports Tk's pop-up menu mapped (a MapNotify event on the root window, read as it arrives: no poller);
   a click elsewhere closes it before the next trial.
3. A canary file written into a watched folder → the icon's title says "blocked".
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_agent import _cpu_share, _peak_rss_mb  # noqa: E402
from tests.agent_process import Agent, wait_until, write_config  # noqa: E402
from tests.media import child_flagged_canaries, machine_line  # noqa: E402
from tests.xserver import XServer  # noqa: E402


class MapWatcher:
    """Clicks through XTest and times, on the same connection, until the X server reports a
    window of a given class mapped: both ends of the interval are the X server's own events."""

    def __init__(self, display_name: str):
        import Xlib.display
        from Xlib import X

        self.display = Xlib.display.Display(display_name)
        self.root = self.display.screen().root
        self.root.change_attributes(event_mask=X.SubstructureNotifyMask)  # maps of the root's children
        self.display.sync()

    def click(self, at: tuple[int, int]) -> float:
        from Xlib import X
        from Xlib.ext import xtest

        xtest.fake_input(self.display, X.MotionNotify, x=at[0], y=at[1])
        self.display.sync()
        while self.display.pending_events():
            self.display.next_event()  # what came before the click is not an answer to it
        xtest.fake_input(self.display, X.ButtonPress, 1)
        self.display.flush()
        time.sleep(0.03)  # a finger's press
        sent = time.perf_counter()  # the icon answers the release: the click is complete here
        xtest.fake_input(self.display, X.ButtonRelease, 1)
        self.display.flush()
        return sent

    def click_until_mapped(self, at: tuple[int, int], wm_class: str, timeout: float = 10.0) -> float | None:
        import select

        from Xlib import X

        sent = self.click(at)
        while time.perf_counter() - sent < timeout:
            if not self.display.pending_events():
                select.select([self.display], [], [], 0.5)
                continue
            event = self.display.next_event()
            if event.type == X.MapNotify:
                arrived = time.perf_counter()
                names = event.window.get_wm_class() or ()
                if wm_class in names:
                    return arrived - sent
        return None

    def close(self) -> None:
        self.display.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    print(machine_line())
    server = XServer("1280x800")
    server.start_tray_host()
    try:
        with tempfile.TemporaryDirectory() as temp:
            root = Path(temp)
            folders = [root / f"folder{i}" for i in range(5)]
            for folder in folders:
                folder.mkdir()
            config = write_config(root, folders)
            idle = {}
            for mode in ("--no-tray", "tray"):
                agent = Agent(config, env=server.env, tray=mode == "tray")
                try:
                    if mode == "tray" and not wait_until(lambda: (icon := server.tray_icon()) is not None and icon.docked, 30):
                        print("the icon did not dock", agent.lines)
                        return 1
                    time.sleep(5)
                    idle[mode] = _cpu_share(agent.proc.pid, args.seconds)
                    print(f"veil run {mode if mode != 'tray' else '(tray icon docked)'}: idle CPU {idle[mode]:.2f} % of one core "
                          f"over {args.seconds:.0f} s; peak RSS {_peak_rss_mb(agent.proc.pid):.0f} MB", flush=True)
                    if mode != "tray":
                        continue
                    times = []
                    watcher = MapWatcher(server.display)
                    for trial in range(args.trials):
                        took = watcher.click_until_mapped(server.tray_icon().centre, "Menu")
                        if took is not None:
                            times.append(took)
                        else:
                            print(f"trial {trial}: no menu", flush=True)
                        server.click(640, 700)  # a click elsewhere closes it
                        wait_until(lambda: server.mapped("Menu") == 0, 10, every=0.05)
                        time.sleep(0.5)
                    watcher.close()
                    times.sort()
                    p50, p95 = times[len(times) // 2], times[max(0, int(len(times) * 0.95) - 1)]
                    print(f"click on the icon → menu mapped ({len(times)} of {args.trials}): p50 {p50 * 1000:.0f} ms, "
                          f"p95 {p95 * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms (from the click's release to the X server's MapNotify)")
                    written = time.monotonic()
                    shutil.copyfile(child_flagged_canaries()[5], folders[0] / "canary.png")
                    if wait_until(lambda: "blocked" in server.tray_icon().title, 30, every=0.02):
                        print(f"canary file written → icon says blocked: {time.monotonic() - written:.2f} s")
                    print(f"peak RSS with the tray after the menu was used: {_peak_rss_mb(agent.proc.pid):.0f} MB")
                finally:
                    agent.stop()
            print(f"idle CPU, tray / no tray: {idle['tray'] / max(idle['--no-tray'], 1e-9):.2f}×")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
