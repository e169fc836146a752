"""``veil run``: the composition root. Builds folder sources → pipeline → decider (classifier,
policy, actions, audit, state) and offers the ``App`` facade — start, stop, pause, resume,
set_profile, status — that the command line and the tray talk to; the workers know nothing of
either.

Tamper evidence: the agent keeps a heartbeat and how it stopped in the state database, so the
next start writes an audit ``gap`` row for the time nobody was watching, with the reason when it
is known (quit, paused) and ``killed`` when the last run just ended without a word.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from agent.audit import AuditLog, AuditRecord
from agent.classifier import open_classifier
from agent.config import Config
from agent.decider import FileDecider, Outcome
from agent.errors import FatalError
from agent.lock import InstanceLock
from agent.pipeline import Pipeline
from agent.policy import Profile
from agent.sources.folder import FolderWatcher, WatchedFolder, WatchNotices
from agent.state import Identity, StateDB
from agent.vault import Vault

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
CONFIG_CHECK_S = 2.0
RECONCILE_S = 600.0  # a full walk of every watched folder, whatever the events said
RETRY_FIRST_S, RETRY_MAX_S = 10.0, 600.0  # a file whose handling crashed is tried again after these
RETRY_CHECK_S = 2.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


@dataclass
class Counters:
    decided: int = 0
    flagged: int = 0
    errors: int = 0
    last_event: str = ""
    last_flag_at: float | None = None  # when something was last blocked (file or screen)
    outcomes: list[Outcome] = field(default_factory=list)  # kept only for --once (bounded by the folders)


class App:
    def __init__(self, config: Config, once: bool = False, workers: int = 2, reconcile_s: float = RECONCILE_S):
        self.config = config
        self.once = once
        self.workers = workers
        self.reconcile_s = reconcile_s
        self._profile: Profile = config.active_profile
        self._paused_until: float | None = None
        self.counters = Counters()
        self._counters_lock = threading.Lock()
        self._deferred: dict[Path, tuple[float, int]] = {}  # crashed twice, not yet handled → (next try, tries)
        self._deferred_why = ""  # the latest reason a file could not be handled
        self._last_storage_trouble = ""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._reconcile_now = threading.Event()
        self._reconciling = threading.Event()
        self.started = False

    # -- facade ---------------------------------------------------------------------------

    @property
    def profile(self) -> Profile:
        return self._profile

    def start(self) -> str:
        """Start everything; returns the one start-up line."""
        data = self.config.data_path
        self.lock = InstanceLock(data)
        self.lock.acquire()
        try:
            self._open(data)
        except BaseException:
            self.lock.release()
            raise
        self.started = True
        return self.startup_line()

    def _open(self, data: Path) -> None:
        self.classifier = open_classifier(self.config.model)
        self.audit = AuditLog(self.config.audit_file, int(self.config.audit.rotate_mb * 1024 * 1024))
        self.vault = Vault(self.config.quarantine_dir)
        for note in self.vault.recover():
            self._agent_row("error", f"quarantine recovery: {note}")
        self.state = StateDB(data / "state.sqlite3")
        now = time.time()
        first_start = float(self.state.get("first_start") or now)
        if not self.once:  # --once is not protection: it neither ends a gap nor starts a run
            self._record_gap()
            self.state.put(run_started=str(now), heartbeat=str(now), stopped_at="", stop_reason="", first_start=str(first_start))
        ignored = tuple({data.resolve(), self.config.quarantine_dir.resolve(), self.config.audit_file.parent.resolve()})
        self.folders = [WatchedFolder(Path(w.path).expanduser().resolve(), w.recursive, w.include, w.exclude, ignored)
                        for w in self.config.watch]
        self.decider = FileDecider(self.classifier, self.state, self.audit, self.vault, lambda: self._profile,
                                   self.config.audit.log_benign, ignored, on_outcome=self._count)
        self.pipeline = Pipeline(self._handle, workers=self.workers, on_trouble=lambda m: self._agent_row("error", m),
                                 on_give_up=self._retry_later)
        self.pipeline.start()
        for note in self.decider.recover(resubmit=self.pipeline.submit):
            log.warning(note)
        backlog = json.loads(self.state.get("backlog") or "[]")
        self.state.put(backlog="[]")
        for item in backlog:
            self.pipeline.submit(Path(os.fsdecode(item.encode("utf-8", "surrogateescape"))))
        self.watcher = None
        self.screen = None
        self._screen_line = "screen: off"
        if not self.once and self.config.screen.enabled:
            from agent.screen_guard import ScreenGuard

            self.screen = ScreenGuard(self.config.screen, self.decider.classifier, lambda: self._profile, self.audit,
                                      self.classifier.model.name, on_event=self._screen_event,
                                      paused=lambda: self.paused)
            self._screen_line = self.screen.start()
        if not self.once:
            notices = WatchNotices(warn=self._watch_warning, reconcile=self._request_reconcile)
            self.watcher = FolderWatcher(self.folders, self._submit, notices)
            self.watcher.start()
            self._spawn(self._heartbeat_loop, "veil-heartbeat")
            if self.config.source is not None:
                self._config_seen = self._config_identity()
                self._spawn(self._config_loop, "veil-config")
        self._agent_row("start", f"{'run --once: ' if self.once else ''}profile {self._profile.name}; {self.classifier.describe()}; "
                                 f"watching {self._watch_list()}; {self._screen_line}")
        # existing files: all of them with scan_existing (and always for --once); otherwise only
        # what appeared since Veil first watched (files that came while it was stopped or killed)
        self._walks = [(f, 0.0 if (self.once or w.scan_existing) else first_start) for f, w in zip(self.folders, self.config.watch)]
        if self.once:
            self._reconcile("run --once")
        else:
            self._reconciling.set()  # until the first walk is over, nobody may call the agent idle
            self._spawn(self._reconcile_loop, "veil-reconcile")

    def stop(self, reason: str = "quit") -> None:
        if not self.started:
            return
        self._stop.set()
        self._reconcile_now.set()
        if self.screen is not None:
            self.screen.stop()
        if self.watcher is not None:
            self.watcher.stop()
        left = self.pipeline.stop()
        if self.watcher is not None:
            left += self.watcher.pending()
        for thread in self._threads:
            thread.join()
        self.state.put(backlog=json.dumps([os.fsencode(p).decode("utf-8", "surrogateescape") for p in left]))
        if not self.once:
            self.state.put(stopped_at=str(time.time()), stop_reason=reason)
        self._agent_row("stop", f"{reason}; {self.counters.decided} files decided, {self.counters.flagged} flagged"
                                + (f", {len(left)} left for the next start" if left else ""))
        self.state.close()
        self.classifier.close()
        self.lock.release()
        self.started = False

    def pause(self, minutes: float, by: str = "") -> None:
        self._paused_until = time.time() + minutes * 60
        self._agent_row("pause", f"paused for {minutes:g} min, until {_iso(self._paused_until)}" + (f"; {by}" if by else ""))

    def resume(self, by: str = "") -> None:
        if self._paused_until is None:
            return
        self._paused_until = None
        self._agent_row("resume", "protection resumed" + (f"; {by}" if by else ""))
        self._request_reconcile("resumed after a pause")

    @property
    def paused(self) -> bool:
        return self._paused_until is not None and time.time() < self._paused_until

    def set_profile(self, name: str, by: str = "") -> None:
        profile = self.config.profile(name)
        old, self._profile = self._profile, profile
        self._agent_row("profile", f"{old.name} -> {profile.name}" + (f"; {by}" if by else ""))

    def status(self) -> dict:
        return {
            "state": "failed" if self.pipeline.failed else ("paused" if self.paused else "protecting"),
            "profile": self._profile.name,
            "profiles": list(self.config.profiles),
            "paused_until": self._paused_until if self.paused else None,
            "watching": self.watcher.describe() if self.watcher else [str(f.root) for f in self.folders],
            "screen": self._screen_line,
            "decided": self.counters.decided,
            "flagged": self.counters.flagged,
            "errors": self.counters.errors,
            "backlog": self.pipeline.backlog(),
            "pending": len(self.watcher.settler) if self.watcher else 0,
            "last_event": self.counters.last_event,
            "last_flag_at": self.counters.last_flag_at,
            "failure": self.pipeline.failed or "",
            "trouble": self._trouble(),
        }

    def _trouble(self) -> str:
        """Files the agent could not handle and keeps trying (a full data disk, say), in words."""
        with self._counters_lock:
            waiting, why = len(self._deferred), self._deferred_why
        if not waiting:
            return ""
        return f"{waiting} file{'s' if waiting > 1 else ''} not handled yet{f' ({why})' if why else ''}; trying again"

    # PIN-guarded doings for the tray; the caller asks the user, the App checks and audits.

    @property
    def pin_set(self) -> bool:
        return self.vault.keyring.path.exists() and self.vault.keyring.pin_set

    def unlock(self, pin: str | None, purpose: str):
        """The vault's private key for ``pin``; a wrong one is audited (``pin-failed``) and raised
        as PinError, with the lock-out the keyring imposes after repeated failures."""
        from agent.vault import PinError

        self.vault.keyring.ensure()
        try:
            return self.vault.keyring.unlock(pin)
        except PinError as err:
            self._agent_row("pin-failed", f"{purpose}: {err}")
            raise

    def quarantined(self, private) -> list:
        return self.vault.entries(private)

    def restore(self, entry_id: str, private, by: str = "") -> Path:
        """Put a quarantined file back (VaultError, one line, if it cannot be). Its content is
        then allowed: a parent's decision, which the agent does not overturn."""
        from agent.scan_output import display_path

        target = restore_allowed(self.vault, self.state, entry_id, private)
        self.audit.append(AuditRecord("folder", display_path(target), action="restore", profile=self._profile.name,
                                      detail=f"restored from vault entry {entry_id}" + (f"; {by}" if by else "")))
        return target

    def scan_folder(self, folder: Path) -> int:
        """Decide every file below ``folder`` with the active profile and act on it, as if it
        were watched (already decided, unchanged files are not read again). Returns how many
        files were queued; the work goes on in the workers."""
        data = self.config.data_path.resolve()
        ignored = (data, self.config.quarantine_dir.resolve(), self.config.audit_file.parent.resolve())
        walker = WatchedFolder(folder.expanduser().resolve(), True, (), (), ignored)
        with self._counters_lock:  # said before the first decision, which may come at once
            self.counters.last_event = f"{_iso(time.time())} scan of {walker.root.name or walker.root} started"
        queued = 0
        for path in walker.walk():
            if self._stop.is_set():
                break
            self.pipeline.submit(path)
            queued += 1
        log.info("folder scan of %s: %d files queued", walker.root, queued)
        return queued

    def audit_tail(self, count: int = 200) -> list[dict[str, str]]:
        from agent.audit import tail

        return tail(self.config.audit_file, count)

    def audit_check(self) -> str:
        """One line: the audit log and whether its hash chain is intact (a break names the file)."""
        from agent.audit import verify

        result = verify(self.config.audit_file)
        return f"{self.config.audit_file}: hash chain intact ({result.rows} rows)" if result.ok else f"hash chain BROKEN: {result.problem}"

    def startup_line(self) -> str:
        return f"protecting with profile {self._profile.name}; {self.classifier.describe()}; {self.classifier.choice.reason}; " \
               f"watching {self._watch_list()}; {self._screen_line}"

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Until nothing is pending, queued or in hand (for --once and tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        quiet = 0
        while quiet < 3:  # three looks in a row: a path may be between the settler and the queue
            busy = self._reconciling.is_set() or (self.watcher is not None and len(self.watcher.settler) > 0) or not self.pipeline.idle()
            quiet = 0 if busy else quiet + 1
            if self.pipeline.failed or (deadline is not None and time.monotonic() > deadline):
                return False
            time.sleep(0.05)
        return True

    def about(self) -> list[str]:
        """Lines for the tray's About window: what runs, on what, where its records are."""
        from agent import __version__

        status = self.status()
        return [
            f"Veil {__version__}: an on-device content filter. Nothing leaves this device.",
            f"State: {status['state']}, profile {status['profile']}",
            f"Watching: {self._watch_list()}",
            f"Screen: {self._screen_line.removeprefix('screen: ')}",
            f"Model: {self.classifier.describe()}",
            f"Accelerator: {self.classifier.choice.reason}",
            f"Since start: {status['decided']} files decided, {status['flagged']} flagged, {status['errors']} unreadable",
            f"Config: {self.config.source or 'built-in defaults'}",
            f"Audit log: {self.config.audit_file}",
            f"Quarantine: {self.config.quarantine_dir}",
            "Model weights: nsfwjs (MIT licence; notice in models/LICENSE.nsfwjs), converted on this project's converter.",
        ]

    # -- inside ---------------------------------------------------------------------------

    def _submit(self, path: Path) -> None:
        if self._paused_until is not None and time.time() < self._paused_until:
            return  # paused: the walk at resume picks it up
        self.pipeline.submit(path)

    def _count(self, outcome: Outcome) -> None:
        with self._counters_lock:
            if outcome.decision in ("benign", "malign", "error"):
                self.counters.decided += 1
            self.counters.flagged += outcome.decision == "malign"
            self.counters.errors += outcome.decision == "error"
            if outcome.decision == "malign":
                self.counters.last_flag_at = time.time()
            if outcome.decision in ("malign", "error"):
                self.counters.last_event = f"{_iso(time.time())} {outcome.path.name}: {outcome.decision}, {outcome.action}"
            if self.once:
                self.counters.outcomes.append(outcome)

    def _agent_row(self, event: str, detail: str) -> None:
        if event == "error":
            log.warning(detail)
        try:
            self.audit.append(AuditRecord("agent", event, detail=detail, profile=self._profile.name))
            self._last_storage_trouble = ""  # written again: a later failure is news again
        except OSError as err:  # a full or failing data disk: say so (once per kind), never stop for it
            self._storage_trouble(f"cannot write the audit log {self.config.audit_file} ({err.strerror or err})")
            if event != "error":
                log.warning("%s: %s", event, detail)

    def _storage_trouble(self, message: str) -> None:
        with self._counters_lock:
            if message == self._last_storage_trouble:
                return
            self._last_storage_trouble = message
        log.error(message)

    def _handle(self, path: Path) -> None:
        self.decider.handle(path)
        if self._deferred:
            with self._counters_lock:
                self._deferred.pop(path, None)  # handled at last

    def _retry_later(self, path: Path, why: str) -> None:
        """A file whose handling crashed twice (a full data disk, say) is tried again after 10 s,
        then ever less often up to 10 minutes, instead of waiting for the next reconcile."""
        with self._counters_lock:
            tries = self._deferred[path][1] + 1 if path in self._deferred else 0
            self._deferred[path] = (time.monotonic() + min(RETRY_MAX_S, RETRY_FIRST_S * 2**tries), tries)
            self._deferred_why = why

    def _retry_due(self) -> None:
        now = time.monotonic()
        with self._counters_lock:
            due = [path for path, (at, _tries) in self._deferred.items() if at <= now]
            for path in due:  # in flight: a crash sets the next time, a success (_handle) removes it
                self._deferred[path] = (math.inf, self._deferred[path][1])
        for path in due:
            if self._stop.is_set():
                return
            self.pipeline.submit(path)

    def _screen_event(self, message: str, flagged: bool = False) -> None:
        with self._counters_lock:
            if flagged:
                self.counters.last_flag_at = time.time()
            self.counters.last_event = f"{_iso(time.time())} {message}"
        log.info(message)

    def _watch_warning(self, message: str) -> None:
        self._agent_row("error", message)

    def _request_reconcile(self, reason: str) -> None:
        log.info("reconcile requested: %s", reason)
        self._reconcile_now.set()

    def _reconcile(self, why: str) -> int:
        """Walk every watched folder; queue each file not decided as it is now."""
        self._reconciling.set()
        queued = 0
        try:
            for folder, since in self._walks:
                if self.once and not folder.root.is_dir():
                    log.warning("watched folder %s does not exist; nothing to check there", folder.root)
                for path in folder.walk():
                    if self._stop.is_set():
                        return queued
                    try:
                        st = os.lstat(path)
                    except OSError:
                        continue
                    changed_at = max(st.st_ctime, st.st_mtime)
                    if changed_at < since or self.state.is_decided(path, Identity.of(st)):
                        continue
                    if self.watcher is not None and time.time() - changed_at < 2.0:
                        self.watcher.settler.changed(path)  # maybe still being written: settle it first
                    else:
                        self._submit(path)
                    queued += 1
        finally:
            self._reconciling.clear()
        log.info("reconcile (%s): %d files queued", why, queued)
        return queued

    def _reconcile_loop(self) -> None:
        self._reconcile("start")
        while not self._stop.is_set():
            requested = self._reconcile_now.wait(self.reconcile_s)
            self._reconcile_now.clear()
            if not self._stop.is_set():
                self._reconcile("requested" if requested else "periodic")

    def _heartbeat_loop(self) -> None:
        next_beat = time.monotonic() + HEARTBEAT_S
        while not self._stop.wait(RETRY_CHECK_S):
            self._retry_due()
            if time.monotonic() < next_beat:
                continue
            next_beat = time.monotonic() + HEARTBEAT_S
            try:
                self.state.put(heartbeat=str(time.time()))
            except sqlite3.Error as err:  # a full data disk: the gap estimate gets coarser, nothing more
                self._storage_trouble(f"cannot write the state database in {self.config.data_path} ({err})")
            if self._paused_until is not None and time.time() >= self._paused_until:
                self.resume()  # a pause ends on its own, audited, with a walk for what arrived meanwhile

    def _config_identity(self) -> tuple[int, int] | None:
        if self.config.source is None:  # built-in defaults: no file to watch
            return None
        try:
            st = self.config.source.stat()
            return (st.st_mtime_ns, st.st_size)
        except OSError:
            return None

    def _config_loop(self) -> None:
        """A changed config file is audited with its hash; a valid one's profiles take effect now
        (folders and screen settings at the next start); an invalid one leaves the old in force."""
        import hashlib

        from agent.config import load_config
        from agent.errors import ConfigError

        source = self.config.source
        if source is None:
            return
        while not self._stop.wait(CONFIG_CHECK_S):
            seen = self._config_identity()
            if seen == self._config_seen:
                continue
            self._config_seen = seen
            try:
                digest = hashlib.sha256(source.read_bytes()).hexdigest()
            except OSError as err:
                self._agent_row("config", f"config file {source} unreadable ({err.strerror}); the previous config stays in force")
                continue
            try:
                fresh = load_config(source)
            except ConfigError as err:
                self._agent_row("config", f"config changed (sha256 {digest}) but cannot be loaded: {err}; the previous config stays in force")
                continue
            old_profile = self._profile.name
            self.config = fresh
            self._profile = fresh.active_profile
            change = f"profile {old_profile} -> {self._profile.name}" if old_profile != self._profile.name else f"profile {self._profile.name}"
            self._agent_row("config", f"config changed (sha256 {digest}); reloaded: {change} (threshold {self._profile.threshold:.2f}); "
                                      "watched folders and screen settings apply at the next start")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _record_gap(self) -> None:
        """The audit row for the time between the last run and this one."""
        started = self.state.get("run_started")
        if not started:
            return  # first start on this data dir
        now = time.time()
        stopped_at, reason = self.state.get("stopped_at"), self.state.get("stop_reason")
        if stopped_at:
            since, why = float(stopped_at), reason or "quit"
        else:
            since = float(self.state.get("heartbeat") or started)
            boot = _boot_time()
            why = "unknown (the machine restarted)" if boot is not None and boot > since else "killed"
            why += f"; last heartbeat {_iso(since)}, so it stopped within {HEARTBEAT_S:g} s after"
        self._agent_row("gap", f"protection stopped {_iso(since)}, resumed {_iso(now)}: {why}")

    def _watch_list(self) -> str:
        if not self.folders:
            return "no folders"
        return ", ".join(f"{f.root}{'' if f.recursive else ' (top level only)'}" for f in self.folders)


def restore_allowed(vault: Vault, state: StateDB, entry_id: str, private, to: Path | None = None) -> Path:
    """Restore a vault entry and allow its content from then on: restoring with the PIN is a
    parent's decision, which a running agent must not undo by quarantining the file again."""
    allowed: list[str] = []

    def allow(entry) -> None:  # on record before the file is back, so the watcher leaves it be
        state.allow(entry.content_sha256, f"restored from vault entry {entry_id}")
        allowed.append(entry.content_sha256)

    try:
        return vault.restore(entry_id, private, to, before_write=allow)
    except Exception:
        for sha in allowed:
            state.disallow(sha)
        raise


def run_once(config: Config, announce: Callable[[str], None] = lambda line: None) -> list[Outcome]:
    """``veil run --once``: decide every watched file not yet decided, act, stop."""
    app = App(config, once=True)
    announce(app.start())
    try:
        if not app.wait_idle():
            raise FatalError(app.pipeline.failed or "the workers did not finish")
    finally:
        app.stop("run --once finished")
    return app.counters.outcomes
