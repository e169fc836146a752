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

    audit = sub.add_parser("audit", help="check or read the tamper-evident audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = audit_sub.add_parser("verify", help="recompute the hash chain (exit 1 at the first bad row)")
    verify.add_argument("file", nargs="?", type=Path, help="one log file (default: the whole configured log)")
    verify.add_argument("--config", type=Path)
    tail = audit_sub.add_parser("tail", help="the last rows, readable")
    tail.add_argument("-n", type=int, default=20)
    tail.add_argument("--config", type=Path)

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
    from agent.scan_output import Progress, ResultWriter, scan_record

    if args.action in ("quarantine", "blur"):
        raise FatalError(f"--action {args.action}: not available in this version (it arrives with the quarantine vault)")
    if args.threads < 0:
        raise FatalError("--threads must be >= 0")
    config = resolve_config(args.config, user_config_file())
    profile = config.profile(args.profile)
    threads = args.threads or default_threads()
    audit = None
    if args.action == "log":
        from agent.audit import AuditLog
        from agent.dirs import audit_path, data_dir

        audit = AuditLog(audit_path(config.audit.path, data_dir(config.agent.data_dir)), int(config.audit.rotate_mb * 1024 * 1024))
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
                    if audit is not None and (result.flagged or result.prediction == "error" or config.audit.log_benign):
                        audit.append(scan_record(result, profile, classifier.model.name))
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


def _configured_audit_path(config_file: Path | None) -> Path:
    from agent.config import resolve_config
    from agent.dirs import audit_path, data_dir, user_config_file

    config = resolve_config(config_file, user_config_file())
    return audit_path(config.audit.path, data_dir(config.agent.data_dir))


def _cmd_audit(args: argparse.Namespace) -> int:
    from agent.audit import log_files, tail, verify
    from agent.errors import EXIT_FLAGGED, FatalError

    if args.audit_command == "verify":
        path = args.file or _configured_audit_path(args.config)
        if args.file is not None and not path.exists():
            raise FatalError(f"{path}: no such audit log")
        if args.file is None and not log_files(path) and not path.with_name(path.name + ".head").exists():
            print(f"{path}: no audit log yet")
            return EXIT_OK
        result = verify(path, whole_chain=args.file is None)
        if result.ok:
            print(f"{path}: intact ({result.rows} rows)")
            return EXIT_OK
        print(f"veil: audit log broken: {result.problem}", file=sys.stderr)
        return EXIT_FLAGGED
    for row in tail(_configured_audit_path(args.config), args.n):
        what = " ".join(v for v in (row["decision"], row["action"]) if v)
        score = f" malign {row['malign']} ≥ {row['threshold']} ({row['profile']})" if row["malign"] and row["decision"] == "malign" else ""
        detail = f" — {row['detail']}" if row["detail"] else ""
        print(f"{row['time']}  {row['source']:<6} {what:<16} {row['subject']}{score}{detail}")
    return EXIT_OK


_COMMANDS = {"audit": _cmd_audit, "config": _cmd_config, "doctor": _cmd_doctor, "scan": _cmd_scan}


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
