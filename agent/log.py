"""Diagnostics logging (never the audit log: design, style 8).

stderr gets short lines for the user; an optional rotating file keeps the detail.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

_CONSOLE_FORMAT = "veil: %(message)s"
_FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"


def setup_logging(verbosity: int = 0, log_file: Path | None = None) -> None:
    """Configure the root logger once per process.

    verbosity: -1 quiet (errors only), 0 warnings, 1 info, 2 debug.
    """
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if log_file else level)

    console = logging.StreamHandler()
    console.setLevel(level)
    console.setFormatter(logging.Formatter(_CONSOLE_FORMAT))
    root.addHandler(console)

    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        rotating = _LogFile(log_file, maxBytes=2 * 1024 * 1024, backupCount=3, encoding="utf-8")
        rotating.setLevel(logging.DEBUG)
        rotating.setFormatter(logging.Formatter(_FILE_FORMAT))
        root.addHandler(rotating)


class _LogFile(logging.handlers.RotatingFileHandler):
    """The detail file. When it cannot be written (a full disk), the line still went to stderr:
    logging's own complaint — a traceback on stderr for every line — would bury it."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass
