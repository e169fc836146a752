"""The ``veil`` command: parsing and printing only; the work happens in the modules it calls."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent import __version__
from agent.errors import EXIT_FATAL, EXIT_OK, VeilError
from agent.log import setup_logging


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
    scan.add_argument("--action", choices=("none", "log", "quarantine", "blur"), default="none")
    scan.add_argument("--threads", type=int, default=0, help="worker threads (default: all cores)")
    scan.add_argument("--config", type=Path, help="config file (default: the user config, else built-in defaults)")

    config = sub.add_parser("config", help="write or check a config file")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    init = config_sub.add_parser("init", help="write the commented example config")
    init.add_argument("path", nargs="?", type=Path, help="where (default: the user config file)")
    check = config_sub.add_parser("check", help="validate a config file")
    check.add_argument("path", type=Path)

    doctor = sub.add_parser("doctor", help="report model, runtime, accelerator, latency and display")
    doctor.add_argument("--config", type=Path, help="config file (default: the user config, else built-in defaults)")
    doctor.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def _cmd_doctor(args: argparse.Namespace) -> int:
    from agent.config import resolve_config
    from agent.dirs import user_config_file
    from agent.doctor import format_report, run_doctor

    config = resolve_config(args.config, user_config_file())
    report = run_doctor(config)
    print(format_report(report, args.format))
    return EXIT_OK


def _cmd_scan(args: argparse.Namespace) -> int:
    import os

    from agent.classifier import default_threads, open_classifier
    from agent.config import resolve_config
    from agent.dirs import user_config_file
    from agent.errors import EXIT_FLAGGED, EXIT_UNREADABLE, FatalError
    from agent.scan import scan
    from agent.scan_output import Progress, ResultWriter

    if args.action != "none":
        raise FatalError(f"--action {args.action}: not available in this version (the actions arrive with the quarantine vault)")
    if args.threads < 0:
        raise FatalError("--threads must be >= 0")
    config = resolve_config(args.config, user_config_file())
    profile = config.profile(args.profile)
    threads = args.threads or default_threads()
    output = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    flagged = unreadable = False
    progress = Progress()
    try:
        with open_classifier(config.model) as classifier:
            writer = ResultWriter(output, args.format)
            results = scan([Path(os.path.expanduser(p)) for p in args.paths], classifier, profile, threads, not args.no_recursive)
            try:
                for result in results:
                    writer.write(result)
                    progress.update(result)
                    flagged |= result.flagged
                    unreadable |= result.prediction == "error"
            finally:
                results.close()
    finally:
        progress.close()
        if args.output:
            output.close()
    return EXIT_FLAGGED if flagged else EXIT_UNREADABLE if unreadable else EXIT_OK


def _cmd_config(args: argparse.Namespace) -> int:
    from agent.config import example_text, load_config
    from agent.dirs import user_config_file
    from agent.errors import FatalError

    if args.config_command == "init":
        path = args.path or user_config_file()
        if path.exists():
            raise FatalError(f"{path}: already exists; not overwritten (remove it or give another path)")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(example_text(), encoding="utf-8")
        print(f"wrote {path}")
        return EXIT_OK
    config = load_config(args.path)
    watched = ", ".join(w.path for w in config.watch) or "nothing"
    print(f"{args.path}: ok (profile {config.agent.profile}; profiles {', '.join(config.profiles)}; watching {watched})")
    return EXIT_OK


_COMMANDS = {"config": _cmd_config, "doctor": _cmd_doctor, "scan": _cmd_scan}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    setup_logging(-1 if args.quiet else args.verbose)
    if args.command is None:
        parser.print_help()
        return EXIT_FATAL
    try:
        return _COMMANDS[args.command](args)
    except VeilError as err:
        print(f"veil: error: {err}", file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print("veil: interrupted", file=sys.stderr)
        return 130
