"""``veil video``: a video per interval, its flagged segments, and cut/keep/blur copies."""

from __future__ import annotations

import argparse
import sys

from agent.cli.common import config_of
from agent.errors import EXIT_OK


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


def cmd_video(args: argparse.Namespace) -> int:
    import json

    from agent.classifier import open_classifier
    from agent.errors import EXIT_FLAGGED, EXIT_UNREADABLE, FatalError
    from agent.sources.video import VideoError
    from agent.video import analyse_video

    if args.every <= 0:
        raise FatalError("--every must be > 0")
    config = config_of(args)
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

