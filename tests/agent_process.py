"""The agent as users run it: ``veil run`` in its own process, on folders in tmp_path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent.audit import _rows as audit_rows
from agent.audit import log_files
from tests.conftest import REPO


def write_config(tmp_path: Path, watches: list[Path], extra: str = "", data: Path | None = None, **watch_options: str) -> Path:
    """A config for tests: data in ``data`` (default tmp_path/data), screen off, benign decisions
    audited too; ``extra`` TOML tables, then one [[watch]] per folder with ``watch_options``."""
    options = "".join(f"{key} = {value}\n" for key, value in watch_options.items())
    text = f'[agent]\ndata_dir = "{data or tmp_path / "data"}"\n[screen]\nenabled = false\n[audit]\nlog_benign = true\n{extra}\n'
    text += "".join(f'[[watch]]\npath = "{w}"\n{options}' for w in watches)
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def run_veil(*args: str, env: dict | None = None, timeout: float = 300, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``veil`` in its own process; ``prefix`` runs it through another command (``setpriv`` as another user)."""
    return subprocess.run([*prefix, sys.executable, "-m", "agent", *args], capture_output=True, text=True, cwd=REPO, timeout=timeout,
                          env={**os.environ, "VEIL_CONFIG": "/nonexistent", **(env or {})})


class Agent:
    """``veil run --no-tray`` (or with its tray icon) in the background; ``started`` once its
    start-up line is out."""

    def __init__(self, config: Path, env: dict | None = None, tray: bool = False, args: tuple[str, ...] = (),
                 prefix: tuple[str, ...] = ()):
        self.config = config
        self.proc = subprocess.Popen([*prefix, sys.executable, "-m", "agent", "run", *([] if tray else ["--no-tray"]), "--config", str(config),
                                      *args],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=REPO,
                                     env={**os.environ, "VEIL_CONFIG": "/nonexistent", **(env or {})})
        self.lines: list[str] = []
        self.started = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self.started.wait(60):
            self.kill()
            raise AssertionError(f"the agent did not start: {self.lines}")

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if "protecting with profile" in line:
                self.started.set()
        self.started.set()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)


def wait_until(condition: Callable[[], bool], timeout: float = 60, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def audit_of(data: Path) -> list[dict[str, str]]:
    path = data / "audit" / "audit.csv"
    return [row for file in log_files(path) for row in audit_rows(file)]


def folder_rows(data: Path, subject: Path | None = None) -> list[dict[str, str]]:
    return [r for r in audit_of(data) if r["source"] == "folder" and (subject is None or r["subject"] == str(subject))]


def vault_entries(data: Path) -> list[Path]:
    return sorted((data / "quarantine").glob("*.veil"))
