"""Would one pass of the network over a larger picture find embedded pictures better than crops?

    python benchmarks/study_dense_windows.py   # after benchmarks/study_robustness.py (its inputs and scores)

MobileNetV2 is convolutional up to its 7×7 average pool, so the float source model rebuilt for a
448×448 input gives a 14×14 feature map in one pass (about four 224-px inferences of work), and
averaging any 7×7 window of it gives the features of a 224-px window: 64 windows at a 32-px
stride, against the 9 crops Veil scores. Each window goes through the model's own head (three
dense layers). The mirror image is a second view, as for crops. Measured on the robustness
study's inputs (pictures of at least 300 px a side), for several levels and "texture" limits;
prints files flagged by a window where the whole picture is not.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CACHE = REPO / "benchmarks" / ".cache" / "robustness"
CHILD = [1, 3, 4]  # hentai, porn, sexy in the model's label order
SIDE, CELLS, WINDOW = 448, 14, 7


def dense_model():
    import tf_keras

    from converters import nsfwjs_source
    from converters.float_model import build_source_model

    source = nsfwjs_source.load_source(REPO / "converters" / ".cache")
    model = build_source_model(source.topology, source.weights)
    config = json.loads(json.dumps(source.topology["model_config"]))
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "InputLayer":
            layer["config"]["batch_input_shape"] = [None, SIDE, SIDE, 3]
    big = tf_keras.models.model_from_json(json.dumps(config))
    trunk = tf_keras.Model(big.input, big.get_layer("out_relu").output)
    for layer in trunk.layers:  # the convolutional trunk: same names and shapes (fails loudly otherwise)
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    dense = [model.get_layer(name).get_weights() for name in ("dense_1", "dense_2", "dense_3")]
    return model, trunk, dense


def head(features: np.ndarray, dense: list) -> np.ndarray:
    hidden = features
    for weights, bias in dense[:-1]:
        hidden = np.maximum(hidden @ weights + bias, 0.0)
    logits = hidden @ dense[-1][0] + dense[-1][1]
    logits -= logits.max(axis=-1, keepdims=True)
    return np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)


def window_malign(picture: Image.Image, trunk, dense) -> tuple[np.ndarray, np.ndarray]:
    """Child-profile malign of the 64 windows, and of the same windows in the mirror image."""
    x = np.asarray(picture, dtype=np.float32)[None] / 255.0
    maps = trunk(np.concatenate([x, x[:, :, ::-1]]), training=False).numpy()
    sums = np.pad(maps.cumsum(1).cumsum(2), ((0, 0), (1, 0), (1, 0), (0, 0)))
    n = CELLS - WINDOW + 1
    feats = np.stack([(sums[:, i + WINDOW, j + WINDOW] - sums[:, i, j + WINDOW] - sums[:, i + WINDOW, j] + sums[:, i, j]) / WINDOW**2
                      for i in range(n) for j in range(n)], axis=1)  # 2 × 64 × 1280
    malign = head(feats, dense)[..., CHILD].sum(axis=-1)
    view, mirror = malign[0], malign[1].reshape(n, n)[:, ::-1].reshape(-1)  # mirror windows back in place
    return view, mirror


def main() -> int:
    model, trunk, dense = dense_model()
    # the rebuilt network agrees with the source on the whole picture at 224 px: a window the size
    # of the whole map at 224 is the source model itself
    probe = np.random.default_rng(1).random((1, 224, 224, 3), dtype=np.float32)
    import tf_keras

    small = tf_keras.Model(model.input, model.get_layer("out_relu").output)
    assert np.allclose(head(small(probe).numpy().mean(axis=(1, 2)), dense), model(probe).numpy(), atol=1e-4)
    data = json.loads((CACHE / "scores.json").read_text())
    keep = ("25 %", "50 %", "10 %", "collage", "page", "photo as it is", "crop", "512-px")
    rows = []
    started = time.time()
    for condition, files in data["conditions"].items():
        if not any(k in condition for k in keep):
            continue
        for _, rel in files:
            image = Image.open(CACHE / "inputs" / rel)
            image.draft("RGB", (SIDE, SIDE))
            image = ImageOps.exif_transpose(image).convert("RGB")
            if min(image.size) < 300:
                continue
            view, mirror = window_malign(image.resize((SIDE, SIDE), Image.Resampling.BOX), trunk, dense)
            rows.append((condition, data["scores"][rel]["whole:shipped"], view, mirror))
    print(f"{len(rows)} files in {time.time() - started:.0f} s")
    conditions = sorted({r[0] for r in rows}, key=lambda c: (c.startswith("benign"), c))
    print("| level, texture limit | " + " | ".join(conditions) + " |\n|---|" + "---|" * len(conditions))
    for level in (0.5, 0.6, 0.7, 0.8, 0.85):
        for limit in (8, 16, 24, 64):
            cells = []
            for condition in conditions:
                mine = [r for r in rows if r[0] == condition]
                hits = sum(1 for _, whole, v, m in mine if whole < 0.3 and (v >= 0.5).sum() <= limit and ((v >= level) & (m >= level)).any())
                cells.append(f"{hits}/{len(mine)}")
            print(f"| both ≥ {level:.2f}, ≤ {limit} windows at 0.5 | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
