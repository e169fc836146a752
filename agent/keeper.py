"""``veil run --keep-alive``: bring the agent back within seconds when it is killed or crashes.

For sessions no service manager watches — desktops that start Veil from the XDG autostart
entry, without a systemd user session (the systemd unit restarts Veil itself, and so does
launchd on macOS). The keeper is a small parent process: it starts the agent, and whenever the
agent ends without being asked to by the keeper's own stop or a quit with the PIN, it starts it
again after 2 s (backing off to a minute while the agent keeps failing at start on its own, say
over a config broken since; a kill never lengthens the wait). Each restart says why in one
line; the agent's own audit records the gap.

How the two talk (POSIX signals; Windows has its task scheduler's restart instead):
- the agent learns its keeper from ``VEIL_KEEPER_PID``; a quit with the PIN sends the keeper
  SIGUSR1 ("the parent quit: do not bring it back") before the agent stops;
- SIGTERM, SIGINT or SIGHUP to the keeper (a logout) is passed on to the agent, and neither
  comes back.

When the agent ended because the session did (its display is gone), the keeper ends too.

A child who kills the keeper first and then the agent defeats it, as ``systemctl --user stop``
defeats the unit; the next start's audit gap row shows the time nobody was watching.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

ENV = "VEIL_KEEPER_PID"
RESTART_DELAY_S = 2.0
MAX_DELAY_S = 60.0
HEALTHY_AFTER_S = 10.0  # an agent that ran this long was not failing at start: back to a short delay


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"was killed ({signal.Signals(-code).name})"
        except ValueError:
            return f"was killed (signal {-code})"
    return f"stopped (exit status {code})"


class Keeper:
    def __init__(self, agent_args: list[str], say=lambda line: print(f"veil: {line}", file=sys.stderr, flush=True)):
        self.agent_args = agent_args
        self.say = say
        self._stop = threading.Event()  # the keeper was told to stop (a logout, Ctrl-C)
        self._released = threading.Event()  # the parent quit with the PIN: the agent stays stopped
        self._child: subprocess.Popen | None = None
        self._display, self._wayland = os.environ.get("DISPLAY"), os.environ.get("WAYLAND_DISPLAY")

    def _on_stop(self, signum: int, _frame: object) -> None:
        self._stop.set()
        child = self._child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    def _on_release(self, _signum: int, _frame: object) -> None:
        self._released.set()

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_stop)
        signal.signal(signal.SIGUSR1, self._on_release)
        env = {**os.environ, ENV: str(os.getpid())}
        delay = RESTART_DELAY_S
        while True:
            started = time.monotonic()
            self._child = subprocess.Popen([sys.executable, "-m", "agent", *self.agent_args], env=env)
            code = self._child.wait()
            if self._stop.is_set() or self._released.is_set():
                return 0
            gone = session_gone(self._display, self._wayland)
            if gone:  # a logout that took the display down first (and the agent with it)
                self.say(f"keep-alive: the agent {_describe(code)} and {gone}: the session is over; not starting it again")
                return 0
            if code > 0 and time.monotonic() - started < HEALTHY_AFTER_S:
                delay = min(delay * 2, MAX_DELAY_S)  # failing at start on its own: retry ever more slowly
            else:
                delay = RESTART_DELAY_S  # killed, or ended after running a while: back at once, every time
            self.say(f"keep-alive: the agent {_describe(code)}; starting it again in {delay:g} s")
            if self._stop.wait(delay) or self._released.is_set():
                return 0


def session_gone(display: str | None, wayland: str | None) -> str | None:
    """Why the desktop session the keeper was started in has ended, or None while it goes on.
    An agent restarted after the session would linger headless, holding the single-instance
    lock against the next login's agent."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if wayland and (os.path.isabs(wayland) or runtime):
        if not os.path.exists(os.path.join(runtime or "", wayland)):  # an absolute name stays as it is
            return f"the Wayland display {wayland} is gone"
    if display:
        try:
            import Xlib.display
        except ImportError:
            return None  # no way to look (python-xlib is Linux-only): assume it is there
        try:
            Xlib.display.Display(display).close()
        except Exception:  # python-xlib's connection and authorisation errors, or the socket's
            return f"the display {display} is gone"
    return None


def release_keeper() -> str | None:
    """Tell the keeper that started this agent (if one did) not to bring it back."""
    pid = os.environ.get(ENV)
    if not pid or sys.platform == "win32":
        return None
    try:
        os.kill(int(pid), signal.SIGUSR1)
    except (OSError, ValueError) as err:
        return f"keep-alive (pid {pid}) not told ({err})"
    return f"keep-alive (pid {pid})"
