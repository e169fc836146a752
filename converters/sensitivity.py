"""Which layers must stay in float for int8 to keep the model's decisions?

``python -m converters sensitivity`` answers on calibration data only (the held-out photos and
canaries that judge the result are never looked at):

1. TensorFlow's QuantizationDebugger ranks the layers by their own int8 error (RMSE / scale);
2. each of the top candidates is kept in float alone, and the model's output error (|Δ malign|,
   child profile, vs the float model) is measured;
3. candidates are added in order of that measured effect until the error is within
   ``TARGET_MEAN`` / ``TARGET_MAX`` (half the required limits: margin for unseen images).

The answer is written to models/int8-sensitivity.json; ``convert.SENSITIVE_LAYERS`` holds it.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import numpy as np

from agent.decode import load_model_input
from converters import convert as conv
from converters.float_model import build_source_model, with_pixel_input
from converters.nsfwjs_source import SourceModel

TARGET_MEAN = conv.MAX_MEAN_DELTA / 2
TARGET_MAX = conv.MAX_MAX_DELTA / 2
CANDIDATES = 16
MAX_LAYERS = 8


def _layer_of(tensor_name: str) -> str:
    # "veil_nsfw_mobilenet_v2/model_1/<layer>/<op>;..." → "<layer>"
    parts = tensor_name.split(";")[0].split("/")
    return parts[2] if len(parts) > 2 else parts[-1]


def rank_layers(pixel_model, dataset) -> list[tuple[str, float]]:
    import tensorflow as tf

    debugger = tf.lite.experimental.QuantizationDebugger(converter=conv._int8_converter(pixel_model, dataset), debug_dataset=dataset)
    debugger.run()
    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    ranked: dict[str, float] = {}
    for row in csv.DictReader(io.StringIO(buffer.getvalue())):
        scale = float(row["scale"])
        if scale > 0:
            layer = _layer_of(row["tensor_name"])
            ranked[layer] = max(ranked.get(layer, 0.0), float(row["mean_squared_error"]) ** 0.5 / scale)
    return sorted(ranked.items(), key=lambda kv: -kv[1])


def run_sensitivity(source: SourceModel, canary_dir: Path, out: Path) -> dict:
    started = time.time()
    pixel_model = with_pixel_input(build_source_model(source.topology, source.weights))
    f32 = conv._convert_float(pixel_model, f16=False)
    cal_photos, _ = conv._photo_split()
    cal_canaries = [p for _, p, _ in conv._canaries(canary_dir, "calibration")]
    dataset = conv._calibration_batches(cal_photos, cal_canaries)
    judge = [(p.name, load_model_input(p), True) for p in [*cal_photos, *cal_canaries]]

    def error(layers: list[str]) -> tuple[float, float]:
        model = conv.convert_int8(pixel_model, dataset, conv.tensor_names_of_layers(f32, layers))
        child = conv._fidelity(model, pixel_model, judge)["profiles"]["child"]
        return child["mean_abs_delta_malign"], child["max_abs_delta_malign"]

    ranked = rank_layers(pixel_model, dataset)
    report: dict = {"what": "int8 output error (child |Δ malign| vs float) on calibration data", "debugger_rank": [[n, round(v, 3)] for n, v in ranked[:CANDIDATES]]}
    report["all_int8"] = error([])
    print(f"all int8: mean, max |Δ malign| = {report['all_int8']}", flush=True)
    alone = {}
    for layer, _ in ranked[:CANDIDATES]:
        alone[layer] = error([layer])
        print(f"float {layer} alone: {alone[layer]}", flush=True)
    report["float_alone"] = alone
    chosen: list[str] = []
    steps = []
    for layer in sorted(alone, key=lambda name: alone[name]):
        if alone[layer][0] >= report["all_int8"][0]:
            break  # the rest do not help on their own
        chosen.append(layer)
        result = error(chosen)
        steps.append([list(chosen), result])
        print(f"float {chosen}: {result}", flush=True)
        if (result[0] <= TARGET_MEAN and result[1] <= TARGET_MAX) or len(chosen) >= MAX_LAYERS:
            break
    report["steps"] = steps
    report["chosen"] = chosen
    report["targets"] = {"mean": TARGET_MEAN, "max": TARGET_MAX}
    report["seconds"] = round(time.time() - started)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"SENSITIVE_LAYERS = {tuple(chosen)!r}")
    return report
