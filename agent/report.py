"""The audit log → what a parent wants to know about a period: when Veil was protecting (and the
gaps, with their reasons), what it blocked, where, the screen episodes, what is in quarantine, and
whether the log is intact. ``veil report --format json`` prints this as it is; agent/report_html.py
draws it. Only the audit log, the vault folder's file names and the config are read: no image.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import PurePath
from typing import Any

from agent.audit import _rows, log_files, verify
from agent.corrections import replay
from agent.counters import iso

BLOCKING_SOURCES = ("folder", "screen", "video", "scan")
LIFE_GRACE_S = 120  # a heartbeat may be this late before the agent counts as gone

_GAP = re.compile(r"protection stopped (\S+?)(?: or later)?, resumed (\S+?): (.*)", re.S)
_FROZEN = re.compile(r"did not run for (\d+(?:\.\d+)?) s")
_EPISODE = re.compile(r"episode (\S+) to (\S+) \((\d+(?:\.\d+)?) s\), peak (\S+) \(([^)]*)\)(?:; ended: (.*))?")
_ENTRY = re.compile(r"vault entry ([A-Za-z0-9_-]+)")
_PURGE = re.compile(r"quarantine purge: \d+ entries older than (\d+(?:\.\d+)?) days")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def parse_since(text: str, now: float) -> float | None:
    """``7d``, ``24h``, ``90m``, an ISO date or time, or ``all`` (None: from the first row)."""
    text = text.strip().lower()
    if text == "all":
        return None
    unit = {"d": 86400, "h": 3600, "m": 60, "w": 7 * 86400}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([dhmw])", text)
    if match:
        return now - float(match[1]) * unit[match[2]]
    try:
        when = datetime.fromisoformat(text.upper() if "t" in text else text)
    except ValueError:
        raise ValueError(f"--since {text!r}: give a period like 7d, 24h or 90m, a date like 2026-11-01, or all") from None
    return (when if when.tzinfo else when.astimezone()).timestamp()


@dataclass
class Segment:
    start: float
    end: float
    state: str  # protecting | paused | off
    why: str = ""

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Report:
    since: float
    until: float
    segments: list[Segment]
    blocked_by_day: dict[str, dict[str, int]]  # local date → source → count
    blocked_by_profile: dict[str, int]
    top_folders: list[tuple[str, int]]
    episodes: list[dict[str, Any]]
    quarantine: list[dict[str, Any]]
    chain: dict[str, Any]
    settings: dict[str, Any]
    totals: dict[str, int] = field(default_factory=dict)
    corrections: list[dict[str, Any]] = field(default_factory=list)  # the parent's allow/block by picture, now
    warnings: list[dict[str, str]] = field(default_factory=list)  # errors, wrong PINs, settings changes, gaps: what to look at

    def share(self, state: str) -> float:
        span = self.until - self.since
        return sum(s.seconds for s in self.segments if s.state == state) / span if span > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"], data["until"] = iso(self.since), iso(self.until)
        data["segments"] = [{"start": iso(s.start), "end": iso(s.end), "state": s.state, "why": s.why, "seconds": round(s.seconds)}
                            for s in self.segments]
        data["top_folders"] = [{"folder": f, "blocked": n} for f, n in self.top_folders]
        data["coverage"] = {state: round(self.share(state), 4) for state in ("protecting", "paused", "off")}
        return data


def read_rows(audit_file, keep: Callable[[dict[str, str]], bool] | None = None) -> list[dict[str, str]]:
    """Every row of the log (rotated files first), or those ``keep`` says: a long log is streamed,
    and only what is asked for is held."""
    rows: list[dict[str, str]] = []
    for path in log_files(audit_file):
        try:
            rows.extend(row for row in _rows(path) if keep is None or keep(row))
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # the chain verdict says what is wrong with it
    return rows


def is_correction_row(row: dict[str, str]) -> bool:
    return row.get("source") == "agent" and row.get("subject") == "config"


def coverage(rows: list[dict[str, str]], since: float, until: float, alive_every_s: float) -> list[Segment]:
    """When Veil was protecting, paused or off, from its own ``agent`` rows, clipped to the period.
    A gap row (written at the next start) dates the stop it reports, so changes are sorted by time."""
    changes: list[tuple[float, str, str]] = []  # (time, state, why)
    last_alive: float | None = None
    for row in rows:
        at = parse_time(row.get("time"))
        if row.get("source") != "agent" or at is None:
            continue
        event, detail = row.get("subject") or "", row.get("detail") or ""
        if event == "start" and detail.startswith("run --once"):
            continue  # a one-off pass, not protection
        if event in ("start", "resume"):
            changes.append((at, "protecting", ""))
        elif event == "heartbeat" and not changes:  # the log begins while an agent runs
            changes.append((at, "paused" if detail.startswith("paused") else "protecting", ""))
        elif event == "pause":
            changes.append((at, "paused", detail.split(";")[0]))
        elif event == "stop":
            changes.append((at, "off", "stopped: " + detail.split(";")[0]))
        elif event == "gap" and (match := _GAP.match(detail)) and (stopped := parse_time(match[1])) is not None:
            changes.append((stopped, "off", match[3].split(";")[0]))
        elif event == "frozen" and (match := _FROZEN.search(detail)):
            changes += [(at - float(match[1]), "off", "frozen: the agent did not run"), (at, "protecting", "")]
        if event in ("start", "resume", "heartbeat", "pause", "profile", "frozen"):
            last_alive = at
        elif event == "stop":
            last_alive = None
    changes.sort(key=lambda change: change[0])
    if last_alive is not None and changes and changes[-1][1] != "off" and until - last_alive > alive_every_s + LIFE_GRACE_S:
        changes.append((last_alive + alive_every_s, "off", f"no sign of life since {iso(last_alive)} (killed, frozen or switched off)"))
    segments: list[Segment] = []
    state, why, at = "off", "no record (before Veil's first row)", since
    for when, new_state, new_why in [*changes, (until, "", "")]:
        if (new_state, new_why) == (state, why) or new_state == state == "off":
            continue  # already off: the first reason stands (a stop row says more than the gap row after it)
        start, end = max(at, since), min(when, until)
        if end > start:
            if segments and segments[-1].state == state and segments[-1].why == why:
                segments[-1].end = end
            else:
                segments.append(Segment(start, end, state, why))
        state, why, at = new_state, new_why, max(at, when)
    return segments


def local_day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(ts))


def build_report(config, since: float | None, until: float | None = None) -> Report:
    """The report for [since, until] (until: now) from ``config``'s audit log and vault folder."""
    from agent.cli.audit import earlier_activity

    until = time.time() if until is None else until
    # Held: the agent's own rows (coverage, corrections), every quarantine, blur and restore (what is
    # in the vault now), and the period's rows; a cheap text comparison first, with a day's margin.
    earliest = iso(since - 86400) if since is not None else ""
    latest = iso(until + 86400)
    first: list[str] = []

    def wanted(row: dict[str, str]) -> bool:
        when = row.get("time") or ""
        if not first and when:
            first.append(when)
        return row.get("source") == "agent" or row.get("action") in ("quarantine", "blur", "restore") or earliest <= when <= latest

    rows = read_rows(config.audit_file, wanted)
    if since is None:
        since = (parse_time(first[0]) if first else None) or until
    in_period = [r for r, t in zip(rows, (parse_time(r.get("time")) for r in rows)) if t is not None and since <= t <= until]

    blocked = [r for r in in_period if r.get("decision") == "malign" and r.get("source") in BLOCKING_SOURCES
               and r.get("action") in ("quarantine", "blur", "log")]
    by_day: dict[str, Counter[str]] = defaultdict(Counter)
    for row in blocked:
        by_day[local_day(parse_time(row.get("time")) or 0)][row["source"]] += 1
    folders = Counter(str(PurePath(r.get("subject") or "?").parent) for r in blocked if r["source"] in ("folder", "scan"))
    episodes = []
    for row in in_period:
        if row.get("source") == "screen":
            match = _EPISODE.match(row.get("detail") or "")
            if match:
                episodes.append({"screen": row.get("subject") or "", "start": match[1], "end": match[2], "seconds": float(match[3]),
                                 "peak": _number(match[4]), "label": match[5], "ended": match[6] or "", "action": row.get("action") or ""})
    warnings = [{"time": r.get("time") or "", "event": r.get("subject") or "", "detail": r.get("detail") or ""} for r in in_period
                if r.get("source") == "agent" and r.get("subject") in ("error", "pin-failed", "config", "frozen", "gap")]
    result = verify(config.audit_file, earlier_activity=earlier_activity(config))
    profile_rows = [r for r in rows if r.get("source") == "agent" and r.get("profile")]
    settings = {
        "profile in use": profile_rows[-1]["profile"] if profile_rows else config.agent.profile,
        "profile in the config": config.agent.profile,
        "thresholds": {name: p.threshold for name, p in config.profiles.items()},
        "watched folders": [w.path for w in config.watch],
        "screen protection": "on" if config.screen.enabled else "off",
        "regions": "on" if config.model.regions else "off",
        "quarantine kept (days)": config.quarantine.retention_days,
        "config file": str(config.source) if config.source else "built-in defaults",
    }
    return Report(
        since=since, until=until,
        segments=coverage(rows, since, until, config.audit.heartbeat_min * 60),
        blocked_by_day={day: dict(counts) for day, counts in sorted(by_day.items())},
        blocked_by_profile=dict(Counter(r.get("profile") or "?" for r in blocked).most_common()),
        top_folders=folders.most_common(10),
        episodes=episodes,
        quarantine=current_quarantine(rows, config.quarantine_dir),
        chain={"ok": result.ok, "rows": result.rows, "problem": result.problem},
        settings=settings,
        corrections=[{"number": c.number, "kind": c.kind, "label": c.label} for c in replay(rows).values()],
        warnings=warnings,
        totals={"blocked": len(blocked), "quarantined": sum(r["action"] == "quarantine" for r in blocked),
                "blurred": sum(r["action"] == "blur" for r in blocked), "logged": sum(r["action"] == "log" for r in blocked),
                "screen episodes": len(episodes),
                "errors": sum(r.get("decision") == "error" for r in in_period)},
    )


def current_quarantine(rows: list[dict[str, str]], vault_dir) -> list[dict[str, Any]]:
    """What the log says is in quarantine now (quarantined or blurred, not restored or purged),
    each checked against the vault folder: an entry the log has but the folder lacks is shown as
    missing, which is what deleting a vault file leaves behind."""
    entries: dict[str, dict[str, Any]] = {}
    for row in rows:
        detail, at = row.get("detail") or "", parse_time(row.get("time") or "") or 0.0
        match = _ENTRY.search(detail)
        if row.get("action") in ("quarantine", "blur") and match and not detail.startswith("restored"):
            entries[match[1]] = {"id": match[1], "name": row.get("subject", ""), "source": row.get("source", ""),
                                 "action": row["action"], "malign": row.get("malign", ""), "time": row.get("time", ""), "at": at}
        elif row.get("action") == "restore" and match:
            entries.pop(match[1], None)
        elif row.get("source") == "agent":
            purge = _PURGE.search(detail)
            if purge:
                cutoff = at - float(purge[1]) * 86400
                entries = {k: v for k, v in entries.items() if v["at"] >= cutoff}
    found = []
    for entry in entries.values():
        entry.pop("at")
        entry["in vault"] = (vault_dir / f"{entry['id']}.veil").exists()
        found.append(entry)
    return found
