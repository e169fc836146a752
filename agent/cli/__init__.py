"""The ``veil`` command: the parser and the dispatch. Each command group is a thin module of its
own in this package (parsing and printing); the work happens in the layers it calls."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from agent import __version__
from agent.errors import EXIT_FATAL, VeilError
from agent.log import setup_logging
from agent.outcome import ACTION_NAMES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="veil", description="Veil: an on-device content filter.")
    parser.add_argument("--version", action="version", version=f"veil {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log detail (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    scan = sub.add_parser("scan", help="classify image files and folders")
    scan.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    scan.add_argument("--profile", help="profile to decide with (default: the config's active profile)")
    scan.add_argument("--format", choices=("table", "csv", "jsonl"), default="table")
    scan.add_argument("-o", "--output", type=Path, help="write the results there instead of stdout")
    scan.add_argument("--no-recursive", action="store_true", help="do not descend into folders")
    scan.add_argument("--action", choices=ACTION_NAMES, default="none")
    scan.add_argument("--threads", type=int, default=0, help="worker threads (default: all cores)")
    scan.add_argument("--regions", choices=("on", "off"), help="also score regions of each still, to catch a picture inside a "
                      "picture (default: the config's [model] regions, on); off is several times faster on large photos")
    scan.add_argument("--config", type=Path, help="config file (default: the user config, else built-in defaults)")
    scan.add_argument("--cluster", metavar="ADDRESS", help="scan on a Ray cluster: auto (RAY_ADDRESS or a cluster running here), "
                      "local[N] (start one here with N workers) or host:port; every node must see PATH at the same name "
                      "(a shared mount); --action log or none only (needs veil-agent[cluster])")

    video = sub.add_parser("video", help="classify a video per interval and find flagged segments")
    video.add_argument("file", type=Path)
    video.add_argument("--profile")
    video.add_argument("--every", type=float, default=1.0, metavar="SECONDS", help="sampling interval (default 1.0)")
    video.add_argument("--format", choices=("json", "tag"), default="json")
    video.add_argument("-o", "--output", type=Path)
    video.add_argument("--cut", type=Path, metavar="OUT", help="write a copy with the flagged segments removed")
    video.add_argument("--keep", type=Path, metavar="OUT", help="write a copy holding only the flagged segments")
    video.add_argument("--blur", type=Path, metavar="OUT", help="write a copy with the flagged segments blurred")
    video.add_argument("--config", type=Path)

    audit = sub.add_parser("audit", help="check or read the tamper-evident audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = audit_sub.add_parser("verify", help="recompute the hash chain (exit 1 at the first bad row)")
    verify.add_argument("file", nargs="?", type=Path, help="one log file (default: the whole configured log)")
    verify.add_argument("--config", type=Path)
    tail = audit_sub.add_parser("tail", help="the last rows, readable")
    tail.add_argument("-n", type=int, default=20)
    tail.add_argument("--config", type=Path)

    quarantine = sub.add_parser("quarantine", help="list, restore or purge quarantined files")
    q_sub = quarantine.add_subparsers(dest="quarantine_command", metavar="ACTION", required=True)
    q_list = q_sub.add_parser("list", help="what is in the vault (asks for the PIN when one is set)")
    q_list.add_argument("--format", choices=("table", "jsonl"), default="table")
    q_restore = q_sub.add_parser("restore", help="put a file back, byte-identical")
    q_restore.add_argument("id")
    q_restore.add_argument("--to", type=Path, help="restore there instead of the original path")
    q_purge = q_sub.add_parser("purge", help="delete entries older than DAYS")
    q_purge.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    for p in (q_list, q_restore, q_purge):
        p.add_argument("--config", type=Path)

    pin = sub.add_parser("pin", help="set, clear or reset the PIN that guards restore and settings")
    pin_sub = pin.add_subparsers(dest="pin_command", metavar="ACTION", required=True)
    for name, text in (("set", "set or change the PIN (asks twice, or reads VEIL_PIN / VEIL_NEW_PIN)"), ("clear", "remove the PIN"),
                       ("reset", "a new vault key and no PIN, when the key file or the PIN is lost (audited)")):
        action = pin_sub.add_parser(name, help=text)
        action.add_argument("--config", type=Path)
        if name == "reset":
            action.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    config = sub.add_parser("config", help="write or check a config file")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    init = config_sub.add_parser("init", help="write the commented example config")
    init.add_argument("path", nargs="?", type=Path, help="where (default: the user config file)")
    check = config_sub.add_parser("check", help="validate a config file")
    check.add_argument("path", type=Path)

    run = sub.add_parser("run", help="start the agent: folder watchers, screen sampler and tray icon")
    run.add_argument("--config", type=Path, help="config file (default: the user config, else built-in defaults)")
    run.add_argument("--no-tray", action="store_true", help="run headless in the foreground; SIGINT/SIGTERM stop it")
    run.add_argument("--once", action="store_true", help="decide every watched file once, act, and exit")
    run.add_argument("--keep-alive", action="store_true",
                     help="start the agent again within seconds when it is killed (where no service manager does)")

    install = sub.add_parser("install", help="start Veil at login and restart it when it stops (this user)")
    install.add_argument("--user", action="store_true", help="for this user (the only mode; accepted for clarity)")
    install.add_argument("--config", type=Path, help="config file the installed agent uses (default: the user config)")
    uninstall = sub.add_parser("uninstall", help="remove the autostart entries (asks for the PIN when one is set)")
    uninstall.add_argument("--config", type=Path)

    for kind, text in (("allow", "never flag these pictures, or resized, re-saved, cropped or mirrored copies of them (PIN)"),
                       ("block", "always flag these pictures and their copies, whatever the model says (PIN)")):
        correct = sub.add_parser(kind, help=text, description=f"{text}. Only perceptual hashes and the file's name are kept, "
                                 f"never the picture. 'veil {kind} list' shows them; 'veil {kind} remove N…' removes them.")
        correct.add_argument("items", nargs="+", metavar="FILE", help="picture files, or: list | remove N…")
        correct.add_argument("--config", type=Path)

    calibrate = sub.add_parser("calibrate", help="ROC, AUC and thresholds on your own benign and to-flag folders")
    calibrate.add_argument("benign", type=Path, metavar="BENIGN_DIR", help="pictures that must not be flagged (recursively)")
    calibrate.add_argument("flagged", type=Path, metavar="FLAGGED_DIR", help="pictures that must be flagged (recursively)")
    calibrate.add_argument("--profile", help="the profile to chart and to write (default: the active one)")
    calibrate.add_argument("--max-false-alarms", default="1%", metavar="RATE", help="the false-alarm rate to find a threshold for "
                           "(default 1%%)")
    calibrate.add_argument("-o", "--output", type=Path, default=Path("veil-calibration"),
                           help="folder for calibration.png and calibration.html (default ./veil-calibration)")
    calibrate.add_argument("--write", action="store_true", help="store the threshold found in the config file (PIN)")
    calibrate.add_argument("--config", type=Path)

    setup = sub.add_parser("setup", help="first-run setup: PIN, profile, watched folders, screen (asks at a terminal)")
    setup.add_argument("--profile", help="the active profile")
    setup.add_argument("--watch", action="append", metavar="FOLDER", help="a folder to watch (repeat for more; replaces the list)")
    setup.add_argument("--screen", choices=("on", "off"), help="screen protection")
    setup.add_argument("--new-pin", action="store_true", help="also change the PIN (asks twice, or reads VEIL_NEW_PIN)")
    setup.add_argument("--config", type=Path, help="the config file to write (default: the user config file)")

    report = sub.add_parser("report", help="a page of what Veil did: protection over time, blocked items, quarantine")
    report.add_argument("-o", "--output", type=Path, help="write it there (default: stdout)")
    report.add_argument("--since", default="7d", help="the period: 7d, 24h, 90m, a date (2026-11-01), or all (default 7d)")
    report.add_argument("--format", choices=("html", "json"), default="html")
    report.add_argument("--config", type=Path)

    doctor = sub.add_parser("doctor", help="report model, runtime, accelerator, latency and display")
    doctor.add_argument("--config", type=Path, help="config file (default: the user config, else built-in defaults)")
    doctor.add_argument("--format", choices=("text", "json"), default="text")
    return parser


# command → (module in agent/cli/, function): imported when that command runs, so `veil scan` loads no tray code
_COMMANDS = {
    "video": ("video", "cmd_video"),
    "audit": ("audit", "cmd_audit"),
    "config": ("setup", "cmd_config"),
    "doctor": ("setup", "cmd_doctor"),
    "install": ("setup", "cmd_install"),
    "uninstall": ("setup", "cmd_install"),
    "pin": ("vault", "cmd_pin"),
    "report": ("report", "cmd_report"),
    "setup": ("first_run", "cmd_setup"),
    "calibrate": ("calibrate", "cmd_calibrate"),
    "allow": ("corrections", "cmd_correct"),
    "block": ("corrections", "cmd_correct"),
    "quarantine": ("vault", "cmd_quarantine"),
    "run": ("run", "cmd_run"),
    "scan": ("scan", "cmd_scan"),
}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as given: what a keeper passes on to its agent
    # Everything Veil itself creates (data dir, audit log, state DB, log file) is its owner's
    # only; files it writes for the user say their mode explicitly (a stand-in keeps the original's).
    os.umask(0o077)
    setup_logging(-1 if args.quiet else args.verbose)
    if args.command is None:
        parser.print_help()
        return EXIT_FATAL
    try:
        module, function = _COMMANDS[args.command]
        return getattr(importlib.import_module(f"agent.cli.{module}"), function)(args)
    except VeilError as err:
        print(f"veil: error: {err}", file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print("veil: interrupted", file=sys.stderr)
        return 130
