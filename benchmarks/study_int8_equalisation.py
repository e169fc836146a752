"""Can an all-int8 build keep the int8 fidelity gates if activation ranges are equalised first?
A study, not a test (issue 20's int8 recipe).

    python -m converters variants                          # once: f32 and all-int8 in the cache
    python benchmarks/study_int8_equalisation.py [--configs 0,0 1,0 1,0.5 1,1 0,1]

Per-tensor int8 activations give every channel of a ReLU6 output the same step; a channel whose
values stay small gets a few levels. The recipe scales such a channel up by a power of two ``k``
before quantising and divides the consumer's weights for it by ``k``, which is exact in float
(ReLU commutes with a positive scale, a power of two multiplies without rounding, and ``k`` is
capped so the scaled channel's observed maximum stays under ReLU6's clamp):
- ``dw``: expand (or Conv1) → ReLU6 → depthwise: the depthwise kernel is per-channel, so its
  int8 weights lose nothing; ``k = 2^floor(dw · log2(6 / max))``;
- ``pw``: depthwise → ReLU6 → 1×1 project: the project's input column shrinks, a trade-off with
  its per-output-channel weight scale; ``k = 2^floor(pw · log2(6 / max))``.
Maxima come from the float model on the converter's calibration views; every build is all-int8
(no float stages) through ``convert.convert_int8``, judged as the converter judges (child
|Δ malign| vs the float model, decisions that must hold) on the calibration set and on the
held-out set, then timed beside f32 and the shipped int8 on LiteRT (batch 1, 1 and 2 threads).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.decode import load_model_input  # noqa: E402
from converters import convert as conv  # noqa: E402
from converters import nsfwjs_source  # noqa: E402
from converters.__main__ import CANARY_DIR, DEFAULT_CACHE  # noqa: E402
from converters.float_model import build_source_model, fold_batch_norms, with_pixel_input  # noqa: E402


def relu6_pairs(layers: list[dict]) -> list[tuple[str, str, str, str]]:
    """(ReLU6 layer, the convolution producing it, the convolution consuming it, consumer class)."""
    by_name = {layer["name"]: layer for layer in layers}
    consumers: dict[str, list[str]] = {}
    for layer in layers:
        for node in layer["inbound_nodes"]:
            for edge in node:
                consumers.setdefault(edge[0], []).append(layer["name"])
    pairs = []
    for layer in layers:
        if layer["class_name"] != "ReLU" or layer["config"].get("max_value") != 6:
            continue
        (producer,) = [edge[0] for node in layer["inbound_nodes"] for edge in node]
        (consumer,) = consumers[layer["name"]]
        while by_name[consumer]["class_name"] == "ZeroPadding2D":  # zeros scale to zeros
            (consumer,) = consumers[consumer]
        kind = by_name[consumer]["class_name"]
        if kind in ("DepthwiseConv2D", "Conv2D"):
            pairs.append((layer["name"], producer, consumer, kind))
    return pairs


def channel_maxima(model, pairs, dataset) -> dict[str, np.ndarray]:
    import tf_keras

    probe = tf_keras.Model(model.inputs, [model.get_layer(relu).output for relu, *_ in pairs])
    maxima: dict[str, np.ndarray] = {}
    for (pixels,) in dataset():
        for (relu, *_), out in zip(pairs, probe(pixels / 255.0, training=False)):
            m = out.numpy().max(axis=(0, 1, 2))
            maxima[relu] = np.maximum(maxima[relu], m) if relu in maxima else m
    return maxima


def equalised(weights: dict, pairs, maxima, layers: list[dict], dw: float, pw: float) -> dict:
    kinds = {layer["name"]: layer["class_name"] for layer in layers}
    out = dict(weights)
    for relu, producer, consumer, kind in pairs:
        alpha = dw if kind == "DepthwiseConv2D" else pw
        if alpha == 0:
            continue
        m = maxima[relu]
        headroom = np.log2(np.where(m > 1e-6, 6.0 / np.maximum(m, 1e-6), 1.0))
        k = np.exp2(np.clip(np.floor(alpha * headroom), 0, 20)).astype(np.float32)
        if kinds[producer] == "Conv2D":
            out[f"{producer}/kernel"] = out[f"{producer}/kernel"] * k
        else:
            out[f"{producer}/depthwise_kernel"] = out[f"{producer}/depthwise_kernel"] * k.reshape(-1, 1)
        out[f"{producer}/bias"] = out[f"{producer}/bias"] * k
        key = f"{consumer}/depthwise_kernel" if kind == "DepthwiseConv2D" else f"{consumer}/kernel"
        out[key] = out[key] / k.reshape(-1, 1)
    return out


def gate(model_bytes: bytes, float_model, items) -> str:
    fid = conv._fidelity(model_bytes, float_model, items)
    child = fid["profiles"]["child"]
    flips = sum(len(p["decision_flips_required_inputs"]) for p in fid["profiles"].values())
    worst = max(fid["per_input"].items(), key=lambda kv: abs(kv[1]["float"] - kv[1]["converted"]))
    return (
        f"{child['mean_abs_delta_malign']:.4f} | {child['max_abs_delta_malign']:.3f} | {flips} "
        f"| {worst[0]} {worst[1]['float']:.2f}→{worst[1]['converted']:.2f}"
    )


def ms_per_image(paths: dict[str, Path], threads: int, rounds: int = 15, per_round: int = 20) -> dict[str, float]:
    """Median ms per image at batch 1; the models take turns so load drifts hit all alike."""
    from ai_edge_litert.interpreter import Interpreter

    from agent.classifier.backends import InterpreterBackend
    from agent.classifier.model import ModelFile

    frame = load_model_input(REPO / "tests" / "fixtures" / "photos" / "scikit-astronaut.jpg")[None]
    backends = {
        name: InterpreterBackend(
            Interpreter, "litert", "study", ModelFile(path, name, hashlib.sha256(path.read_bytes()).hexdigest(), {}), threads=threads
        )
        for name, path in paths.items()
    }
    times: dict[str, list[float]] = {name: [] for name in backends}
    for backend in backends.values():
        for _ in range(per_round):
            backend.run(frame)
    for _ in range(rounds):
        for name, backend in backends.items():
            start = time.perf_counter()
            for _ in range(per_round):
                backend.run(frame)
            times[name].append((time.perf_counter() - start) * 1000 / per_round)
    for backend in backends.values():
        backend.close()
    return {name: statistics.median(t) for name, t in times.items()}


def print_speed_table(paths: dict[str, Path]) -> None:
    """A Markdown row per thread count: ms per image and the speed-up over ``paths["f32"]``."""
    print("| threads | " + " | ".join(paths) + " |\n|---|" + "---|" * len(paths))
    for threads in (1, 2):
        ms = ms_per_image(paths, threads)
        print(f"| {threads} | " + " | ".join(f"{ms[n]:.2f} ms ({ms['f32'] / ms[n]:.2f}×)" for n in paths) + " |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", nargs="*", default=["0,0", "1,0", "1,0.5", "1,1", "0,1"], help="dw,pw exponents")
    args = parser.parse_args()
    paths = {"f32": DEFAULT_CACHE / f"{conv.F32_NAME}.tflite", "int8 (shipped)": REPO / "models" / f"{conv.INT8_NAME}.tflite"}
    if not paths["f32"].is_file():
        print(f"no f32 model at {paths['f32']}: python -m converters variants")
        return 1
    source = nsfwjs_source.load_source(DEFAULT_CACHE)
    topology, weights = fold_batch_norms(source.topology, source.weights)
    layers = topology["model_config"]["config"]["layers"]
    pairs = relu6_pairs(layers)
    cal_photos, held_photos = conv._photo_split()
    cal_canaries = [p for _, p, _ in conv._canaries(CANARY_DIR, "calibration")]
    dataset = conv._calibration_batches(cal_photos, cal_canaries)
    maxima = channel_maxima(build_source_model(topology, weights), pairs, dataset)
    float_model = with_pixel_input(build_source_model(source.topology, source.weights))
    calibration = [(p.name, load_model_input(p), True) for p in [*cal_photos, *cal_canaries]]
    held = [(f"photo:{p.name}", load_model_input(p), True) for p in held_photos]
    held += [(f"canary:{n}", load_model_input(p), robust) for n, p, robust in conv._canaries(CANARY_DIR, "holdout")]

    print(f"{len(pairs)} ReLU6 → conv pairs; limits: mean ≤ {conv.MAX_MEAN_DELTA}, max ≤ {conv.MAX_MAX_DELTA}, no changed decision")
    print("| dw | pw | set | child mean Δ | max Δ | changed decisions | worst input (float→int8) |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="veil-equalise-") as tmp:
        for config in args.configs:
            dw, pw = (float(v) for v in config.split(","))
            model = with_pixel_input(build_source_model(topology, equalised(weights, pairs, maxima, layers, dw, pw)))
            built = conv.convert_int8(model, dataset, [])
            for label, items in (("calibration", calibration), ("held out", held)):
                print(f"| {dw:g} | {pw:g} | {label} | {gate(built, float_model, items)} |", flush=True)
            paths[f"all-int8 dw={dw:g} pw={pw:g}"] = Path(tmp) / f"{config}.tflite"
            paths[f"all-int8 dw={dw:g} pw={pw:g}"].write_bytes(built)
        print()
        print_speed_table(paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
