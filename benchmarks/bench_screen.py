"""Screen protection under Xvfb (1920×1080), measured from outside the agent.

    python benchmarks/bench_screen.py [--seconds 60] [--trials 20]

The agent is `veil run --no-tray` with screen sampling at `interval_s = 1.0`; `max_interval_s`
is also 1.0, so a static screen is sampled every second (the worst case for CPU; by default the
interval stretches to 5 s when nothing changes).
The benign pictures are camera-like 1080p photos (benchmarks/realistic_inputs.py: real wallpapers
at native size with sensor-like grain), not the committed 512-px thumbnails.
1. Static screen: a benign photo in a window, nothing moving; agent CPU over ``--seconds``.
2. A screen that changes every frame: a full-screen window cycling benign photos every 50 ms.
3. Canary → overlay: a 500×400 canary window opens on top of a full-screen benign photo (a
   picture inside a busy screen, as on a real desktop; ``--background none`` for a bare one);
   time until a `veil-overlay` window is mapped (polled every 20 ms with xwininfo); closed
   again, and the overlay must go before the next trial.
4. Peak RSS of the agent.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_agent import _cpu_share, _peak_rss_mb  # noqa: E402
from benchmarks.realistic_inputs import bits_per_pixel, camera_jpegs  # noqa: E402
from tests.agent_process import Agent, wait_until  # noqa: E402
from tests.media import child_flagged_canaries, machine_line  # noqa: E402
from tests.xserver import XServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--background", choices=("camera", "none"), default="camera")
    args = parser.parse_args()
    photos = camera_jpegs(12)
    print(f"benign photos: 1080p camera-like, {bits_per_pixel(photos):.2f} bits/px")
    canaries = child_flagged_canaries()
    print(machine_line())
    server = XServer("1920x1080")
    try:
        with tempfile.TemporaryDirectory() as temp:
            root = Path(temp)
            config = root / "config.toml"
            config.write_text(f'[agent]\ndata_dir = "{root / "data"}"\n[[watch]]\npath = "{root / "none"}"\n'
                              '[screen]\ninterval_s = 1.0\nmax_interval_s = 1.0\n')
            agent = Agent(config, env=server.env)
            pid = agent.proc.pid
            try:
                phases = (("static screen, 1 s interval", lambda: server.show("1200x800+200+100", photos[0])),
                          ("screen changing every 50 ms", lambda: server.show("1920x1080+0+0", *photos[:12], every=0.05)))
                for label, open_window in phases:
                    window = open_window()
                    time.sleep(5)
                    share = _cpu_share(pid, args.seconds)
                    print(f"{label}, {args.seconds:.0f} s: {share:.2f} % of one core")
                    server.close(window)
                time.sleep(3)

                background = server.show("1920x1080+0+0", photos[1]) if args.background == "camera" else None
                times = []
                for trial in range(args.trials):
                    viewer = server.show(f"500x400+{100 + 40 * trial}+{100 + 20 * trial}", canaries[trial % len(canaries)], settle=0)
                    opened = time.monotonic()  # the viewer has mapped its window
                    if wait_until(lambda: server.mapped_overlays() >= 1, 15, every=0.02):
                        times.append(time.monotonic() - opened)
                    else:
                        print(f"trial {trial}: no overlay for {canaries[trial % len(canaries)].name}", flush=True)
                    server.close(viewer)
                    wait_until(lambda: server.mapped_overlays() == 0 and _quiet(server), 20, every=0.1)
                    time.sleep(1.5)
                if background is not None:
                    server.close(background)
                times.sort()
                p50, p95 = times[len(times) // 2], times[max(0, int(len(times) * 0.95) - 1)]
                print(f"canary window → overlay mapped ({len(times)} of {args.trials} trials): p50 {p50:.2f} s, p95 {p95:.2f} s, "
                      f"max {times[-1]:.2f} s (from the viewer's window being mapped)")
                print(f"peak RSS: {_peak_rss_mb(pid):.0f} MB")
            finally:
                agent.stop()
    finally:
        server.stop()
    return 0


def _quiet(server: XServer) -> bool:
    time.sleep(1.0)
    return server.mapped_overlays() == 0


if __name__ == "__main__":
    sys.exit(main())
