"""Rebuild the float Keras model from the nsfwjs topology and dequantised weights.

Veil's models take pixels (0..255, RGB, NHWC 224×224) and divide by 255 inside the graph, so the
int8 model's uint8 input is the raw pixel byte (scale 1, zero point 0) and no caller ever
repeats the source's ``pixel / 255`` scaling by hand.
"""

from __future__ import annotations

import json
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tf_keras  # noqa: E402  (after the environment above)

INPUT_SIZE = 224


def build_source_model(topology: dict, weights: dict[str, np.ndarray]) -> tf_keras.Model:
    """The source network exactly: input in [0, 1], softmax over the five classes."""
    model = tf_keras.models.model_from_json(json.dumps(topology["model_config"]))
    unused = dict(weights)
    for layer in model.layers:
        values = []
        for variable in layer.weights:
            name = variable.name.split(":")[0]
            if name not in unused:
                raise KeyError(f"no source weight for {name}")
            array = unused.pop(name)
            if tuple(array.shape) != tuple(variable.shape):
                raise ValueError(f"{name}: source shape {array.shape}, model shape {tuple(variable.shape)}")
            values.append(array)
        if values:
            layer.set_weights(values)
    if unused:
        raise KeyError(f"source weights not used by the model: {sorted(unused)[:5]}")
    return model


def with_pixel_input(source: tf_keras.Model) -> tf_keras.Model:
    """Wrap the source model so it takes 0..255 pixels."""
    pixels = tf_keras.Input(shape=(INPUT_SIZE, INPUT_SIZE, 3), dtype="float32", name="pixels")
    scaled = tf_keras.layers.Rescaling(1.0 / 255.0, name="pixel_scale")(pixels)
    probs = source(scaled)
    return tf_keras.Model(pixels, probs, name="veil_nsfw_mobilenet_v2")
