"""The two networks the app compares: a dense net (ANN) and a convnet (CNN).

Configs are plain dataclasses so they travel to the training process, into the
registry's JSON and back. Builders declare layers and nothing else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

import numpy as np

from .data import IMAGE_SIZE, NUM_CLASSES
from .text import shortened

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)  # one grey channel, values in [0, 1]


def to_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) images -> float32 (N, 28, 28, 1) in [0, 1], the networks' input."""
    return (images.astype(np.float32) / 255.0)[..., None]


OPTIMIZERS = ("adam", "sgd", "rmsprop")
SCHEDULES = ("one-cycle", "constant")
WARMUP = 0.2  # share of a one-cycle run spent raising the learning rate to its peak
ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid")
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid", "tanh")
LOSSES = ("crossentropy", "mse")  # mse: mean squared error against one-hot digits
POOLINGS = ("max", "average")
MAX_LAYER_SIZE = 4096  # units or filters in one layer
# Up to 1000, so that a class can see a far too high rate make the loss NaN (training stops
# the run and says so); 0 and below cannot learn at all.
MAX_LEARNING_RATE = 1000.0
# Saved with Adam's state (12 bytes a parameter), the largest network then fits the 100 MB a
# model upload may have (registry.MAX_MODEL_BYTES): each model trained here can come back.
MAX_PARAMETERS = 8_000_000
# What training may take: the weights four times over (with their gradients and Adam's two
# moving averages), and each image's layer outputs three times over (kept for the backward
# pass, with their gradients and the dropout and pooling masks) for a whole batch.
MAX_TRAINING_BYTES = 2 * 2**30
DEFAULT_BATCH = 128  # the batch the memory check assumes when it is not told the job's


@dataclass(frozen=True)
class AnnConfig:
    """Dense net: flatten the 28x28 image, then fully connected layers."""

    hidden_units: tuple[int, ...] = (512, 512)
    activation: str = "relu"
    dropout: float = 0.2
    optimizer: str = "adam"
    learning_rate: float = 4e-3  # the one-cycle peak; with batch 256 (see jobs.py)
    schedule: str = "one-cycle"  # the learning rate's course over the run, see training.py
    augment: bool = False  # random shifts, turns and zooms of the training digits
    output_activation: str = "softmax"
    loss: str = "crossentropy"

    kind = "ann"


@dataclass(frozen=True)
class CnnConfig:
    """Convnet: conv blocks (conv, pool) that see local strokes, then a small dense head."""

    filters: tuple[int, ...] = (16, 48, 96)  # see docs/benchmarks.md for what else was tried
    kernel_size: int = 3
    pooling: str = "max"
    batch_norm: bool = True  # normalise each block's output: more accurate in few epochs
    dense_units: int = 0  # 0: straight from the conv features to the ten digits
    dropout: float = 0.4
    optimizer: str = "adam"
    learning_rate: float = 5e-3  # the one-cycle peak
    schedule: str = "one-cycle"
    augment: bool = False
    output_activation: str = "softmax"
    loss: str = "crossentropy"

    kind = "cnn"


ModelConfig = AnnConfig | CnnConfig
CONFIGS = {"ann": AnnConfig, "cnn": CnnConfig}
KINDS = tuple(CONFIGS)  # ("ann", "cnn"): the two networks the app compares, in that order


def validate(config: ModelConfig, batch_size: int = DEFAULT_BATCH) -> None:
    """Raise ``ValueError`` with a specific reason for impossible hyper-parameters, among
    them a network too big to train in memory with ``batch_size`` images a batch: refused
    here, in a second, rather than after TensorFlow has filled the server's memory."""
    layers = config.hidden_units if config.kind == "ann" else config.filters
    if not layers or any(not 1 <= n <= MAX_LAYER_SIZE for n in layers):
        raise ValueError(
            f"layer sizes must be 1-{MAX_LAYER_SIZE} units/filters each, "
            f"got {shortened(list(layers))}"
        )
    if not 0.0 <= config.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {config.dropout}")
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {config.optimizer!r}")
    if not 0.0 < config.learning_rate <= MAX_LEARNING_RATE:
        raise ValueError(
            f"learning rate must be in (0, {MAX_LEARNING_RATE:g}], got {config.learning_rate}"
        )
    if config.output_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(
            f"output activation must be one of {OUTPUT_ACTIVATIONS}, "
            f"got {config.output_activation!r}"
        )
    if config.loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {config.loss!r}")
    if config.output_activation == "tanh" and config.loss == "crossentropy":
        raise ValueError(
            "a tanh output goes negative, which cross-entropy cannot read as probabilities: "
            "use the mse loss with it"
        )
    if config.schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {config.schedule!r}")
    if config.kind == "ann" and config.activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {config.activation!r}")
    if config.kind == "cnn":
        if config.kernel_size not in (3, 5, 7):
            raise ValueError(f"kernel size must be 3, 5 or 7, got {config.kernel_size}")
        if config.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {config.pooling!r}")
        if len(config.filters) > 4:
            raise ValueError(
                "at most 4 conv blocks fit a 28x28 image (each halves it: 14, 7, 3, 1)"
            )
        if not 0 <= config.dense_units <= MAX_LAYER_SIZE:
            raise ValueError(
                f"dense units must be 0-{MAX_LAYER_SIZE}, got {shortened(config.dense_units)}"
            )
    parameters = parameter_count(config)
    if parameters > MAX_PARAMETERS:
        raise ValueError(
            f"this network has {parameters:,} parameters; the limit is {MAX_PARAMETERS:,}: "
            "use fewer or smaller layers"
        )
    needed = 4 * (4 * parameters + 3 * batch_size * _outputs_per_image(config))
    if needed > MAX_TRAINING_BYTES:
        raise ValueError(
            f"training this network with batches of {batch_size} would take about "
            f"{needed / 2**30:.1f} GB of memory; the limit is {MAX_TRAINING_BYTES / 2**30:g} GB: "
            "use smaller layers or a smaller batch"
        )


def parameter_count(config: ModelConfig) -> int:
    """How many numbers ``build_model(config)`` holds (Keras's ``count_params``), worked out
    from the config alone: no TensorFlow, so it can refuse a huge network instantly."""
    count, inputs = 0, IMAGE_SIZE * IMAGE_SIZE
    if config.kind == "ann":
        widths = config.hidden_units
    else:
        side, channels = IMAGE_SIZE, 1
        for filters in config.filters:
            count += (config.kernel_size**2 * channels + 1) * filters
            count += 4 * filters if config.batch_norm else 0  # scale, shift, mean, variance
            side, channels = side // 2, filters
        inputs = side * side * channels
        widths = (config.dense_units,) if config.dense_units else ()
    for width in (*widths, NUM_CLASSES):
        count += (inputs + 1) * width
        inputs = width
    return count


def _outputs_per_image(config: ModelConfig) -> int:
    """How many numbers one image's pass through the layers makes (each layer's output)."""
    pixels = IMAGE_SIZE * IMAGE_SIZE
    count = pixels * (1 + 3 * config.augment)  # the input, and each augmentation's
    if config.kind == "ann":
        return count + 2 * pixels + 2 * sum(config.hidden_units) + NUM_CLASSES  # + dropouts
    side, channels = IMAGE_SIZE, 1
    for filters in config.filters:
        count += side * side * filters  # the convolution
        side, channels = side // 2, filters
        count += side * side * filters * (1 + config.batch_norm)  # the pooling, its norm
    flat = side * side * channels
    return count + 2 * flat + 2 * config.dense_units + NUM_CLASSES


def parse_layer_sizes(text: str) -> tuple[int, ...]:
    """``"512, 256"`` -> ``(512, 256)``, with a clear message for anything else."""
    try:
        sizes = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise ValueError(
            f"layer sizes must be whole numbers separated by commas, got {shortened(text)!r}"
        ) from None
    if not sizes:
        raise ValueError("give at least one layer size, e.g. 128")
    return sizes


def config_to_dict(config: ModelConfig) -> dict:
    return {"kind": config.kind, **asdict(config)}


def config_from_dict(data: dict) -> ModelConfig:
    cls = CONFIGS[data["kind"]]
    values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
    for name in ("hidden_units", "filters"):
        if name in values:
            values[name] = tuple(values[name])
    return cls(**values)


@dataclass(frozen=True)
class KerasCall:
    """One call of Keras, as its code reads: ``keras.PATH(*args, **options)`` (``layers.Dense(
    10, activation="softmax")``, ``optimizers.Adam(0.004)``). The networks are lists of these:
    the app builds them (``build``) and shows them as code (``code``), one description."""

    path: str  # below ``keras``: "layers.Dense", "optimizers.Adam", "Input"
    args: tuple = ()
    options: tuple[tuple[str, object], ...] = ()

    def build(self):
        import keras

        target = keras
        for part in self.path.split("."):
            target = getattr(target, part)
        return target(*self.args, **dict(self.options))

    def code(self) -> str:
        """The call as Python, strings in double quotes (as keras-io writes them)."""
        words = [_literal(value) for value in self.args]
        words += [f"{name}={_literal(value)}" for name, value in self.options]
        prefix = "" if self.path.startswith("layers.") else "keras."
        return f"{prefix}{self.path}({', '.join(words)})"


def _literal(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        inner = ", ".join(map(_literal, value))
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def call(path: str, *args, **options) -> KerasCall:
    return KerasCall(path, args, tuple(options.items()))


def build_model(config: ModelConfig):
    """A compiled Keras model for ``config``: ``INPUT_SHAPE`` inputs, ten outputs (softmax
    probabilities by default; see ``inference.as_probabilities`` for the others)."""
    validate(config)
    import keras

    model = sequential(config)
    loss = "sparse_categorical_crossentropy" if config.loss == "crossentropy" else one_hot_mse
    model.compile(
        optimizer=optimizer_call(config).build(),
        loss=loss,
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def sequential(config: ModelConfig):
    """The network's layers as a Keras ``Sequential``, not compiled."""
    import keras

    return keras.Sequential([layer.build() for layer in layer_list(config)], name=config.kind)


def one_hot_mse(labels, outputs):
    """Mean squared error between the ten outputs and the one-hot digit: the loss of the
    material this app grew from, to compare with cross-entropy."""
    from keras import ops

    targets = ops.one_hot(ops.cast(ops.reshape(labels, (-1,)), "int32"), NUM_CLASSES)
    return ops.mean(ops.square(targets - outputs), axis=-1)


def layer_list(config: ModelConfig) -> list[KerasCall]:
    """The network's layers in order, from the input to the ten outputs."""
    body = _ann_layers(config) if config.kind == "ann" else _cnn_layers(config)
    return [
        call("Input", INPUT_SHAPE),
        *augmentation(config),
        *body,
        call("layers.Dense", NUM_CLASSES, activation=config.output_activation),
    ]


def _ann_layers(config: AnnConfig) -> list[KerasCall]:
    hidden = []
    for units in config.hidden_units:
        hidden += [
            call("layers.Dense", units, activation=config.activation),
            call("layers.Dropout", config.dropout),
        ]
    return [call("layers.Flatten"), *hidden]


def _cnn_layers(config: CnnConfig) -> list[KerasCall]:
    pool = "layers.MaxPooling2D" if config.pooling == "max" else "layers.AveragePooling2D"
    blocks = []
    for filters in config.filters:
        blocks += [
            call("layers.Conv2D", filters, config.kernel_size, padding="same", activation="relu"),
            call(pool, 2),
        ]
        # Normalising after the pool touches a quarter of the values: as accurate, 1.4x
        # faster. A quick-moving average of the statistics (momentum 0.9) is right even
        # after a short, time-boxed run.
        if config.batch_norm:
            blocks += [call("layers.BatchNormalization", momentum=0.9)]
    head = (
        [
            call("layers.Dense", config.dense_units, activation="relu"),
            call("layers.Dropout", config.dropout),
        ]
        if config.dense_units
        else []
    )
    return [*blocks, call("layers.Flatten"), call("layers.Dropout", config.dropout), *head]


def augmentation(config: ModelConfig) -> list[KerasCall]:
    """Small random shifts, turns and zooms, like the spread of hand-drawn digits.

    Keras applies these layers only while training; predictions see the digit as drawn.
    """
    if not config.augment:
        return []
    return [
        call("layers.RandomRotation", 0.03, fill_mode="constant"),  # +-11 degrees
        call("layers.RandomZoom", 0.1, fill_mode="constant"),
        call("layers.RandomTranslation", 0.08, 0.08, fill_mode="constant"),
    ]


def optimizer_call(config: ModelConfig) -> KerasCall:
    """The optimizer, at the learning rate it starts from (a schedule moves it after)."""
    if config.optimizer == "sgd":
        return call("optimizers.SGD", config.learning_rate, momentum=0.9, nesterov=True)
    if config.optimizer == "rmsprop":
        return call("optimizers.RMSprop", config.learning_rate)
    return call("optimizers.Adam", config.learning_rate)
