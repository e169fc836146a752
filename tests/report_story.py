"""A known week in an audit log, written through the real AuditLog (so the hash chain is real):
what the report tests check the page and the JSON against. Times are UTC; run with TZ=UTC."""

from __future__ import annotations

from pathlib import Path

from agent.audit import AuditLog, AuditRecord

SINCE, UNTIL = "2026-11-23T00:00:00Z", "2026-11-26T00:00:00Z"
DOWNLOADS, PICTURES = "/home/kid/Downloads", "/home/kid/Pictures"


def _agent(event: str, at: str, detail: str = "") -> AuditRecord:
    return AuditRecord("agent", event, detail=detail, profile="child", time=at)


def _blocked(source: str, subject: str, at: str, action: str, entry: str = "", malign: str = "0.9100") -> AuditRecord:
    return AuditRecord(source, subject, decision="malign", action=action, profile="child", model="m", malign=malign,
                       threshold="0.30", detail=f"vault entry {entry}" if entry else "", time=at)


STORY = [
    _agent("start", "2026-11-23T08:00:00Z", "profile child (threshold 0.30); screen: 1 monitor"),
    _blocked("folder", f"{DOWNLOADS}/a.jpg", "2026-11-23T09:00:00Z", "quarantine", "q1"),
    _blocked("folder", f"{DOWNLOADS}/b.png", "2026-11-23T09:05:00Z", "quarantine", "q2"),
    _blocked("folder", f"{PICTURES}/c.webp", "2026-11-23T10:00:00Z", "quarantine", "q3"),
    AuditRecord("folder", f"{DOWNLOADS}/ok.jpg", decision="benign", action="none", profile="child", time="2026-11-23T10:30:00Z"),
    _agent("pause", "2026-11-23T12:00:00Z", "paused for 30 min, until 2026-11-23T12:30:00Z; from the tray"),
    _agent("resume", "2026-11-23T12:30:00Z", "protection resumed"),
    _agent("stop", "2026-11-23T20:00:00Z", "quit from the tray; 4 files decided, 3 flagged"),
    _agent("gap", "2026-11-24T08:00:00Z", "protection stopped 2026-11-23T20:00:00Z, resumed 2026-11-24T08:00:00Z: quit"),
    _agent("start", "2026-11-24T08:00:00Z", "profile child (threshold 0.30); screen: 1 monitor"),
    AuditRecord("screen", "screen:1", decision="malign", action="blur", profile="child", malign="0.8800", threshold="0.30",
                detail="episode 2026-11-24T15:00:00Z to 2026-11-24T15:02:30Z (150.0 s), peak 0.88 (porn); ended: content gone",
                time="2026-11-24T15:02:30Z"),
    _blocked("video", "/home/kid/Videos/clip.mp4", "2026-11-24T16:00:00Z", "log"),
    _blocked("folder", f"{DOWNLOADS}/d.jpg", "2026-11-24T17:00:00Z", "blur", "b1"),
    AuditRecord("folder", f"{DOWNLOADS}/b.png", action="restore", profile="child", detail="restored from vault entry q2; from the tray",
                time="2026-11-24T18:00:00Z"),
    _agent("frozen", "2026-11-25T10:00:00Z", "the agent did not run for 600 s (stopped or frozen); nothing was judged meanwhile"),
    _blocked("folder", f"{DOWNLOADS}/e.jpg", "2026-11-25T11:00:00Z", "quarantine", "q4"),
    _blocked("folder", f"{PICTURES}/f.jpg", "2026-11-25T11:30:00Z", "quarantine", "q5"),
    _agent("heartbeat", "2026-11-25T18:00:00Z", "protecting (child); 9 decided, 6 flagged since start"),
]

# what the page must draw for that story, over [SINCE, UNTIL]
SEGMENTS = [("off", "no record"), ("protecting", ""), ("paused", "paused for 30 min"), ("protecting", ""),
            ("off", "stopped: quit from the tray"), ("protecting", ""), ("off", "frozen"), ("protecting", ""),
            ("off", "no sign of life")]
BLOCKED_BARS = 5  # (23rd, folder), (24th, folder), (24th, screen), (24th, video), (25th, folder)
FOLDERS = 2
IN_QUARANTINE = {"q1", "q3", "b1", "q4", "q5"}  # q2 was restored
MISSING_FROM_VAULT = "q5"  # its vault file is deleted: the page must say so


def write_story(data_dir: Path) -> None:
    log = AuditLog(data_dir / "audit" / "audit.csv")
    for record in STORY:
        log.append(record)
    vault = data_dir / "quarantine"
    vault.mkdir(parents=True, exist_ok=True)
    for entry in IN_QUARANTINE - {MISSING_FROM_VAULT}:
        (vault / f"{entry}.veil").write_bytes(b"sealed")
