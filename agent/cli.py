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

    pin = sub.add_parser("pin", help="set or clear the PIN that guards restore and settings")
    pin_sub = pin.add_subparsers(dest="pin_command", metavar="ACTION", required=True)
    for name, text in (("set", "set or change the PIN (asks twice, or reads VEIL_PIN / VEIL_NEW_PIN)"), ("clear", "remove the PIN")):
        pin_sub.add_parser(name, help=text).add_argument("--config", type=Path)

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

    doctor = sub.add_parser("doctor", help="report model, runtime, accelerator, latency and display")
    doctor.add_argument("--config", type=Path, help="config file (default: the user config, else built-in defaults)")
    doctor.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def _cmd_doctor(args: argparse.Namespace) -> int:
    from agent.doctor import format_report, run_doctor

    config = _config(args)
    report = run_doctor(config)
    print(format_report(report, args.format))
    return EXIT_OK


def _cmd_scan(args: argparse.Namespace) -> int:
    import os

    from agent.actions.apply import ScanActions
    from agent.classifier import default_threads, open_classifier
    from agent.errors import EXIT_FLAGGED, EXIT_UNREADABLE, FatalError
    from agent.scan import scan
    from agent.scan_output import Progress, ResultWriter

    if args.threads < 0:
        raise FatalError("--threads must be >= 0")
    config = _config(args)
    profile = config.profile(args.profile)
    threads = args.threads or default_threads()
    audit = _open_audit(config) if args.action != "none" else None
    vault = _open_vault(config, audit) if args.action in ("quarantine", "blur") else None
    output = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    flagged = unreadable = False
    progress = Progress()
    try:
        with open_classifier(config.model) as classifier:
            actions = ScanActions(args.action, audit, vault, profile, classifier.model.name, config.audit.log_benign)
            writer = ResultWriter(output, args.format)
            results = scan([Path(os.path.expanduser(p)) for p in args.paths], classifier, profile, threads, not args.no_recursive)
            try:
                for result in results:
                    writer.write(result)
                    progress.update(result)
                    warning = actions.apply(result)
                    if warning:
                        print(f"veil: {warning}", file=sys.stderr)
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


def _config(args: argparse.Namespace):
    """``--config FILE``, else the user config file, else built-in defaults."""
    from agent.config import resolve_config
    from agent.dirs import user_config_file

    return resolve_config(getattr(args, "config", None), user_config_file())


def _open_audit(config):
    from agent.audit import AuditLog

    return AuditLog(config.audit_file, int(config.audit.rotate_mb * 1024 * 1024))


def _open_vault(config, audit):
    """The vault, with whatever a crash left half done finished or undone first."""
    from agent.audit import AuditRecord
    from agent.vault import Vault

    vault = Vault(config.quarantine_dir)
    for note in vault.recover():
        print(f"veil: quarantine: {note}", file=sys.stderr)
        audit.append(AuditRecord("agent", "error", detail=f"quarantine recovery: {note}"))
    return vault


def _read_pin(prompt: str, env: str = "VEIL_PIN", twice: bool = False) -> str | None:
    """The PIN from the environment (scripts) or the terminal; None when neither can answer."""
    import getpass
    import os

    if env in os.environ:
        return os.environ[env]
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass(prompt)
    if twice and getpass.getpass("again: ") != first:
        from agent.errors import FatalError

        raise FatalError("the two PINs differ")
    return first


def _unlock(vault, audit):
    """The vault's private key; a wrong PIN is audited and fatal."""
    from agent.audit import AuditRecord
    from agent.vault import PinError

    pin = _read_pin("PIN: ") if vault.keyring.pin_set else None
    try:
        return vault.keyring.unlock(pin)
    except PinError as err:
        audit.append(AuditRecord("agent", "pin-failed", detail=f"quarantine vault: {err}"))
        raise


def _cmd_quarantine(args: argparse.Namespace) -> int:
    import json

    from agent.audit import AuditRecord
    from agent.errors import FatalError
    from agent.scan_output import display_path
    from agent.vault import VaultError

    config = _config(args)
    audit = _open_audit(config)
    vault = _open_vault(config, audit)
    if not vault.keyring.path.exists():
        if args.quarantine_command != "list":
            raise FatalError("the quarantine vault does not exist yet")
        print("the quarantine is empty")
        return EXIT_OK
    if args.quarantine_command == "purge":
        _unlock(vault, audit)
        removed = vault.purge(args.older_than)
        audit.append(AuditRecord("agent", "config", detail=f"quarantine purge: {removed} entries older than {args.older_than:g} days"))
        print(f"purged {removed} entries")
        return EXIT_OK
    private = _unlock(vault, audit)
    if args.quarantine_command == "list":
        import time as _time

        for entry in vault.entries(private):
            row = {"id": entry.id, "time": _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(entry.time)),
                   "original": display_path(entry.original), "size": entry.meta["size"],
                   "malign": entry.meta.get("malign"), "profile": entry.meta.get("profile")}
            if args.format == "jsonl":
                print(json.dumps(row, ensure_ascii=False))
            else:
                malign = f"{row['malign']:.3f}" if isinstance(row["malign"], float) else "-"
                print(f"{row['id']}  {row['time']}  {row['size']:>10}  {malign:>6}  {row['profile'] or '-':<6}  {row['original']}")
        return EXIT_OK
    from agent.app import restore_allowed
    from agent.state import StateDB

    state = StateDB(config.data_path / "state.sqlite3")
    try:
        target = restore_allowed(vault, state, args.id, private, args.to)
    except VaultError as err:
        raise FatalError(str(err)) from None
    finally:
        state.close()
    audit.append(AuditRecord("scan", display_path(target), action="restore", detail=f"restored from vault entry {args.id}"))
    print(f"restored {display_path(target)}")
    return EXIT_OK


def _cmd_pin(args: argparse.Namespace) -> int:
    from agent.audit import AuditRecord
    from agent.errors import FatalError
    from agent.vault import PinError

    config = _config(args)
    audit = _open_audit(config)
    vault = _open_vault(config, audit)
    vault.keyring.ensure()
    current = _read_pin("current PIN: ") if vault.keyring.pin_set else None
    try:
        if args.pin_command == "set":
            new_env = "VEIL_NEW_PIN" if vault.keyring.pin_set else "VEIL_PIN"
            new = _read_pin("new PIN: ", env=new_env, twice=True)
            if not new:
                raise FatalError(f"no PIN given (type it at a terminal, or set {new_env})")
            vault.keyring.set_pin(current, new)
        else:
            vault.keyring.clear_pin(current)
    except PinError:
        audit.append(AuditRecord("agent", "pin-failed", detail=f"wrong or missing PIN for pin {args.pin_command}"))
        raise
    audit.append(AuditRecord("agent", "config", detail=f"PIN {'set' if args.pin_command == 'set' else 'cleared'}"))
    print(f"PIN {'set' if args.pin_command == 'set' else 'cleared'}")
    return EXIT_OK


def _cmd_audit(args: argparse.Namespace) -> int:
    from agent.audit import log_files, readable, tail, verify
    from agent.errors import EXIT_FLAGGED, FatalError

    if args.audit_command == "verify":
        path = args.file or _config(args).audit_file
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
    for row in tail(_config(args).audit_file, args.n):
        print(readable(row))
    return EXIT_OK


def _write_video_edits(args: argparse.Namespace, report) -> None:
    from agent.actions.video_edit import EditError, complement, widen, write_edit
    from agent.errors import FatalError

    flagged = widen([(g.start, g.end) for g in report.segments], report.every_s, report.duration_s)
    try:
        if args.cut:
            write_edit(args.file, args.cut, drop=flagged)
        if args.blur:
            write_edit(args.file, args.blur, blur=flagged)
        if args.keep:
            if not flagged:
                print(f"veil: {args.file}: nothing flagged, so no --keep copy was written", file=sys.stderr)
            else:
                write_edit(args.file, args.keep, drop=complement(flagged, report.duration_s))
    except EditError as err:
        raise FatalError(str(err)) from None


def _cmd_video(args: argparse.Namespace) -> int:
    import json

    from agent.classifier import open_classifier
    from agent.errors import EXIT_FLAGGED, EXIT_UNREADABLE, FatalError
    from agent.sources.video import VideoError
    from agent.video import analyse_video

    if args.every <= 0:
        raise FatalError("--every must be > 0")
    config = _config(args)
    profile = config.profile(args.profile)
    with open_classifier(config.model) as classifier:
        try:
            report = analyse_video(args.file, classifier, profile, args.every)
        except VideoError as err:
            print(f"veil: error: {args.file}: {err}", file=sys.stderr)
            return EXIT_UNREADABLE
    text = json.dumps(report.as_json(), indent=1) + "\n" if args.format == "json" else report.as_tag(profile.malign_classes)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if report.stopped:
        print(f"veil: {args.file}: {report.stopped}", file=sys.stderr)
    _write_video_edits(args, report)
    if report.segments:
        return EXIT_FLAGGED
    return EXIT_UNREADABLE if report.stopped else EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from agent.app import App, run_once
    from agent.errors import EXIT_FLAGGED, EXIT_UNREADABLE
    from agent.scan_output import display_path

    if args.keep_alive:
        return _keep_alive(args)
    config = _config(args)
    setup_logging(-1 if args.quiet else max(args.verbose, 0), config.data_path / "logs" / "veil.log")
    if args.once:
        outcomes = run_once(config, announce=lambda line: print(f"veil: {line}", file=sys.stderr, flush=True))
        for outcome in outcomes:
            if outcome.decision in ("malign", "error"):
                print(f"{outcome.decision}\t{outcome.action}\t{display_path(outcome.path)}\t{outcome.detail}")
        decided = [o for o in outcomes if o.decision in ("benign", "malign", "error")]
        flagged = sum(o.decision == "malign" for o in decided)
        errors = sum(o.decision == "error" for o in decided)
        print(f"veil: run --once: {len(decided)} files decided, {flagged} flagged, {errors} unreadable", file=sys.stderr)
        return EXIT_FLAGGED if flagged else (EXIT_UNREADABLE if errors else EXIT_OK)

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
    _config(args)  # a config that cannot load is said now, once, not at every restart
    return Keeper([a for a in args.argv if a != "--keep-alive"]).run()


def _cmd_install(args: argparse.Namespace) -> int:
    from agent.audit import AuditRecord
    from agent.dirs import user_config_file
    from agent.install import install, uninstall

    config = _config(args)
    audit = _open_audit(config)
    if args.command == "uninstall":
        vault = _open_vault(config, audit)
        if vault.keyring.path.exists():
            _unlock(vault, audit)  # a wrong or missing PIN is audited and fatal
        report = uninstall()
        audit.append(AuditRecord("agent", "config", detail="autostart removed: " + (", ".join(map(str, report.removed)) or "nothing was installed")))
        for path in report.removed:
            print(f"removed {path}")
    else:
        config_file = args.config or (user_config_file() if user_config_file().exists() else None)
        report = install(config_file)
        audit.append(AuditRecord("agent", "config", detail="autostart installed: " + ", ".join(map(str, report.written))))
        for path in report.written:
            print(f"wrote {path}")
    for note in report.notes:
        print(f"veil: {note}", file=sys.stderr)
    return EXIT_OK


_COMMANDS = {
    "video": _cmd_video,
    "audit": _cmd_audit,
    "config": _cmd_config,
    "doctor": _cmd_doctor,
    "install": _cmd_install,
    "uninstall": _cmd_install,
    "pin": _cmd_pin,
    "quarantine": _cmd_quarantine,
    "run": _cmd_run,
    "scan": _cmd_scan,
}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as given: what a keeper passes on to its agent
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
