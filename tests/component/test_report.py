"""``veil report``'s figures, from a known week written through the real audit log."""

import json
import re
import time

import pytest

from agent.config import AgentSection, Config
from agent.report import build_report, coverage, parse_since, parse_time, read_rows
from agent.report_html import render_html
from tests.agent_process import run_veil
from tests.report_story import DOWNLOADS, FOLDERS, IN_QUARANTINE, MISSING_FROM_VAULT, PICTURES, SEGMENTS, SINCE, UNTIL, write_story


@pytest.fixture
def utc(monkeypatch):
    """Days are the parent's local days; the story's are UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def story(tmp_path, utc):
    write_story(tmp_path / "data")
    config_file = tmp_path / "config.toml"
    config_file.write_text(f'[agent]\ndata_dir = "{tmp_path / "data"}"\n')
    return Config(agent=AgentSection(data_dir=str(tmp_path / "data"))), config_file


def test_the_week_on_record_is_what_the_report_says(story):
    config, _ = story
    report = build_report(config, parse_time(SINCE), parse_time(UNTIL))
    assert [s.state for s in report.segments] == [state for state, _ in SEGMENTS]
    for segment, (_, why) in zip(report.segments, SEGMENTS):
        assert segment.why.startswith(why), (segment, why)
    durations = [round(s.seconds / 60) for s in report.segments]
    assert durations == [8 * 60, 4 * 60, 30, 7 * 60 + 30, 12 * 60, 25 * 60 + 50, 10, 8 * 60 + 10, 5 * 60 + 50]
    assert round(report.share("protecting"), 4) == round((4 + 7.5 + 25 + 50 / 60 + 8 + 10 / 60) / 72, 4)
    assert report.blocked_by_day == {"2026-11-23": {"folder": 3}, "2026-11-24": {"screen": 1, "video": 1, "folder": 1},
                                     "2026-11-25": {"folder": 2}}
    assert report.totals["blocked"] == 8 and report.totals["logged"] == 1 and report.totals["screen episodes"] == 1
    assert report.top_folders == [(DOWNLOADS, 4), (PICTURES, 2)] and len(report.top_folders) == FOLDERS
    assert [e["seconds"] for e in report.episodes] == [150.0] and report.episodes[0]["label"] == "porn"
    assert {q["id"] for q in report.quarantine} == IN_QUARANTINE  # q2 was restored
    assert [q["id"] for q in report.quarantine if not q["in vault"]] == [MISSING_FROM_VAULT]
    assert report.chain == {"ok": True, "rows": 18, "problem": ""}


def test_the_period_filter_counts_only_what_happened_in_it(story):
    config, _ = story
    report = build_report(config, parse_time("2026-11-25T00:00:00Z"), parse_time(UNTIL))
    assert report.blocked_by_day == {"2026-11-25": {"folder": 2}}
    assert report.segments[0].state == "protecting"  # protection that began before the period is known
    assert report.episodes == []
    assert {q["id"] for q in report.quarantine} == IN_QUARANTINE  # the quarantine is "now", whatever the period


def test_a_killed_agent_shows_as_a_gap_with_its_reason(utc):
    rows = [{"source": "agent", "subject": "start", "time": "2026-11-23T08:00:00Z", "detail": ""},
            {"source": "agent", "subject": "heartbeat", "time": "2026-11-23T08:10:00Z", "detail": "protecting (child)"},
            {"source": "agent", "subject": "gap", "time": "2026-11-23T09:00:00Z",
             "detail": "protection stopped 2026-11-23T08:10:30Z, resumed 2026-11-23T09:00:00Z: killed; last heartbeat 2026-11-23T08:10:30Z"},
            {"source": "agent", "subject": "start", "time": "2026-11-23T09:00:00Z", "detail": ""},
            {"source": "agent", "subject": "start", "time": "2026-11-23T09:30:00Z", "detail": "run --once: profile child"}]
    segments = coverage(rows, parse_time("2026-11-23T08:00:00Z"), parse_time("2026-11-23T09:10:00Z"), 600)
    assert [(s.state, s.why, round(s.seconds)) for s in segments] == [
        ("protecting", "", 630), ("off", "killed", 2970), ("protecting", "", 600)]
    # and later, with no row for longer than a heartbeat: the agent is gone, and the page says so
    later = coverage(rows, parse_time("2026-11-23T08:00:00Z"), parse_time("2026-11-23T09:20:00Z"), 600)
    assert later[-1].state == "off" and later[-1].why.startswith("no sign of life since 2026-11-23T09:00:00Z")


def test_an_edited_log_says_so_on_the_page(story):
    config, _ = story
    log = config.audit_file
    log.write_text(log.read_text().replace("/home/kid/Downloads/a.jpg", "/home/kid/Downloads/z.jpg"))
    report = build_report(config, parse_time(SINCE), parse_time(UNTIL))
    assert not report.chain["ok"] and report.chain["problem"]
    assert "The audit log is broken" in render_html(report)


def test_since_takes_periods_dates_and_all():
    now = parse_time("2026-11-30T12:00:00Z")
    assert parse_since("7d", now) == now - 7 * 86400
    assert parse_since("36h", now) == now - 36 * 3600
    assert parse_since("all", now) is None
    assert parse_since("2026-11-23T00:00:00Z", now) == parse_time("2026-11-23T00:00:00Z")
    with pytest.raises(ValueError, match="give a period like 7d"):
        parse_since("last week", now)


def test_the_command_writes_html_or_json_and_refuses_a_bad_period(story, tmp_path):
    _, config_file = story
    page = tmp_path / "report.html"
    done = run_veil("report", "--config", str(config_file), "--since", "all", "-o", str(page), env={"TZ": "UTC"})
    assert done.returncode == 0, done.stderr
    assert page.stat().st_mode & 0o777 == 0o600  # it names the child's files
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "default-src 'none'" in text and "<script" not in text
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)|url\(\s*["']?([^)"']*)""", text)
    assert references and all(ref.startswith(("#", "data:")) for pair in references for ref in pair if ref)  # nothing to fetch
    assert "<link" not in text and "@import" not in text
    done = run_veil("report", "--config", str(config_file), "--since", "all", "--format", "json", env={"TZ": "UTC"})
    data = json.loads(done.stdout)
    assert data["totals"]["blocked"] == 8 and data["chain"]["ok"] and len(data["top_folders"]) == FOLDERS
    assert data["segments"][-1]["state"] == "off" and "no sign of life" in data["segments"][-1]["why"]
    bad = run_veil("report", "--config", str(config_file), "--since", "yesterday")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "--since" in bad.stderr


def test_no_audit_log_yet_is_an_empty_report_not_an_error(tmp_path):
    config = Config(agent=AgentSection(data_dir=str(tmp_path / "data")))
    report = build_report(config, None)
    assert report.segments == [] and report.totals["blocked"] == 0 and report.quarantine == []
    assert read_rows(config.audit_file) == []
    assert "Nothing was flagged in this period" in render_html(report) or "Nothing was blocked" in render_html(report)


def test_odd_names_and_short_rows_do_not_stop_the_report(story):
    """A folder named like TeX, a row cut short by hand: the page is still made."""
    config, _ = story
    from agent.audit import AuditLog, AuditRecord

    AuditLog(config.audit_file).append(AuditRecord("folder", "/home/kid/$\\foo$/x.jpg", decision="malign", action="log",
                                                   profile="child", malign="0.9", time="2026-11-25T12:00:00Z"))
    with open(config.audit_file, "a", encoding="utf-8") as log:
        log.write("2026-11-25T13:00:00Z,agent,config\n")  # short: no detail column at all
    report = build_report(config, parse_time(SINCE), parse_time(UNTIL))
    page = render_html(report)
    assert "$\\foo$" in page and not report.chain["ok"]  # the cut row breaks the chain, and the page says so
    assert [w["event"] for w in report.warnings] == ["gap", "frozen", "config"]
    assert "<p>1 gap, 1 freeze, 1 settings change in this period" in page
