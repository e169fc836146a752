"""Canaries: abstract, noise-like images that the float model scores as a chosen class.

They contain nothing; gradient ascent on the model finds colour patterns that drive it (see
TESTDATA.md). An image is a 24×24×3 grid of logits, upsampled bicubically to 320 px and squashed
with a sigmoid, so it is smooth enough to survive resizing, compression and screen capture. Each
step scores a batch of random crops, resizes (several methods) and flips, and minimises the
KL divergence to the target distribution. Seeds are fixed: ``python -m converters canaries``
regenerates the committed PNGs (to float round-off; CPU thread scheduling is not bit-exact).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.nsfwjs_source import LABELS

GRID = 24
SIZE = 320


@dataclass(frozen=True)
class CanarySpec:
    name: str
    target: dict[str, float]
    seed: int
    robust: bool  # robust canaries must keep their decision through int8 and Veil's decode
    role: str  # "calibration" feeds the int8 calibration; "holdout" only measures fidelity


def _one(cls: str, p: float = 0.96) -> dict[str, float]:
    rest = (1.0 - p) / 4
    return {c: (p if c == cls else rest) for c in LABELS}


def _mix(**probs: float) -> dict[str, float]:
    left = 1.0 - sum(probs.values())
    others = [c for c in LABELS if c not in probs]
    return {c: probs.get(c, left / len(others)) for c in LABELS}


SPECS: tuple[CanarySpec, ...] = (
    # held out: never seen by calibration
    CanarySpec("porn-a", _one("porn"), 101, True, "holdout"),
    CanarySpec("porn-b", _one("porn"), 102, True, "holdout"),
    CanarySpec("hentai-a", _one("hentai"), 201, True, "holdout"),
    CanarySpec("hentai-b", _one("hentai"), 202, True, "holdout"),
    CanarySpec("sexy-a", _one("sexy"), 301, True, "holdout"),
    CanarySpec("sexy-b", _one("sexy"), 302, True, "holdout"),
    CanarySpec("drawing-a", _one("drawing"), 401, True, "holdout"),
    # borderline: near a profile threshold on purpose, so only |Δ malign| is asked of them
    CanarySpec("border-child", _mix(sexy=0.18, porn=0.06, hentai=0.06, neutral=0.6), 501, False, "holdout"),
    CanarySpec("border-teen", _mix(porn=0.3, hentai=0.2, neutral=0.4), 502, False, "holdout"),
    CanarySpec("border-adult", _mix(porn=0.55, hentai=0.25, sexy=0.1), 503, False, "holdout"),
    # calibration: every class and the malign region between them
    CanarySpec("cal-porn", _one("porn"), 901, True, "calibration"),
    CanarySpec("cal-hentai", _one("hentai"), 902, True, "calibration"),
    CanarySpec("cal-sexy", _one("sexy"), 903, True, "calibration"),
    CanarySpec("cal-drawing", _one("drawing"), 904, True, "calibration"),
    CanarySpec("cal-mix", _mix(porn=0.35, sexy=0.35, neutral=0.2), 905, False, "calibration"),
)


def generate(spec: CanarySpec, source_model, steps: int = 160, batch: int = 6) -> np.ndarray:
    """Optimise one canary; returns uint8 SIZE×SIZE×3."""
    import tensorflow as tf

    tf.random.set_seed(spec.seed)
    rng = np.random.default_rng(spec.seed)
    logits = tf.Variable(rng.normal(0.0, 0.5, size=(1, GRID, GRID, 3)).astype(np.float32))
    target = tf.constant([[spec.target[c] for c in LABELS]], dtype=tf.float32)
    optimiser = tf.keras.optimizers.Adam(learning_rate=0.08)
    # (method, antialias): Pillow-like antialiased, TF/nsfwjs-like plain bilinear, and nearest.
    methods = (("bilinear", True), ("bilinear", False), ("bicubic", True), ("nearest", False))

    @tf.function
    def step(method: str, antialias: bool):  # Python args: one trace per resize method
        with tf.GradientTape() as tape:
            image = tf.sigmoid(tf.image.resize(logits, (SIZE, SIZE), method="bicubic"))[0]
            crops = []
            for _ in range(batch):
                side = tf.random.uniform([], int(SIZE * 0.7), SIZE + 1, dtype=tf.int32)
                crop = tf.image.random_flip_left_right(tf.image.random_crop(image, tf.stack([side, side, 3])))
                crops.append(tf.image.resize(crop, (224, 224), method=method, antialias=antialias))
            # No additive noise: the model reads pixel noise as signal, and a pattern tuned
            # under noise scores as neutral without it.
            probs = source_model(tf.stack(crops), training=False)
            kl = tf.reduce_sum(target * (tf.math.log(target) - tf.math.log(probs + 1e-7)), axis=-1)
            loss = tf.reduce_mean(kl)
        optimiser.apply_gradients([(tape.gradient(loss, logits), logits)])
        return loss

    for _ in range(steps):
        method, antialias = methods[int(rng.integers(len(methods)))]
        step(method, antialias)
    image = tf.sigmoid(tf.image.resize(logits, (SIZE, SIZE), method="bicubic"))[0].numpy()
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def write_all(out: Path, source_model, only: set[str] | None = None, steps: int = 160) -> None:
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    index = {}
    index_path = out / "canaries.json"
    if index_path.exists():
        index = json.loads(index_path.read_text())
    for spec in SPECS:
        if only and spec.name not in only:
            continue
        pixels = generate(spec, source_model, steps=steps)
        Image.fromarray(pixels).save(out / f"{spec.name}.png", optimize=True)
        target = {c: round(p, 4) for c, p in spec.target.items()}
        index[spec.name] = {"target": target, "seed": spec.seed, "robust": spec.robust, "role": spec.role, "steps": steps}
        print(f"canary {spec.name}: written", flush=True)
        index_path.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
