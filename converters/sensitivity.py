"""Which parts of the network must stay in float for int8 to keep the model's behaviour?

``python -m converters sensitivity`` answers on calibration data only (the held-out photos and
canaries that judge the final model are never looked at):

1. TensorFlow's QuantizationDebugger ranks layers by their own int8 error (RMSE / scale): the
   report keeps the top of that list, to show where the error comes from;
2. each MobileNetV2 stage (``convert.STAGES``) is kept in float alone and the model's output
   error is measured (|Δ malign| under the child profile, vs the float model);
3. stages are added in order of that effect until the calibration-set error is within the
   required limits with no changed decision.

Single layers were tried first and did not converge: keeping one layer in float changes its
neighbours' quantisation, and the output error moved up and down as layers were added.

The answer goes to models/int8-sensitivity.json; ``convert.FLOAT_STAGES`` holds it.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

from agent.decode import load_model_input
from converters import convert as conv
from converters.float_model import build_source_model, conversion_model, with_pixel_input
from converters.nsfwjs_source import SourceModel

RANK_SHOWN = 12


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
    folded = conversion_model(source.topology, source.weights)
    f32 = conv._convert_float(folded, f16=False)
    cal_photos, _ = conv._photo_split()
    cal_canaries = [p for _, p, _ in conv._canaries(canary_dir, "calibration")]
    dataset = conv._calibration_batches(cal_photos, cal_canaries)
    judge = [(p.name, load_model_input(p), True) for p in [*cal_photos, *cal_canaries]]

    def measure(stages: list[str]) -> dict:
        model = conv.convert_int8(folded, dataset, conv.tensor_names_of_stages(f32, stages))
        fid = conv._fidelity(model, pixel_model, judge)
        child = fid["profiles"]["child"]
        flips = sum(len(p["decision_flips_required_inputs"]) for p in fid["profiles"].values())
        result = {"mean": child["mean_abs_delta_malign"], "max": child["max_abs_delta_malign"], "decision_flips": flips}
        print(f"float stages {stages}: {result}", flush=True)
        return result

    def good(result: dict) -> bool:
        return result["mean"] <= conv.MAX_MEAN_DELTA and result["max"] <= conv.MAX_MAX_DELTA and result["decision_flips"] == 0

    report: dict = {
        "what": "int8 output error (child |Δ malign| vs the float model) on the calibration photos and canaries",
        "debugger_rank_rmse_over_scale": [[n, round(v, 3)] for n, v in rank_layers(folded, dataset)[:RANK_SHOWN]],
        "all_int8": measure([]),
    }
    alone = {stage: measure([stage]) for stage in conv.STAGES}
    report["float_alone"] = alone
    chosen: list[str] = []
    steps = []
    for stage in sorted(alone, key=lambda name: (alone[name]["mean"], alone[name]["max"])):
        chosen.append(stage)
        result = alone[stage] if len(chosen) == 1 else measure(chosen)
        steps.append({"float_stages": list(chosen), **result})
        if good(result):
            break
    report["steps"] = steps
    report["chosen"] = chosen if steps and good(steps[-1]) else None
    report["limits"] = {"mean": conv.MAX_MEAN_DELTA, "max": conv.MAX_MAX_DELTA}
    report["seconds"] = round(time.time() - started)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"FLOAT_STAGES = {tuple(chosen)!r}" if report["chosen"] else "no combination of stages meets the limits")
    return report
