"""How much a CPU's float rounding can move the int8 model (`python -m converters reproducibility`).

Another CPU family computes the calibration ranges with other kernels and differs from this one
in their last bits (seen: ~1e-7 relative, AMD EPYC vs Intel Xeon). This study calibrates once,
then perturbs every calibrated range by random relative noise of that size and larger, and
quantises each perturbed copy with and without snapping the ranges (``convert.snap_calibration``):
how many perturbed builds are bit-identical to the unperturbed one, and how far their int8
fidelity (child max |Δ malign| vs the float model) moves. Results: models/reproducibility.json.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from converters import convert as conv
from converters.float_model import build_source_model, conversion_model, with_pixel_input
from converters.nsfwjs_source import SourceModel

NOISE = (1e-7, 1e-6)
TRIALS = 6


# Bounds every CPU computes exactly: ReLU/ReLU6 clamps and the input's black and white frames.
EXACT = (0.0, 6.0, 255.0)


def _jitter(value: float, rng: np.random.Generator, noise: float) -> float:
    if value in EXACT:
        return value
    return float(np.float32(value * (1 + noise * rng.standard_normal())))


def _perturbed(calibrated: bytes, rng: np.random.Generator, noise: float) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            q = tensor.quantization
            if model.buffers[tensor.buffer].data is None and q is not None and q.min is not None and len(q.min):
                q.min = [_jitter(v, rng, noise) for v in q.min]
                q.max = [_jitter(v, rng, noise) for v in q.max]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def run_study(source: SourceModel, canary_dir: Path, out: Path) -> dict:
    import tensorflow as tf
    from tensorflow.lite.python.util import modify_model_io_type

    started = time.time()
    reference = with_pixel_input(build_source_model(source.topology, source.weights))
    folded = conversion_model(source.topology, source.weights)
    cal_photos, held_photos = conv._photo_split()
    cal_canaries = [p for _, p, _ in conv._canaries(canary_dir, "calibration")]
    float_tensors = conv.tensor_names_of_stages(conv._convert_float(folded, f16=False), conv.FLOAT_STAGES)
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_tensors)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=conv._int8_converter(folded, conv._calibration_batches(cal_photos, cal_canaries)),
        debug_dataset=conv._calibration_batches(cal_photos, cal_canaries), debug_options=options)
    calibrated = debugger.calibrated_model
    held = [(f"photo:{p.name}", conv.load_model_input(p), True) for p in held_photos]
    held += [(f"canary:{n}", conv.load_model_input(p), robust) for n, p, robust in conv._canaries(canary_dir, "holdout")]

    def build(ranges: bytes, snap: bool) -> tuple[str, float]:
        debugger.calibrated_model = conv.snap_calibration(ranges) if snap else ranges
        model = modify_model_io_type(debugger.get_nondebug_quantized_model(), tf.uint8, tf.uint8)
        child = conv._fidelity(model, reference, held)["profiles"]["child"]
        return hashlib.sha256(model).hexdigest(), child["max_abs_delta_malign"]

    report: dict = {"what": __doc__.split("\n\n")[1].replace("\n", " "), "trials_per_noise": TRIALS, "results": {}}
    rng = np.random.default_rng(2026)
    for snap in (False, True):
        base_sha, base_max = build(calibrated, snap)
        for noise in NOISE:
            trials = [build(_perturbed(calibrated, rng, noise), snap) for _ in range(TRIALS)]
            row = {
                "unperturbed_max_abs_delta_malign": base_max,
                "bit_identical_builds": sum(sha == base_sha for sha, _ in trials),
                "max_abs_delta_malign": sorted(m for _, m in trials),
            }
            report["results"][f"{'snapped' if snap else 'raw'} ranges, noise {noise:g}"] = row
            print(f"snap={snap} noise={noise:g}: {row}", flush=True)
    report["seconds"] = round(time.time() - started)
    out.write_text(json.dumps(report, indent=1) + "\n")
    return report
