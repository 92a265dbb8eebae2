"""The Keras code of a network and how it is trained, as a student would write it.

Written from the same description the app builds from (``models.layer_list`` and
``models.optimizer_call``), so it cannot drift from what the app trains: the layers as a
declarative list, as keras-io's MNIST convnet writes them, then the optimizer, the loss
and the learning-rate schedule, with the batch size, epochs, time budget and data size
as constants. The app's one-cycle schedule is Keras's own ``CosineDecay`` with a warm-up
(``tests/test_network_code.py`` checks they agree step by step).
"""

from __future__ import annotations

from dataclasses import fields

from .jobs import TrainingConfig, TrainingJob
from .models import WARMUP, config_from_dict, layer_list, optimizer_call


def saved_job(meta: dict) -> TrainingJob:
    """The job a saved model was trained with, from its metadata; ``ValueError`` saying why
    if there is none (an uploaded model) or this version cannot read it."""
    if "config" not in meta:
        raise ValueError(
            "this model was uploaded, not trained here: its architecture is in the file, "
            "its training is unknown"
        )
    try:
        model = config_from_dict(meta["config"])
        known = {f.name for f in fields(TrainingConfig)}
        training = TrainingConfig(
            **{k: v for k, v in meta.get("training", {}).items() if k in known}
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"this model's settings are from a version of the app this one cannot read ({error})"
        ) from None
    return TrainingJob(model, training)


def network_code(job: TrainingJob) -> str:
    """Python that builds and compiles ``job``'s network, its training settings above it."""
    model, training = job.model, job.training
    images = f"{training.train_size:_}" if training.train_size else "None"
    lines = [
        "import keras",
        "from keras import layers",
        "",
        f"BATCH_SIZE = {training.batch_size}",
        f"EPOCHS = {training.epochs}",
        f"TIME_BUDGET = {training.time_budget!r}  # seconds; None: train every epoch",
        f"TRAIN_IMAGES = {images}  # the same number of each digit; None: all of them",
        f"LEARNING_RATE = {model.learning_rate!r}",
        "",
        "model = keras.Sequential(",
        "    [",
        *(f"        {layer.code()}," for layer in layer_list(model)),
        "    ],",
        f'    name="{model.kind}",',
        ")",
        "",
    ]
    optimizer = optimizer_call(model).code().replace(repr(model.learning_rate), "{}", 1)
    if model.schedule == "one-cycle":
        lines += [
            "# One cycle: the learning rate warms up to its peak over the first fifth of the",
            "# steps, then falls to zero along half a cosine.",
            "steps = EPOCHS * -(-(TRAIN_IMAGES or 55_000) // BATCH_SIZE)",
            f"warmup_steps = int({WARMUP} * steps)",
            "schedule = keras.optimizers.schedules.CosineDecay(",
            "    0.1 * LEARNING_RATE,",
            "    decay_steps=steps - warmup_steps,",
            "    warmup_target=LEARNING_RATE,",
            "    warmup_steps=warmup_steps,",
            ")",
            f"optimizer = {optimizer.format('schedule')}",
        ]
    else:
        lines += [f"optimizer = {optimizer.format('LEARNING_RATE')}"]
    if model.loss == "crossentropy":
        loss = '"sparse_categorical_crossentropy"'
    else:
        lines += [
            "",
            "# Mean squared error against the one-hot digit (the labels stay 0-9):",
            "def one_hot_mse(labels, outputs):",
            "    targets = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(labels, (-1,)),"
            ' "int32"), 10)',
            "    return keras.ops.mean(keras.ops.square(targets - outputs), axis=-1)",
        ]
        loss = "one_hot_mse"
    lines += [
        "",
        f'model.compile(optimizer=optimizer, loss={loss}, metrics=["accuracy"])',
        "model.summary()",
    ]
    return "\n".join(lines) + "\n"
