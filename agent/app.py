"""``veil run``: the composition root. It builds and connects, in order: the classifier, the
audit log, the vault, the state database, the action layer and the outcome fan-out, the
decider and its worker pipeline, the screen guard, the folder watcher and the loops
(agent/loops.py); it starts them, and stops them in the reverse order. What each part does lives
in its own module; ``App`` is also the facade the command line and the tray talk to
(agent/facade.py): status, pause, resume, profile, and the parent's controls (agent/controls.py).

Tamper evidence: the agent keeps a heartbeat and how it stopped in the state database, so the
next start writes an audit ``gap`` row for the time nobody was watching, with the reason when it
is known (quit, paused) and ``killed`` when the last run just ended without a word.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from agent.actions.files import FileActions
from agent.audit import AuditLog, AuditRecord, tail
from agent.classifier import open_classifier
from agent.config import Config
from agent.controls import ParentControls
from agent.corrections import Corrections
from agent.counters import Counters, iso
from agent.decider import FileDecider
from agent.decode import DecodeLimits
from agent.errors import FatalError
from agent.facade import Status
from agent.fsutil import make_private
from agent.lock import AlreadyRunning, InstanceLock, holder_of
from agent.loops import ConfigWatch, Every, Intervals, Loop, Reconciler, RetryLater
from agent.outcome import Fanout, Outcome
from agent.pipeline import Pipeline
from agent.policy import Profile
from agent.setup_flow import SetupChoice, current_choice
from agent.sources.folder import FolderWatcher, WatchedFolder, WatchNotices
from agent.state import StateDB
from agent.vault import Entry, Vault, VaultError

log = logging.getLogger(__name__)


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


TICK_S = 2.0  # how often the agent checks that it has been running
FROZEN_AFTER_S = 10.0  # a tick this late means the process was not running


class App:
    def __init__(self, config: Config, once: bool = False, workers: int = 2, intervals: Intervals = Intervals()):
        self.config = config
        self.once = once
        self.workers = workers
        self.intervals = intervals
        self._profile: Profile = config.active_profile
        self._paused_until: float | None = None
        self.counters = Counters(keep_outcomes=once)
        self._trouble_lock = threading.Lock()
        self._last_storage_trouble = ""
        from agent.config import NotifySection
        from agent.notify import Notifier

        # none until start() makes the real one: trouble written before then must not fail for want of it
        self.notifier = Notifier(NotifySection(enabled=False), None)
        self._notify_line = "notifications: off"
        self._stopping = threading.Event()
        self._loops: list[Loop] = []
        self.retries = RetryLater(intervals.retry_first_s, intervals.retry_max_s)
        self.started = False

    # -- building, starting, stopping -----------------------------------------------------

    def start(self) -> str:
        """Start everything; returns the one start-up line."""
        data = self.config.data_path
        self.lock = InstanceLock(data)
        try:
            self.lock.acquire()
        except AlreadyRunning as err:
            self._squatted(err)
            raise
        try:
            self._open(data)
        except BaseException:
            self.lock.release()
            raise
        self.started = True
        self.notifier.start()
        return self.startup_line()

    def _check_corrections(self) -> None:
        """The parent's corrections as the audit log records them: a state database that lost one
        (deleted, edited) gets it back, one that gained one nobody recorded loses it; each said."""
        from agent.corrections import reconcile
        from agent.report import is_correction_row, read_rows

        for note in reconcile(self.state, read_rows(self.config.audit_file, is_correction_row)):
            self._agent_row("error", note)

    def _notifier(self):
        """Desktop notifications for the running agent (none for ``--once``: nobody is told twice)."""
        from agent.notify import Notifier, system_backend

        if self.once or not self.config.notify.enabled:
            self._notify_line = "notifications: off"
            return Notifier(self.config.notify, None)
        backend, why = system_backend()
        notifier = Notifier(self.config.notify, backend)
        self._notify_line = notifier.state + (f" ({why})" if why else "")
        return notifier

    def _open(self, data: Path) -> None:
        make_private(data, walk=False)
        for own in {self.config.quarantine_dir, self.config.audit_file.parent, data / "logs"}:
            if data in own.parents:  # an audit folder elsewhere is the user's to set up
                make_private(own)
        for name in ("state.sqlite3", "state.sqlite3-wal", "state.sqlite3-shm", "agent.lock"):
            if (data / name).is_file():
                os.chmod(data / name, 0o600)
        self.classifier = open_classifier(self.config.model)
        self.audit = AuditLog(self.config.audit_file, int(self.config.audit.rotate_mb * 1024 * 1024))
        recent = tail(self.audit.path, 2000) if self.audit.path.exists() else []  # before this run writes anything
        self._last_alive, self._last_start_key = _last_agent_row_time(recent), _last_start_key(recent)
        self.state = StateDB(data / "state.sqlite3")
        if self.audit.discrepancy:
            self._agent_row("error", f"audit log damaged while no agent ran: {self.audit.discrepancy}")
        elif not self.audit.path.exists() and self.state.get("first_start"):
            self._agent_row("error", "the audit log was missing at start, though Veil has run on this data dir before "
                                     f"(first start {iso(float(self.state.get('first_start') or 0))}): deleted")
        # The vault's key must be the one on record: a deleted or swapped key file is trouble, never a
        # new key. The record is read once, at start: an edit of the state database while the agent
        # runs does not move it (``_check_keys``), only ``veil pin reset`` does.
        self._key_on_record = self.state.get("key_fingerprint")
        self.vault = Vault(self.config.quarantine_dir, trusted=lambda: self._key_on_record, on_new_key=self._new_key)
        self._key_trouble = self._pin_advice = ""
        self._record_trouble = ""
        for note in self.vault.recover():
            self._agent_row("error", f"quarantine recovery: {note}")
        self.controls = ParentControls(self.vault, self.audit, state=lambda: self.state, profile=lambda: self._profile.name)
        self._check_corrections()
        first_start = self._begin_run()
        ignored = tuple({data.resolve(), self.config.quarantine_dir.resolve(), self.config.audit_file.parent.resolve()})
        self.folders = [WatchedFolder(Path(w.path).expanduser().resolve(), w.recursive, w.include, w.exclude, ignored)
                        for w in self.config.watch]
        # Every decided file and screen episode goes to these sinks (agent/outcome.py): one line to add a consumer.
        self.outcomes = Fanout([self.counters])
        self.notifier = self._notifier()
        self.outcomes.add(self.notifier.outcome)
        self.actions = FileActions(self.audit, self.vault, self.classifier.model.name, "folder", log_benign=self.config.audit.log_benign,
                                   on_standin=self.state.add_standin, warn=log.warning)
        self.decider = FileDecider(self.classifier, self.state, self.actions, lambda: self._profile, ignored,
                                   limits=DecodeLimits(regions=self.config.model.regions), on_outcome=self.outcomes,
                                   again=lambda path: self.pipeline.submit(path))  # in hand: queued again when done
        # Built before anything runs: a worker finishing the last run's backlog may already ask for a walk.
        self.watcher: FolderWatcher | None = None
        if not self.once:
            notices = WatchNotices(warn=lambda message: self._agent_row("error", message), reconcile=self._request_reconcile)
            self.watcher = FolderWatcher(self.folders, self._submit, notices, stalled_s=self.config.agent.stalled_download_s)
        # existing files: all of them with scan_existing (and always for --once); otherwise only
        # what appeared since Veil first watched (files that came while it was stopped or killed)
        walks = [(f, 0.0 if (self.once or w.scan_existing) else first_start) for f, w in zip(self.folders, self.config.watch)]
        self.reconciler = Reconciler(walks, self.state, self._submit, self.watcher.settler.changed if self.watcher else None,
                                     self.intervals.reconcile_s, once=self.once, stalled_s=self.config.agent.stalled_download_s)
        self._start_pipeline()
        self._start_screen()
        if self.watcher is not None:
            self.watcher.start()
            self._start_loops()
        self._agent_row("start", f"{'run --once: ' if self.once else ''}{self._policy_line()}; {self._screen_line}; "
                                 f"{self._config_line()}; {self._key_line()}")
        if self.once:
            self.reconciler.walk("run --once")
        else:
            self._run_loop(self.reconciler)

    def _begin_run(self) -> float:
        """The gap row for the time since the last run, and this run's start on record;
        returns when Veil first watched this data dir."""
        now = time.time()
        first_start = float(self.state.get("first_start") or now)
        if not self.once:  # --once is not protection: it neither ends a gap nor starts a run
            gap = gap_since_last_run(self.state, self.intervals.heartbeat_s, now, self._last_alive,
                                     self.config.audit.heartbeat_min * 60)
            if gap:
                self._agent_row("gap", gap)
            self.state.put(run_started=str(now), heartbeat=str(now), stopped_at="", stop_reason="", first_start=str(first_start))
        return first_start

    def _start_pipeline(self) -> None:
        self.pipeline = Pipeline(self._handle, workers=self.workers, on_trouble=lambda m: self._agent_row("error", m),
                                 on_give_up=self.retries.defer)
        self.pipeline.start()
        for note in self.decider.recover(resubmit=self.pipeline.submit):
            log.warning(note)
        backlog = json.loads(self.state.get("backlog") or "[]")
        self.state.put(backlog="[]")
        for item in backlog:
            self.pipeline.submit(Path(os.fsdecode(item.encode("utf-8", "surrogateescape"))))

    def _start_screen(self) -> None:
        self.screen = None
        self._screen_line = "screen: off"
        if not self.once and self.config.screen.enabled:
            from agent.screen_guard import ScreenGuard

            self.screen = ScreenGuard(self.config.screen, self.decider.classifier, lambda: self._profile, self.audit,
                                      self.classifier.model.name, on_outcome=self.outcomes, paused=lambda: self.paused,
                                      corrections=Corrections(self.state, self.config.audit_file, check_every_s=1.0))
            self._screen_line = self.screen.start()
            if self._screen_line.startswith("screen: unavailable"):
                why = self._screen_line.removeprefix("screen: unavailable (").removesuffix(")")
                self.notifier.trouble(f"Screen protection is off here: {why}")

    def _start_loops(self) -> None:
        self._last_tick = self._last_beat = self._last_audit_beat = time.monotonic()
        self._run_loop(Every("veil-heartbeat", TICK_S, self._tick))
        self._run_loop(Every("veil-retry", self.intervals.retry_check_s, self._check_waiting))
        if self.config.source is not None:
            self._run_loop(ConfigWatch(self.config.source, self.intervals.config_check_s, self._config_changed))

    def _run_loop(self, loop: Loop) -> None:
        self._loops.append(loop)
        loop.start()

    def stop(self, reason: str = "quit") -> None:
        if not self.started:
            return
        self._stopping.set()
        for loop in self._loops:  # a walk in progress ends at its next file
            loop.stopping.set()
        if self.screen is not None:
            self.screen.stop()
        if self.watcher is not None:
            self.watcher.stop()
        left = self.pipeline.stop()
        if self.watcher is not None:
            left += self.watcher.pending()
        for loop in self._loops:
            loop.stop()
        self.state.put(backlog=json.dumps([os.fsencode(p).decode("utf-8", "surrogateescape") for p in left]))
        if not self.once:
            self.state.put(stopped_at=str(time.time()), stop_reason=reason)
        decided = self.counters.decided
        self.notifier.stop()
        self._agent_row("stop", f"{reason}; {decided} file{'' if decided == 1 else 's'} decided, {self.counters.flagged} flagged"
                                + (f", {len(left)} left for the next start" if left else ""))
        self.state.close()
        self.classifier.close()
        self.lock.release()
        self.started = False

    # -- facade (agent/facade.py) ---------------------------------------------------------

    @property
    def profile(self) -> Profile:
        return self._profile

    def pause(self, minutes: float, by: str = "") -> None:
        self._paused_until = time.time() + minutes * 60
        self._agent_row("pause", f"paused for {minutes:g} min, until {iso(self._paused_until)}" + (f"; {by}" if by else ""))

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

    def status(self) -> Status:
        tally = self.counters.tally()
        return Status(
            state="failed" if self.pipeline.failed else ("paused" if self.paused else "protecting"),
            profile=self._profile.name,
            profiles=tuple(self.config.profiles),
            paused_until=self._paused_until if self.paused else None,
            watching=tuple(self.watcher.describe() if self.watcher else [str(f.root) for f in self.folders]),
            screen=self._screen_line,
            decided=tally.decided, flagged=tally.flagged, errors=tally.errors,
            backlog=self.pipeline.backlog(),
            pending=len(self.watcher.settler) if self.watcher else 0,
            last_event=tally.last_event,
            last_flag_at=tally.last_flag_at,
            failure=self.pipeline.failed or "",
            trouble="; ".join(filter(None, (self._key_trouble, self._pin_advice, self.retries.trouble()))),
            pin_set=self.controls.pin_set,
        )

    @property
    def pin_set(self) -> bool:
        return self.controls.pin_set

    def unlock(self, pin: str | None, purpose: str) -> X25519PrivateKey:
        return self.controls.unlock(pin, purpose)

    def quarantined(self, private: X25519PrivateKey) -> list[Entry]:
        return self.controls.entries(private)

    def restore(self, entry_id: str, private: X25519PrivateKey, by: str = "") -> Path:
        return self.controls.restore(entry_id, private, by=by)

    def scan_folder(self, folder: Path) -> int:
        """Decide every file below ``folder`` with the active profile and act on it, as if it
        were watched (already decided, unchanged files are not read again). Returns how many
        files were queued; the work goes on in the workers."""
        data = self.config.data_path.resolve()
        ignored = (data, self.config.quarantine_dir.resolve(), self.config.audit_file.parent.resolve())
        walker = WatchedFolder(folder.expanduser().resolve(), True, (), (), ignored)
        self.counters.note(f"scan of {walker.root.name or walker.root} started")  # said before the first decision, which may come at once
        queued = 0
        for path in walker.walk():
            if self._stopping.is_set():
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

    def write_report(self, days: float = 7.0) -> Path:
        """The last ``days`` as a page in the data dir (``veil report``'s page); its path."""
        from agent.report import build_report
        from agent.report_html import render_html

        now = time.time()
        page = self.config.data_path / "report.html"
        page.write_text(render_html(build_report(self.config, now - days * 86400, now)), encoding="utf-8")
        return page

    def correct(self, kind: str, picture: Path) -> str:
        """The tray's allow/block by picture (the PIN already given); what to tell the parent."""
        from agent.decode import DecodeError

        try:
            correction = self.controls.correct(kind, picture)
        except DecodeError as err:
            return f"{picture.name} is not a picture Veil can read ({err}); nothing changed."
        except OSError as err:  # the audit log or the state database could not be written
            return f"{picture.name} could not be put on record ({err.strerror or err}); nothing changed."
        if kind == "block":
            return f"#{correction.number}: {picture.name} and its copies (resized, re-saved, cropped, mirrored) are now always flagged."
        return f"#{correction.number}: {picture.name} and its copies are no longer flagged."

    def setup_choice(self) -> tuple[SetupChoice, dict[str, str]]:
        """What the setup window starts from, and each profile in a few words."""
        from agent.setup_flow import profile_words

        return current_choice(self.config), {name: profile_words(p) for name, p in self.config.profiles.items()}

    def apply_setup(self, choice: SetupChoice, current_pin: str | None) -> str:
        """The tray's setup: PIN, config file (comments kept) and audit row; the profile at once.
        Returns what to tell the parent ("saved…", or the problem in one line)."""
        from agent.config import ConfigError
        from agent.dirs import user_config_file
        from agent.setup_flow import apply_setup
        from agent.vault import PinError

        path = self.config.source or user_config_file()
        try:
            apply_setup(path, choice, self.controls, current_pin, by="tray")
        except (ConfigError, PinError, OSError) as err:
            return str(err).removeprefix(f"{path}: ")
        if choice.profile != self._profile.name:
            self.set_profile(choice.profile, by="setup from the tray")
        said = f"saved to {path}."
        if choice.folders != current_choice(self.config).folders or choice.screen != self.config.screen.enabled:
            said += " The folders and the screen setting take effect when Veil next starts."
        return said

    def startup_line(self) -> str:
        return f"protecting with profile {self._profile.name}; {self.classifier.describe()}; {self.classifier.choice.reason}; " \
               f"watching {self._watch_list()}; {self._screen_line}; {self._notify_line}"

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Until nothing is pending, queued or in hand (for --once and tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        quiet = 0
        while quiet < 3:  # three looks in a row: a path may be between the settler and the queue
            busy = self.reconciler.walking.is_set() or (self.watcher is not None and self.watcher.settler.settling() > 0) \
                or not self.pipeline.idle()
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
            f"State: {status.state}, profile {status.profile}",
            f"Watching: {self._watch_list()}",
            f"Screen: {self._screen_line.removeprefix('screen: ')}",
            f"Notifications: {self._notify_line.removeprefix('notifications: ')}",
            f"Model: {self.classifier.describe()}",
            f"Accelerator: {self.classifier.choice.reason}",
            f"Since start: {status.decided} file{'' if status.decided == 1 else 's'} decided, {status.flagged} flagged, "
            f"{status.errors} unreadable",
            f"Config: {self.config.source or 'built-in defaults'}",
            f"Audit log: {self.config.audit_file}",
            f"Quarantine: {self.config.quarantine_dir}",
            "Model weights: nsfwjs (MIT licence; notice in models/LICENSE.nsfwjs), converted on this project's converter.",
        ]

    # -- connections ----------------------------------------------------------------------

    def _submit(self, path: Path) -> None:
        if self._paused_until is not None and time.time() < self._paused_until:
            return  # paused: the walk at resume picks it up
        self.pipeline.submit(path)

    def _handle(self, path: Path) -> None:
        outcome = self.decider.handle(path)
        if outcome is not None and not outcome.final:  # could not be read or moved: again in 10 s, then less often
            self.retries.defer(path, outcome.detail)
        else:
            self.retries.handled(path)
        if outcome is not None and outcome.other_names and not self.once:
            self._request_reconcile("a quarantined file had other names (hard links)")  # find those in watched folders now

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
        with self._trouble_lock:
            if message == self._last_storage_trouble:
                return
            self._last_storage_trouble = message
        log.error(message)
        self.notifier.trouble(f"Veil cannot keep its records: {message}")

    def _request_reconcile(self, reason: str) -> None:
        self.reconciler.request(reason)

    def _tick(self) -> None:
        """Every ``TICK_S``: notice a freeze; the heartbeat when its time has come. Lateness is
        measured from the end of the last tick, so a slow tick (an fsync, a held audit lock) is
        not mistaken for a freeze."""
        now = time.monotonic()
        late = now - self._last_tick - TICK_S
        try:
            self._tick_duties(now, late)
        finally:
            self._last_tick = time.monotonic()

    def _tick_duties(self, now: float, late: float) -> None:
        if late > FROZEN_AFTER_S:
            # The monotonic clock ran on while this process did not (SIGSTOP, a frozen process,
            # a starved machine; a suspended machine stops the clock too, so it is not counted).
            self._agent_row("frozen", f"the agent did not run for {late + TICK_S:.0f} s (stopped or frozen); "
                                      "nothing was judged meanwhile; walking every watched folder")
            self._request_reconcile("the agent was frozen")
        if now - self._last_audit_beat >= self.config.audit.heartbeat_min * 60:
            self._last_audit_beat = now
            tally = self.counters.tally()
            self._agent_row("heartbeat", f"{'paused' if self.paused else 'protecting'} ({self._profile.name}); "
                                         f"{tally.decided} decided, {tally.flagged} flagged since start")
        if now - self._last_beat >= self.intervals.heartbeat_s:
            self._last_beat = now
            self._beat()

    def _beat(self) -> None:
        self._check_keys()
        try:
            self.state.put(heartbeat=str(time.time()))
        except sqlite3.Error as err:  # a full data disk: the gap estimate gets coarser, nothing more
            self._storage_trouble(f"cannot write the state database in {self.config.data_path} ({err})")

    def _check_waiting(self) -> None:
        """Files whose retry time has come go back to the workers; a pause that has run out
        ends on its own, audited, with a walk for what arrived meanwhile."""
        for path in self.retries.due():
            if self._stopping.is_set():
                return
            self.pipeline.submit(path)
        if self._paused_until is not None and time.time() >= self._paused_until:
            self.resume()

    def _config_changed(self, digest: str, fresh: Config | None, problem: str) -> None:
        """A changed config file is audited with its hash; a valid one's profiles take effect now
        (folders and screen settings at the next start); an invalid one leaves the old in force."""
        if fresh is None:
            self._agent_row("config", f"{problem}; the previous config stays in force")
            return
        old_profile = self._profile.name
        self.config = fresh
        self._profile = fresh.active_profile
        change = f"profile {old_profile} -> {self._profile.name}" if old_profile != self._profile.name else f"profile {self._profile.name}"
        self._agent_row("config", f"config changed (sha256 {digest}); reloaded: {change} (threshold {self._profile.threshold:.2f}); "
                                  "watched folders and screen settings apply at the next start")

    def _policy_line(self) -> str:
        """The effective policy, for the start row: what a parent reads to know what was enforced."""
        profile = self._profile
        actions = ", ".join(f"{kind} {action}" for kind, action in sorted(profile.actions.items()))
        model = self.classifier.model
        regions = "regions on" if self.config.model.regions else "regions OFF (whole pictures only)"
        return (f"profile {profile.name} (threshold {profile.threshold:.2f}; {actions}); {self.classifier.describe()} "
                f"sha256 {model.sha256}; {regions}; watching {self._watch_list()}")

    def _config_line(self) -> str:
        """The config's path and sha256, and a change made while no agent was running, audited."""
        source = self.config.source
        if source is None:
            return "config: built-in defaults"
        try:
            digest = hashlib.sha256(source.read_bytes()).hexdigest()
        except OSError as err:
            return f"config {source} (unreadable now: {err.strerror})"
        before = self.state.get("config_sha256")
        if before and before != digest and not self.once:
            self._agent_row("config", f"config {source} changed while the agent was stopped (sha256 {before} → {digest})")
        if not self.once:
            self.state.put(config_sha256=digest)
        return f"config {source} sha256 {digest}"

    def _key_line(self) -> str:
        """The vault key's fingerprint; a key file that is missing, unreadable, replaced, or not
        the key of the last start, is audited and shown as trouble."""
        keyring = self.vault.keyring
        self._check_keys()
        last = self._last_start_key
        if self._key_trouble:
            return "vault key: trouble"
        if not keyring.path.exists():
            if last:
                self._agent_row("error", f"the vault key of the last start ({last}) is gone, with no entries and no record left")
            return "vault key: none yet"
        found = keyring.fingerprint()
        if not self._key_on_record:
            self._key_on_record = found  # a vault from before fingerprints were kept: on record from now on
            self.state.put(key_fingerprint=found)
        if last and last != found:
            self._agent_row("error", f"vault key changed since the last start (was {last}, now {found})")
        return f"vault key {found}"

    def _check_keys(self) -> None:
        """Audit a change in the key file's trust (once per change), for the tray's trouble."""
        self._check_record()
        trouble = self.vault.keyring.trouble()
        if trouble != self._key_trouble:
            self._agent_row("error", f"vault keys: {trouble}" if trouble else "vault keys: trusted again")
            self._key_trouble = trouble
        try:
            too_short = not trouble and self.vault.keyring.path.exists() and self.vault.keyring.pin_too_short
        except VaultError:
            too_short = False  # the key file's own trouble says it
        self._pin_advice = "the PIN is shorter than 6 characters: set a longer one (veil pin set)" if too_short else ""

    def _check_record(self) -> None:
        """The fingerprint in the state database against the one this run trusts: taken up when
        ``veil pin reset`` (audited) made it, an audited error otherwise."""
        try:
            recorded = self.state.get("key_fingerprint")
        except sqlite3.Error as err:
            recorded = f"unreadable ({err})"
        if recorded == self._key_on_record or recorded == self._record_trouble:
            return
        resets = [r for r in tail(self.audit.path, 200) if r["source"] == "agent" and r["subject"] == "config"
                  and r["detail"].startswith(f"vault keys reset: new key {recorded},")] if self.audit.path.exists() else []
        if resets:
            self._agent_row("config", f"vault key {recorded} taken up after `veil pin reset` (was {self._key_on_record})")
            self._key_on_record, self._record_trouble = recorded, ""
        else:
            self._agent_row("error", f"the vault key on record in the state database was changed to {recorded} "
                                     f"(not by `veil pin reset`); still trusting {self._key_on_record}")
            self._record_trouble = recorded or ""

    def _new_key(self, fingerprint: str) -> None:
        self._key_on_record = fingerprint
        self.state.put(key_fingerprint=fingerprint)
        self._agent_row("config", f"vault key {fingerprint} made (first use of the quarantine)")

    def _squatted(self, err: AlreadyRunning) -> None:
        """Another process holds this data dir: say so in the audit log before exiting, with
        what that process is, so a look-alike agent started first leaves a trace."""
        try:
            AuditLog(self.config.audit_file, int(self.config.audit.rotate_mb * 1024 * 1024)).append(
                AuditRecord("agent", "error", detail=f"not started: {err} ({holder_of(self.lock)})"))
        except OSError as write_error:
            log.error("cannot write the audit log: %s", write_error)

    def _watch_list(self) -> str:
        if not self.folders:
            return "no folders"
        return ", ".join(f"{f.root}{'' if f.recursive else ' (top level only)'}"
                         f"{f' include {list(f.include)}' if f.include else ''}{f' exclude {list(f.exclude)}' if f.exclude else ''}"
                         for f in self.folders)


def _last_start_key(recent: list[dict[str, str]]) -> str | None:
    """The vault key named by the newest ``start`` row among ``recent`` ones, if any."""
    for row in reversed(recent):
        if row["source"] == "agent" and row["subject"] == "start":
            found = re.findall(r"vault key ([0-9a-f]{16})$", row["detail"])  # the row's last part: a folder name cannot fake it
            return found[-1] if found else None
    return None


# Rows only a running agent writes: the last of them is its last sign of life in the audit log.
_ALIVE_ROWS = ("start", "stop", "heartbeat", "frozen", "pause", "resume", "gap", "profile")


def _last_agent_row_time(recent: list[dict[str, str]]) -> float | None:
    for row in reversed(recent):
        if row["source"] == "agent" and row["subject"] in _ALIVE_ROWS:
            try:
                return datetime.fromisoformat(row["time"].replace("Z", "+00:00")).timestamp()
            except ValueError:
                return None
    return None


def gap_since_last_run(state: StateDB, heartbeat_s: float, now: float, last_alive: float | None = None,
                       audit_every_s: float = 600.0) -> str | None:
    """The ``gap`` row's detail for the time between the last run and this one (None at the
    first start on a data dir). The state database's times are checked against the audit log's
    last sign of life (``last_alive``): a state database that is missing, or claims the agent
    ran later than the log shows, was edited or deleted, and the log's time is the one used."""
    started = state.get("run_started")
    if not started:
        if last_alive is None:
            return None
        return (f"protection stopped {iso(last_alive)} or later, resumed {iso(now)}: unknown (the state database was missing; "
                "the audit log's last row of a running agent is the last sign of life)")
    stopped_at, reason = state.get("stopped_at"), state.get("stop_reason")
    if stopped_at:
        since, why = float(stopped_at), reason or "quit"
    else:
        since = float(state.get("heartbeat") or started)
        boot = _boot_time()
        why = "unknown (the machine restarted)" if boot is not None and boot > since else "killed"
        why += f"; last heartbeat {iso(since)}, so it stopped within {heartbeat_s:g} s after"
    if last_alive is not None and since > last_alive + audit_every_s + 120:
        why += (f"; but the audit log's last row of a running agent is {iso(last_alive)}: the state database's "
                "times were changed, and that is when protection is known to have stopped")
        since = last_alive
    return f"protection stopped {iso(since)}, resumed {iso(now)}: {why}"


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
