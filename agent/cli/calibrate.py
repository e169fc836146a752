"""``veil calibrate BENIGN_DIR FLAGGED_DIR``: ROC, AUC, per-profile error rates and a threshold for
a chosen false-alarm rate, on the family's own folders; ``--write`` stores it (PIN)."""

from __future__ import annotations

import argparse
import html
import math
import sys
from pathlib import Path

import numpy as np

from agent.cli.common import config_of, open_audit, open_vault, parent_controls, unlock
from agent.errors import EXIT_OK, FatalError


def _probabilities(folder: Path, classifier, profile, threads: int) -> tuple[list[np.ndarray], int]:
    """Each readable picture's (or video's worst sample's) class probabilities, and how many could not be read."""
    from agent.decode import DecodeLimits
    from agent.scan import scan

    rows, unreadable = [], 0
    results = scan([folder], classifier, profile, threads, True, DecodeLimits(regions=False))
    try:
        for result in results:
            scores = result.whole_scores or result.scores
            if result.prediction == "error" or scores is None:
                unreadable += 1
                continue
            rows.append(np.array(scores.probs))
    finally:
        results.close()
    return rows, unreadable


def cmd_calibrate(args: argparse.Namespace) -> int:
    from agent.calibrate import charts, curves, parse_rate
    from agent.classifier import default_threads, open_classifier

    for folder in (args.benign, args.flagged):
        if not folder.is_dir():
            raise FatalError(f"{folder}: not a folder")
    try:
        rate = parse_rate(args.max_false_alarms)
    except ValueError as err:
        raise FatalError(str(err)) from None
    config = config_of(args)
    chosen = config.profile(args.profile)
    with open_classifier(config.model) as classifier:
        benign, bad_benign = _probabilities(args.benign, classifier, chosen, default_threads())
        flagged, bad_flagged = _probabilities(args.flagged, classifier, chosen, default_threads())
    if not benign or not flagged:
        raise FatalError(f"need pictures in both folders (found {len(benign)} benign, {len(flagged)} to flag)")
    found = curves(benign, flagged, config.profiles)
    print(f"{len(benign)} benign and {len(flagged)} pictures to flag"
          + (f" ({bad_benign + bad_flagged} unreadable, left out)" if bad_benign + bad_flagged else "")
          + ". These figures are only as good as the folders given: pictures like the ones this computer sees.")
    lines = []
    for name, curve in found.items():
        false_alarm, miss = curve.at(curve.profile.threshold)
        suggested = curve.threshold_for(rate)
        s_false, s_miss = curve.at(suggested)
        lines.append((name, curve.auc, curve.profile.threshold, false_alarm, miss, suggested, s_false, s_miss))
        print(f"{name:<8} AUC {curve.auc:.3f}; at its threshold {curve.profile.threshold:.2f}: {false_alarm:.1%} false alarms, "
              f"{miss:.1%} missed; for at most {rate:.1%} false alarms: threshold {suggested:.2f} ({s_false:.1%} false alarms, "
              f"{s_miss:.1%} missed)")
    png, svg = charts(found, chosen.name, args.output)
    page = args.output / "calibration.html"
    table = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in (name, f"{auc:.3f}", f"{t:.2f}", f"{fa:.1%}", f"{m:.1%}",
                                                                             f"{st:.2f}", f"{sfa:.1%}", f"{sm:.1%}")) + "</tr>"
                    for name, auc, t, fa, m, st, sfa, sm in lines)
    page.write_text(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Veil calibration</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:1000px;margin:auto;padding:12px}svg{max-width:100%;height:auto}"
        "table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:4px 8px}</style></head><body>"
        f"<h1>Veil calibration</h1><p>{len(benign)} benign pictures from {html.escape(str(args.benign))}, {len(flagged)} to flag "
        f"from {html.escape(str(args.flagged))}. These figures are only as good as the folders given.</p>"
        f"<figure>{svg}</figure><table><tr><th>profile</th><th>AUC</th><th>threshold</th><th>false alarms</th><th>missed</th>"
        f"<th>threshold for ≤ {rate:.1%} false alarms</th><th>false alarms</th><th>missed</th></tr>{table}</table></body></html>",
        encoding="utf-8")
    print(f"wrote {png} and {page}")
    if args.write:
        _write_threshold(args, config, chosen.name, found[chosen.name].threshold_for(rate))
    return EXIT_OK


def _write_threshold(args: argparse.Namespace, config, profile: str, threshold: float) -> None:
    """Store the threshold in the config file (comments kept), with the PIN, audited."""
    import tomllib

    import tomlkit

    from agent.config import ConfigError, example_text, parse_config
    from agent.dirs import user_config_file
    from agent.setup_flow import write_config_file

    path: Path = args.config or config.source or user_config_file()
    audit = open_audit(config)
    controls = parent_controls(config, audit, open_vault(config, audit))
    unlock(controls, f"write the {profile} profile's threshold")
    document = tomlkit.parse(path.read_text(encoding="utf-8") if path.exists() else example_text())
    profiles = document.setdefault("profiles", tomlkit.table(is_super_table=True))
    table = profiles.setdefault(profile, tomlkit.table())
    table["threshold"] = math.ceil(threshold * 10_000) / 10_000  # rounded up: never below the benign score it must not reach
    text = tomlkit.dumps(document)
    try:
        parse_config(tomllib.loads(text), source=path)
    except ConfigError as err:
        raise FatalError(f"not written: {err}") from None
    write_config_file(path, text)
    controls.note_config(f"calibrate: profile {profile} threshold {threshold:.4f} (at most {args.max_false_alarms} false alarms "
                         f"on {args.benign}); written to {path}")
    print(f"wrote threshold {threshold:.4f} for the {profile} profile to {path}", file=sys.stderr)
