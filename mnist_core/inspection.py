"""Inside a trained network: its layers, what its first layer looks for, what each conv block
makes of one digit, and which pixels its answer depends on.

Works on the models the registry loads (Keras ``Sequential``, ``compile=False``). Every
function answers in a few milliseconds on a CPU, so a page can call them at each rerun: the
feature maps come from one forward pass of a sub-model built once per model, the saliency
from one gradient through a compiled function, also built once per model.
"""

from __future__ import annotations

from dataclasses import dataclass
from weakref import WeakKeyDictionary

import numpy as np

from .data import IMAGE_SIZE
from .models import INPUT_SHAPE

UNITS_SHOWN = 16  # the ANN's hidden units whose weights are shown: a 4x4 grid


@dataclass(frozen=True)
class LayerRow:
    """One layer as a summary table shows it."""

    name: str
    type: str  # the Keras class: Conv2D, MaxPooling2D, Dense, ...
    output_shape: tuple[int, ...]  # for one image, without the batch dimension
    parameters: int


@dataclass(frozen=True)
class BlockMaps:
    """What one conv block (conv, pool, and batch norm if the model has it) makes of a digit."""

    block: int  # 1 for the first block
    layers: tuple[str, ...]  # the block's layer names, conv first
    maps: np.ndarray  # (filters, height, width): the block's output, one map per filter


@dataclass(frozen=True)
class UnitWeights:
    """One hidden unit of the ANN's first Dense layer: the 28x28 pattern it weighs the
    image with, and how strongly it answered the digit shown."""

    unit: int  # its index in the layer
    weights: np.ndarray  # (28, 28): the kernel column of this unit, as an image
    activation: float  # the unit's output for the digit shown


@dataclass(frozen=True)
class Saliency:
    """How the model's answer for one digit changes with each pixel."""

    digit: int  # the model's prediction
    probability: float  # its probability
    gradient: np.ndarray  # (28, 28): d probability(digit) / d pixel
    image: np.ndarray  # (28, 28): the input the gradient was taken at

    @property
    def gradient_times_input(self) -> np.ndarray:
        """The gradient where there is ink, zero elsewhere: each pixel's first-order share of
        the answer. Cleaner than the gradient, which also marks blank pixels whose ink would
        change the answer."""
        return self.gradient * self.image


def layer_table(model) -> list[LayerRow]:
    """The model's layers in order, with their output shapes and parameter counts (these
    add up to ``model.count_params()``)."""
    return [
        LayerRow(
            name=layer.name,
            type=type(layer).__name__,
            output_shape=tuple(int(n) for n in layer.output.shape[1:]),
            parameters=layer.count_params(),
        )
        for layer in model.layers
    ]


def first_conv_kernels(model) -> np.ndarray:
    """The first Conv2D layer's kernels, (filters, size, size): what each filter looks for
    in the grey image. ``ValueError`` if the model has no conv layer."""
    conv = next((layer for layer in model.layers if _is_conv(layer)), None)
    if conv is None:
        raise ValueError(f"model {model.name!r} has no Conv2D layer")
    kernel = np.asarray(conv.kernel)  # (size, size, 1 input channel, filters)
    return np.moveaxis(kernel[:, :, 0, :], -1, 0)


def conv_blocks(model) -> list[list]:
    """The model's conv blocks: each Conv2D with the pooling and batch-norm layers right
    after it (the blocks ``models.layer_list`` declares)."""
    blocks: list[list] = []
    open_block = False
    for layer in model.layers:
        if _is_conv(layer):
            blocks.append([layer])
            open_block = True
        elif open_block and type(layer).__name__.endswith(("Pooling2D", "BatchNormalization")):
            blocks[-1].append(layer)
        else:
            open_block = False
    return blocks


def feature_maps(model, image: np.ndarray) -> list[BlockMaps]:
    """Each conv block's output for one 28x28 image in [0, 1], from one forward pass."""
    blocks = conv_blocks(model)
    if not blocks:
        raise ValueError(f"model {model.name!r} has no Conv2D layer")
    outputs = _probes(model).blocks.predict_on_batch(_batch(image))
    if len(blocks) == 1:
        outputs = [outputs]
    return [
        BlockMaps(
            block=number,
            layers=tuple(layer.name for layer in block),
            maps=np.moveaxis(np.asarray(output)[0], -1, 0),
        )
        for number, (block, output) in enumerate(zip(blocks, outputs, strict=True), start=1)
    ]


@dataclass(frozen=True)
class _Probes:
    """Sub-models of one model, sharing its layers and weights."""

    blocks: object  # keras.Model: input -> each conv block's output (None without conv blocks)
    log_probabilities: object  # tf.function: input -> float64 log-softmax of the logits


_probes_of: WeakKeyDictionary = WeakKeyDictionary()  # model -> its _Probes


def _probes(model) -> _Probes:
    """``model``'s probes, built once per model (~0.5 s) and then called in a few ms: the
    pages get each model from a cache shared by every session. They hold the model's layers,
    not the model, so the entry goes when the cache drops the model."""
    if model not in _probes_of:
        import keras
        import tensorflow as tf

        blocks = conv_blocks(model)
        output_layer = model.layers[-1]
        if type(output_layer).__name__ != "Dense" or output_layer.activation.__name__ != "softmax":
            raise ValueError(f"model {model.name!r} does not end in a softmax Dense layer")
        features = keras.Model(model.inputs, output_layer.input)
        kernel, bias = output_layer.kernel, output_layer.bias

        @tf.function(input_signature=[tf.TensorSpec((1, *INPUT_SHAPE), tf.float32)])
        def log_probabilities(batch):
            logits = tf.matmul(features(batch, training=False), kernel) + bias
            return tf.nn.log_softmax(tf.cast(logits, tf.float64))

        _probes_of[model] = _Probes(
            blocks=keras.Model(model.inputs, [block[-1].output for block in blocks])
            if blocks
            else None,
            log_probabilities=log_probabilities,
        )
    return _probes_of[model]


def strongest_units(model, image: np.ndarray, count: int = UNITS_SHOWN) -> list[UnitWeights]:
    """The ``count`` hidden units of the ANN's first Dense layer that answer ``image`` most,
    strongest first, with their incoming weights as 28x28 images.

    Chosen by their answer to the digit shown, not by index or weight norm: the first units
    are an arbitrary handful of hundreds, and the largest norms are the same few units
    whatever is drawn. The units a digit excites most show what the network uses to read
    that digit, and they change as a student draws another.
    ``ValueError`` if the model's first Dense layer does not read the image's pixels.
    """
    dense = next((layer for layer in model.layers if type(layer).__name__ == "Dense"), None)
    if dense is None or dense.kernel.shape[0] != IMAGE_SIZE * IMAGE_SIZE:
        raise ValueError(f"model {model.name!r} has no Dense layer on the image's pixels")
    kernel = np.asarray(dense.kernel)  # (784 pixels, units)
    summed = np.asarray(image, np.float32).reshape(-1) @ kernel + np.asarray(dense.bias)
    answers = np.asarray(dense.activation(summed))
    chosen = np.argsort(-answers, kind="stable")[:count]
    return [
        UnitWeights(
            unit=int(unit),
            weights=kernel[:, unit].reshape(IMAGE_SIZE, IMAGE_SIZE),
            activation=float(answers[unit]),
        )
        for unit in chosen
    ]


def saliency(model, image: np.ndarray) -> Saliency:
    """The gradient of the predicted digit's probability with respect to each input pixel:
    which pixels would change the model's confidence.

    Taken as p * d log p / d pixel, with the log-softmax of the logits in float64: the
    same values, but the gradient through a float32 softmax loses the predicted digit's own
    term (1 - p) when p rounds to 1, as a sure CNN's does on one test digit in seven.
    """
    import tensorflow as tf

    batch = tf.convert_to_tensor(_batch(image))
    with tf.GradientTape() as tape:
        tape.watch(batch)
        log_probabilities = _probes(model).log_probabilities(batch)[0]
        digit = int(tf.argmax(log_probabilities))
        chosen = log_probabilities[digit]
    probability = float(np.exp(float(chosen)))
    gradient = np.asarray(tape.gradient(chosen, batch), np.float64)[0, :, :, 0]
    return Saliency(
        digit=digit,
        probability=probability,
        gradient=probability * gradient,
        image=_batch(image)[0, :, :, 0],
    )


def _batch(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float32).reshape(1, *INPUT_SHAPE)


def _is_conv(layer) -> bool:
    return type(layer).__name__ == "Conv2D"
