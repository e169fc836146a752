"""Rebuild the float Keras model from the nsfwjs topology and dequantised weights.

Veil's models take pixels (0..255, RGB, NHWC 224×224) and divide by 255 inside the graph, so the
int8 model's uint8 input is the raw pixel byte (scale 1, zero point 0) and no caller ever
repeats the source's ``pixel / 255`` scaling by hand.
"""

from __future__ import annotations

import copy
import json
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tf_keras

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


def fold_batch_norms(topology: dict, weights: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
    """The same network with every BatchNormalization folded into the convolution before it,
    computed here in float64 and rounded once to float32.

    Left to the TFLite converter, the folding runs through TensorFlow's CPU kernels, whose
    results differ in the last bit between CPU families (seen: 8 float16 weights and 62 int8
    weight tensors differ between an AMD EPYC and an Intel Xeon build). NumPy's float64
    multiply, divide and sqrt are correctly rounded IEEE operations on every CPU, so the
    weights the converter receives are the same bits everywhere (converters/README.md).
    """
    config = copy.deepcopy(topology["model_config"])
    layers = config["config"]["layers"]
    by_name = {layer["name"]: layer for layer in layers}
    folded = dict(weights)
    renamed: dict[str, str] = {}  # a removed BN layer's name -> the convolution now producing its output
    for bn in [layer for layer in layers if layer["class_name"] == "BatchNormalization"]:
        (inbound,) = bn["inbound_nodes"]
        (conv_name, _, _, _), = inbound
        conv = by_name[conv_name]
        if conv["class_name"] not in ("Conv2D", "DepthwiseConv2D") or conv["config"]["use_bias"]:
            raise ValueError(f"{bn['name']}: cannot fold into {conv['class_name']} {conv_name}")
        name = bn["name"]
        gamma, beta, mean, var = (folded.pop(f"{name}/{w}").astype(np.float64) for w in ("gamma", "beta", "moving_mean", "moving_variance"))
        scale = gamma / np.sqrt(var + float(bn["config"]["epsilon"]))
        key = f"{conv_name}/depthwise_kernel" if conv["class_name"] == "DepthwiseConv2D" else f"{conv_name}/kernel"
        kernel = folded[key].astype(np.float64)
        # Conv2D kernels are (h, w, in, out); depthwise (h, w, in, multiplier) with out = in·multiplier.
        kernel = kernel * scale.reshape(kernel.shape[2:]) if conv["class_name"] == "DepthwiseConv2D" else kernel * scale
        folded[key] = kernel.astype(np.float32)
        folded[f"{conv_name}/bias"] = (beta - mean * scale).astype(np.float32)
        conv["config"]["use_bias"] = True
        renamed[name] = conv_name
        layers.remove(bn)
    for layer in layers:
        for node in layer["inbound_nodes"]:
            for edge in node:
                edge[0] = renamed.get(edge[0], edge[0])
    for edge in config["config"]["output_layers"]:
        edge[0] = renamed.get(edge[0], edge[0])
    return {**topology, "model_config": config}, folded


def conversion_model(topology: dict, weights: dict[str, np.ndarray]) -> tf_keras.Model:
    """What the TFLite converter is given: the source with batch norms folded, taking pixels."""
    return with_pixel_input(build_source_model(*fold_batch_norms(topology, weights)))
