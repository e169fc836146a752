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


_COMMANDS = {"doctor": _cmd_doctor}


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
