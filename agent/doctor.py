"""``veil doctor``: what Veil would run with here, and how fast, in one report."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np

from agent import __version__
from agent.classifier import open_classifier
from agent.classifier.preprocess import MODEL_SIZE, RESIZE_METHOD
from agent.config import Config


def _display() -> dict[str, Any]:
    if sys.platform.startswith("linux"):
        x11, wayland = os.environ.get("DISPLAY"), os.environ.get("WAYLAND_DISPLAY")
        if x11:
            return {"available": True, "detail": f"X11 display {x11}" + (" (Wayland session with XWayland)" if wayland else "")}
        if wayland:
            return {"available": False, "detail": f"Wayland ({wayland}) without X access: screen sampling unavailable"}
        return {"available": False, "detail": "no display (DISPLAY and WAYLAND_DISPLAY unset)"}
    return {"available": True, "detail": f"{platform.system()} desktop"}


def _latency_ms(classifier, runs: int = 20) -> dict[str, float]:
    frame = np.random.default_rng(0).integers(0, 256, (1, MODEL_SIZE, MODEL_SIZE, 3), dtype=np.uint8)
    classifier.classify(frame)  # first call allocates and packs weights
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        classifier.classify(frame)
        times.append((time.perf_counter() - start) * 1000)
    return {"median": round(float(np.median(times)), 2), "min": round(min(times), 2)}


def run_doctor(config: Config) -> dict[str, Any]:
    from agent.tray.icon import tray_availability

    with open_classifier(config.model) as classifier:
        latency = _latency_ms(classifier)
        backend = classifier.backend
        report: dict[str, Any] = {
            "veil": __version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "config": str(config.source) if config.source else "built-in defaults",
            "model": {"path": str(classifier.model.path), "sha256": classifier.model.sha256, "input": classifier.model.input_dtype},
            "backend": {"name": backend.name, "version": backend.version},
            "accelerator": {"device": classifier.choice.device, "why": classifier.choice.reason},
            "threads": backend.threads,
            "preprocess": RESIZE_METHOD,
            "regions": config.model.regions,
            "latency_ms_one_image": latency,
            "display": _display(),
            "tray": tray_availability(),
        }
    warnings = []
    # tflite-runtime's XNNPACK takes no int8 op, so an int8 model runs there on slow builtin
    # kernels (benchmarks/RESULTS.md: 21-56 ms against 2 ms on LiteRT). Veil's own choice avoids
    # it; a configured model may not.
    if backend.name == "tflite_runtime" and classifier.model.int8:
        warnings.append(
            f"tflite-runtime {backend.version} runs int8 models off XNNPACK ({latency['median']} ms per image "
            "here); use backend = \"litert\" or the f16 model for full speed"
        )
    warnings += _vault_warnings(config)
    report["warnings"] = warnings
    return report


def _vault_warnings(config: Config) -> list[str]:
    """The vault key's trouble, and a PIN from before the 6-character rule."""
    from agent.cli.common import open_state
    from agent.vault import Keyring, VaultError

    state = open_state(config) if (config.data_path / "state.sqlite3").exists() else None
    keyring = Keyring(config.quarantine_dir, trusted=lambda: state.get("key_fingerprint") if state else None)
    trouble = keyring.trouble()
    if trouble:
        return [f"vault keys: {trouble}"]
    try:
        if keyring.path.exists() and keyring.pin_too_short:
            return ["the PIN is shorter than 6 characters: set a longer one (veil pin set)"]
    except VaultError:
        pass
    return []


def format_report(report: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report, indent=1)
    lines = [
        f"veil {report['veil']} (Python {report['python']}, {report['platform']})",
        f"config:       {report['config']}",
        f"model:        {report['model']['path']}",
        f"sha256:       {report['model']['sha256']}",
        f"backend:      {report['backend']['name']} {report['backend']['version']}",
        f"accelerator:  {report['accelerator']['device']} — {report['accelerator']['why']}",
        f"threads:      {report['threads']}",
        f"preprocess:   {report['preprocess']}",
        f"regions:      {'on: nine tiles of each still of 600 px or more' if report['regions'] else 'off ([model] regions = false)'}",
        f"latency:      {report['latency_ms_one_image']['median']} ms per image (median of 20, batch 1)",
        f"display:      {report['display']['detail']}",
        f"tray:         {report['tray']}",
    ]
    lines += [f"warning:      {w}" for w in report["warnings"]]
    return "\n".join(lines)
