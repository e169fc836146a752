"""``veil report``: the audit log as a page a parent reads, or JSON for scripts."""

from __future__ import annotations

import argparse
import json
import sys
import time

from agent.cli.common import config_of
from agent.errors import EXIT_OK, FatalError


def cmd_report(args: argparse.Namespace) -> int:
    from agent.report import build_report, parse_since
    from agent.report_html import render_html

    config = config_of(args)
    now = time.time()
    try:
        since = parse_since(args.since, now)
    except ValueError as err:
        raise FatalError(str(err)) from None
    report = build_report(config, since, now)
    text = json.dumps(report.to_json(), indent=1) + "\n" if args.format == "json" else render_html(report)
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as err:
        raise FatalError(f"{args.output}: cannot write the report: {err.strerror or err}") from None
    print(f"wrote {args.output}", file=sys.stderr)
    return EXIT_OK
