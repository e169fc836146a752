"""A ``Report`` → one self-contained HTML page: charts drawn by Matplotlib as inline SVG (text as
paths, so no font is fetched), inline CSS, no script, and a Content-Security-Policy that forbids
the page any request at all. Readable on a phone (the charts scale to the width) and printed.

Each chart mark (a bar, a stretch of the timeline) is an SVG group with an id ``mark-<chart>-<n>``:
a page can be checked for exactly what it draws.
"""

from __future__ import annotations

import html
import io
import re
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from agent import __version__
from agent.counters import iso
from agent.report import Report

STATE_COLOURS = {"protecting": "#2e7d32", "paused": "#f9a825", "off": "#c62828"}
SOURCE_COLOURS = {"folder": "#1565c0", "screen": "#6a1b9a", "video": "#ef6c00", "scan": "#546e7a"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:960px;padding:12px 16px;color:#1b1b1b}
h1{font-size:1.5em;margin:.4em 0}h2{font-size:1.15em;margin:1.4em 0 .4em;border-bottom:1px solid #ddd}
.muted{color:#555}.ok{color:#2e7d32}.bad{color:#c62828;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:8px}.card{flex:1 1 140px;border:1px solid #ddd;border-radius:6px;padding:8px}
.card b{display:block;font-size:1.6em}
svg{max-width:100%;height:auto;display:block}
table{border-collapse:collapse;width:100%;font-size:.9em}td,th{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;
vertical-align:top;overflow-wrap:anywhere}
.wide{overflow-x:auto}td.n{white-space:nowrap}
@media (max-width:600px){table,tbody,tr,td{display:block}tr:first-child{display:none}tr{border-bottom:1px solid #ddd;padding:4px 0}
td{border:0;padding:1px 4px}td::before{content:attr(data-label) ": ";color:#555}}
@media print{body{max-width:none}h2{break-after:avoid}figure,table{break-inside:avoid}}
"""


def _svg(figure) -> str:
    """The figure as an inline ``<svg>`` that scales with the page (viewBox kept, size dropped)."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    svg = buffer.getvalue()
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg[svg.index("<svg"):], flags=re.S)  # Matplotlib's RDF credits
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", svg, count=1)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI toolkit: the report is a file
    import matplotlib.pyplot as plt

    # narrow figures with large type: scaled to a phone's width the labels stay readable
    # text.parse_math off: a folder named "$x$" is a name, not TeX (and a malformed one would stop the report)
    plt.rcParams.update({"svg.fonttype": "path", "font.size": 11, "svg.hashsalt": "veil", "text.parse_math": False})
    return plt


def coverage_chart(report: Report) -> str:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 1.5))
    for n, segment in enumerate(report.segments):
        bar = axes.barh(0, segment.seconds / 86400, left=(segment.start - report.since) / 86400, height=0.6,
                        color=STATE_COLOURS[segment.state])[0]
        bar.set_gid(f"mark-coverage-{n}")
    days = (report.until - report.since) / 86400
    axes.set_xlim(0, max(days, 1 / 24))
    axes.set_yticks([])
    ticks = _time_ticks(report.since, report.until)
    axes.set_xticks([(t - report.since) / 86400 for t in ticks],
                    [time.strftime("%H:%M" if days < 2 else "%a %d", time.localtime(t)) for t in ticks])
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in STATE_COLOURS.values()]
    axes.legend(handles, list(STATE_COLOURS), ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.35), frameon=False)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    return _svg(figure)


def _time_ticks(since: float, until: float, most: int = 8) -> list[float]:
    """Local midnights (whole hours for a period under two days) inside [since, until], at most ``most``."""
    if until - since < 2 * 86400:
        first = -(-since // 3600) * 3600
        ticks = [first + 3600 * n for n in range(int((until - first) // 3600) + 1)]
    else:
        ticks, day = [], datetime.fromtimestamp(since).replace(hour=0, minute=0, second=0, microsecond=0)
        while day.timestamp() <= until:
            if day.timestamp() >= since:
                ticks.append(day.timestamp())
            day = (day + timedelta(days=1, hours=3)).replace(hour=0)  # the next local midnight, across a DST change too
    return ticks[:: max(1, -(-len(ticks) // most))]


def blocked_chart(report: Report) -> str:
    plt = _pyplot()
    days = list(report.blocked_by_day)
    figure, axes = plt.subplots(figsize=(7, 2.8))
    bottoms = [0] * len(days)
    n = 0
    for source, colour in SOURCE_COLOURS.items():
        counts = [report.blocked_by_day[day].get(source, 0) for day in days]
        if not any(counts):
            continue
        bars = axes.bar(range(len(days)), counts, bottom=bottoms, color=colour, label=source)
        for bar, count in zip(bars, counts):
            if count:
                bar.set_gid(f"mark-blocked-{n}")
                n += 1
            else:
                bar.remove()
        bottoms = [b + c for b, c in zip(bottoms, counts)]
    axes.set_xticks(range(len(days)), [time.strftime("%a %d %b", time.strptime(d, "%Y-%m-%d")) for d in days],
                    rotation=30 if len(days) > 7 else 0, ha="right" if len(days) > 7 else "center")
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.set_ylabel("items")
    axes.legend(frameon=False)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return _svg(figure)


def folders_chart(report: Report) -> str:
    plt = _pyplot()
    folders = list(reversed(report.top_folders))
    figure, axes = plt.subplots(figsize=(7, 0.5 + 0.4 * len(folders)))
    bars = axes.barh(range(len(folders)), [n for _, n in folders], color=SOURCE_COLOURS["folder"])
    for n, bar in enumerate(bars):
        bar.set_gid(f"mark-folders-{n}")
    axes.set_yticks(range(len(folders)), [_short(f) for f, _ in folders])
    axes.xaxis.get_major_locator().set_params(integer=True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return _svg(figure)


def _short(path: str, keep: int = 48) -> str:
    return path if len(path) <= keep else "…" + path[-(keep - 1):]


def _score(text: str) -> str:
    try:
        return f"{float(text):.2f}"
    except ValueError:
        return text or "—"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours = seconds // 60, seconds // 3600
    return f"{minutes} min" if hours == 0 else f"{hours} h {minutes % 60:02d} min" if hours < 48 else f"{seconds / 86400:.1f} days"


def _local(ts_or_iso: Any) -> str:
    from agent.report import parse_time

    ts = parse_time(ts_or_iso) if isinstance(ts_or_iso, str) else ts_or_iso
    return time.strftime("%a %d %b %H:%M", time.localtime(ts)) if ts is not None else str(ts_or_iso)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    """A table that turns into labelled lines on a phone (each cell says its column)."""
    e = html.escape
    cells = "".join("<tr>" + "".join(f'<td data-label="{e(h)}">{e(str(c))}</td>' for h, c in zip(head, row)) + "</tr>" for row in rows)
    return f'<div class="wide"><table><tr>{"".join(f"<th>{e(h)}</th>" for h in head)}</tr>{cells}</table></div>'


def render_html(report: Report) -> str:
    e = html.escape
    period = f"{_local(report.since)} to {_local(report.until)}"
    gaps = [s for s in report.segments if s.state != "protecting"]
    chain = report.chain
    chain_line = (f'<p class="ok">The audit log is intact ({chain["rows"]} rows, hash chain checked).</p>' if chain["ok"] else
                  f'<p class="bad">The audit log is broken: {e(str(chain["problem"]))}. Someone may have edited or deleted '
                  "part of it; the figures below come from what is left.</p>")
    totals = report.totals
    cards = "".join(f'<div class="card"><b>{e(str(value))}</b>{e(label)}</div>' for label, value in (
        ("of the time protected", f"{report.share('protecting'):.0%}"), ("flagged items", totals["blocked"]),
        ("screen episodes", totals["screen episodes"]), ("in quarantine now", len(report.quarantine))))
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        # nothing may be fetched: not a script, a font, an image or a stylesheet
        """<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">""",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Veil report: {e(period)}</title><style>{CSS}</style></head><body>",
        f"<h1>Veil report</h1><p class=\"muted\">{e(period)} · made {e(_local(time.time()))} on this computer; "
        "nothing in it left the device.</p>", chain_line, f'<div class="cards">{cards}</div>',
        "<h2>When Veil was protecting</h2>", f'<figure id="chart-coverage">{coverage_chart(report)}</figure>',
    ]
    if gaps:
        parts.append(_table(["from", "to", "how long", "state", "why"],
                            [[_local(s.start), _local(s.end), _duration(s.seconds), s.state, s.why or "—"] for s in gaps]))
    else:
        parts.append("<p>No gaps or pauses in this period.</p>")
    parts.append("<h2>Flagged items per day</h2>")
    if report.blocked_by_day:
        moved = totals["quarantined"] + totals["blurred"]
        parts.append(f"<p>{moved} quarantined, blurred or covered on screen; {totals['logged']} only logged "
                     "(the profile's action for that source is <code>log</code>).</p>")
        parts.append(f'<figure id="chart-blocked">{blocked_chart(report)}</figure>')
        parts.append(_table(["profile", "flagged items"], [[p, n] for p, n in report.blocked_by_profile.items()]))
    else:
        parts.append("<p>Nothing was blocked in this period.</p>")
    if report.top_folders:
        parts += ["<h2>Folders where most was found</h2>", f'<figure id="chart-folders">{folders_chart(report)}</figure>']
    parts.append("<h2>Pictures on the screen</h2>")
    parts.append(_table(["screen", "from", "how long", "peak score", "ended"],
                        [[ep["screen"], _local(ep["start"]), _duration(ep["seconds"]), f'{ep["peak"]:.2f} ({ep["label"]})', ep["ended"]]
                         for ep in report.episodes]) if report.episodes else "<p>None in this period.</p>")
    parts.append("<h2>In quarantine now</h2>")
    if report.quarantine:
        parts.append('<p class="muted">Names and scores only; the files stay sealed. Restore one with the PIN from the tray '
                     "or with <code>veil quarantine restore ID</code>.</p>")
        parts.append(_table(["file", "since", "score", "action", "entry"],
                            [[q["name"], _local(q["time"]), _score(q["malign"]), q["action"],
                              q["id"] + ("" if q["in vault"] else " (missing from the vault folder!)")] for q in report.quarantine]))
    else:
        parts.append("<p>The quarantine is empty.</p>")
    parts.append("<h2>Worth a look</h2>")
    if report.warnings:
        counts = Counter(w["event"] for w in report.warnings)
        said = {"error": ("error", "errors"), "pin-failed": ("wrong PIN", "wrong PINs"), "config": ("settings change", "settings changes"),
                "frozen": ("freeze", "freezes"), "gap": ("gap", "gaps")}
        parts.append("<p>" + ", ".join(f"{n} {said.get(event, (event, event))[n != 1]}" for event, n in counts.most_common())
                     + " in this period (the latest first):</p>")
        parts.append(_table(["when", "what", "detail"], [[_local(w["time"]), w["event"], w["detail"]] for w in report.warnings[::-1][:30]]))
    else:
        parts.append("<p>No errors, wrong PINs or settings changes in this period.</p>")
    parts.append("<h2>Corrections</h2>")
    if report.corrections:
        parts.append(_table(["#", "kind", "picture"], [[c["number"], "never flagged" if c["kind"] == "allow" else "always flagged",
                                                        c["label"]] for c in report.corrections]))
    parts.append("<p class=\"muted\">A false alarm, or something Veil missed? With the PIN, <code>veil allow FILE</code> "
                 "(or restoring it from the quarantine) stops a picture and its copies from being flagged, and "
                 "<code>veil block FILE</code> (or the tray's <b>Always block a picture…</b>) flags them whatever the model says. "
                 "Only a fingerprint of the picture is kept, never the picture.</p>")
    settings = [[key, ", ".join(f"{k} {v:g}" for k, v in value.items()) if isinstance(value, dict) else
                 ", ".join(value) if isinstance(value, list) else value] for key, value in report.settings.items()]
    parts += ["<h2>Settings</h2>", _table(["setting", "value"], settings),
              f'<p class="muted">Veil {e(__version__)} · period {e(iso(report.since))} to {e(iso(report.until))} (UTC) · '
              "make this page again with <code>veil report -o report.html</code>.</p>", "</body></html>"]
    return "\n".join(parts)
