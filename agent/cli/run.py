"""``veil run``: the agent in the foreground, with or without its tray icon, or once."""

from __future__ import annotations

import argparse
import sys

from agent.cli.common import config_of
from agent.errors import EXIT_FATAL, EXIT_OK
from agent.log import setup_logging
from agent.outcome import Outcome


def cmd_run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from agent.app import App, run_once
    from agent.errors import EXIT_FLAGGED, EXIT_UNREADABLE

    if args.keep_alive:
        return _keep_alive(args)
    config = config_of(args)
    setup_logging(-1 if args.quiet else max(args.verbose, 0), config.data_path / "logs" / "veil.log")
    if args.once:
        outcomes = run_once(config, announce=lambda line: print(f"veil: {line}", file=sys.stderr, flush=True))
        for outcome in outcomes:
            if outcome.decision in ("malign", "error"):
                print(f"{outcome.decision}\t{outcome.action}\t{outcome.subject}\t{outcome.detail}")
        print(f"veil: run --once: {once_summary(outcomes)}", file=sys.stderr)
        flagged = any(o.decision == "malign" for o in outcomes)
        return EXIT_FLAGGED if flagged else (EXIT_UNREADABLE if any(o.decision == "error" for o in outcomes) else EXIT_OK)

    app = App(config)
    say = lambda line: print(f"veil: {line}", file=sys.stderr, flush=True)  # noqa: E731
    say(app.start())
    stop = threading.Event()
    reason = ["quit"]

    def on_signal(signum: int, _frame: object) -> None:
        if not stop.is_set():  # the first reason stands (a PIN quit's own stop request signals too)
            reason[0] = f"quit ({signal.Signals(signum).name})"
        stop.set()

    def quit_from_tray(why: str) -> None:
        from agent.install import stop_without_restart

        reason[0] = why
        stop.set()
        asked = stop_without_restart()
        if asked:
            say(f"asked the service manager not to restart Veil: {asked}")

    def supervise() -> None:
        while not stop.wait(0.5):
            if app.pipeline.failed:
                reason[0] = f"crashed ({app.pipeline.failed})"
                stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    threading.Thread(target=supervise, name="veil-supervise", daemon=True).start()
    try:
        if args.no_tray:
            while not stop.wait(0.5):  # a short wait: the main thread must come back for signals
                pass
        else:
            from agent.tray.icon import TrayIcon

            TrayIcon(app, quit=quit_from_tray, about=app.about, say=say).run(stop)
    finally:
        app.stop(reason[0])
    print(f"veil: stopped: {reason[0]}", file=sys.stderr)
    return EXIT_FATAL if app.pipeline.failed else EXIT_OK


def _keep_alive(args: argparse.Namespace) -> int:
    from agent.errors import FatalError
    from agent.keeper import Keeper

    if args.once:
        raise FatalError("--keep-alive keeps a running agent alive; it does not go with --once")
    if sys.platform == "win32":
        raise FatalError("--keep-alive is for POSIX desktops; on Windows the scheduled task restarts Veil")
    config_of(args)  # a config that cannot load is said now, once, not at every restart
    return Keeper([a for a in args.argv if a != "--keep-alive"]).run()



def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def once_summary(outcomes: list[Outcome]) -> str:
    """``N decided, M flagged, K passed over (not images or videos), F could not be handled, U unreadable``."""
    decided = [o for o in outcomes if o.decision in ("benign", "malign", "error")]
    failed = sum(o.attempted != "none" for o in decided)
    unreadable = sum(o.decision == "error" and o.attempted == "none" for o in decided)
    return ", ".join([
        _count(len(decided), "file decided", "files decided"),
        f"{sum(o.decision == 'malign' for o in decided)} flagged",
        f"{sum(o.decision == 'ignored' for o in outcomes)} passed over (not images or videos)",
        f"{failed} could not be handled",
        f"{unreadable} unreadable",
    ])
