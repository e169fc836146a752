"""Writers for ``veil scan`` results: table, csv, jsonl (INTERFACES.md), streamed row by row."""

from __future__ import annotations

import csv
import json
import sys
from typing import IO, Any

from agent.classifier.scores import LABELS
from agent.fsutil import display_path
from agent.scan import ScanResult

_FILE_WIDTH = 48  # rows stream out, so the column cannot be sized to the longest path
CSV_COLUMNS = ("file", "prediction", "latency_ms", "benign", "malign", *LABELS, "frames", "worst_frame", "error", "region")


def _row(result: ScanResult) -> dict[str, Any]:
    scores = result.scores.as_dict() if result.scores else {label: None for label in LABELS}
    decision = result.decision
    return {
        "file": display_path(result.path),
        "prediction": result.prediction,
        "latency_ms": round(result.latency_ms, 2),
        "benign": round(decision.benign, 6) if decision else None,
        "malign": round(decision.malign, 6) if decision else None,
        **{label: (round(value, 6) if value is not None else None) for label, value in scores.items()},
        "frames": result.frames,
        "worst_frame": result.worst_frame,
        "error": result.error,
        # x,y,w,h in the original image's pixels of the region that decided; empty: the whole image
        "region": (f"{r.left},{r.top},{r.width},{r.height}" if (r := result.region) else None),
    }


class ResultWriter:
    def __init__(self, stream: IO[str], fmt: str):
        self.stream, self.fmt = stream, fmt
        self.rows = 0
        if fmt == "csv":
            self._csv = csv.writer(stream, lineterminator="\n")
            self._csv.writerow(CSV_COLUMNS)
        elif fmt == "table":
            stream.write(f"{'file':<{_FILE_WIDTH}} {'prediction':<10} {'latency_ms':>10} {'benign':>7} {'malign':>7}  top\n")

    def write(self, result: ScanResult) -> None:
        self.rows += 1
        row = _row(result)
        if self.fmt == "csv":
            self._csv.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
        elif self.fmt == "jsonl":
            self.stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            self.stream.write(self._table_line(result, row))
        self.stream.flush()

    def mark_partial(self, reason: str) -> None:
        """The last line of an output cut short (Ctrl-C), so that no one takes it for the whole scan:
        a JSON object with ``partial`` in jsonl, a ``# partial: ...`` line in csv and table."""
        if self.fmt == "jsonl":
            self.stream.write(json.dumps({"partial": True, "reason": reason, "rows": self.rows}) + "\n")
        else:
            self.stream.write(f"# partial: {reason} after {self.rows} rows\n")
        self.stream.flush()

    @staticmethod
    def _table_line(result: ScanResult, row: dict[str, Any]) -> str:
        """Geacc's predict.py table: file, prediction, latency, benign, malign, then the top class."""
        head = f"{row['file']:<{_FILE_WIDTH}} {row['prediction']:<10} {row['latency_ms']:>10.1f}"
        if result.scores is None:
            return f"{head} {'':>7} {'':>7}  {row['error']}\n"
        extra = f" (worst of {row['frames']} frames: #{row['worst_frame']})" if row["frames"] > 1 else ""
        if row["region"]:
            extra += f" (region {row['region']})"
        return f"{head} {row['benign']:>7.3f} {row['malign']:>7.3f}  {result.scores.top}{extra}\n"


class Progress:
    """A one-line counter on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.files = self.flagged = self.errors = 0

    def update(self, result: ScanResult) -> None:
        self.files += 1
        self.flagged += result.flagged
        self.errors += result.prediction == "error"
        if self.enabled:
            sys.stderr.write(f"\rveil: {self.files} files, {self.flagged} flagged, {self.errors} unreadable")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.files:
            sys.stderr.write("\n")
