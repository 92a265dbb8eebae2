"""The Keras code of a network and how it is trained, as a student would write it.

Written from the same description the app builds from (``models.layer_list`` and
``models.optimizer_call``), so it cannot drift from what the app trains: the layers as a
declarative list, as keras-io's MNIST convnet writes them, then the optimizer, the loss
and the learning-rate schedule, with the batch size, epochs, time budget and data size
as constants. The app's one-cycle schedule is Keras's own ``CosineDecay`` with a warm-up
(``tests/test_network_code.py`` checks they agree step by step). The Train and Models pages
show this code; ``notebooks.py`` builds its notebooks and scripts from the same pieces.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import fields

from .jobs import TrainingConfig, TrainingJob
from .models import WARMUP, ModelConfig, config_from_dict, layer_list, one_hot_mse, optimizer_call

ONE_CYCLE_SCHEDULE = f'''\
def one_cycle_schedule(peak, steps):
    """The app's one cycle: the learning rate warms up from a tenth of its peak over the
    first {WARMUP:.0%} of the steps, then falls to zero along half a cosine."""
    warmup_steps = int({WARMUP} * steps)
    return keras.optimizers.schedules.CosineDecay(
        0.1 * peak,
        decay_steps=steps - warmup_steps,
        warmup_target=peak,
        warmup_steps=warmup_steps,
    )
'''


def saved_job(meta: dict) -> TrainingJob:
    """The job a saved model was trained with, from its metadata; ``ValueError`` saying why
    if there is none (an uploaded model) or this version cannot read it."""
    if meta.get("imported") or not meta.get("config"):
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


def python_string(text: str) -> str:
    """``text`` as a Python string literal in double quotes: a name with quotes, backslashes,
    line breaks or code in it stays a string (JSON's escapes are all Python's too)."""
    return json.dumps(str(text), ensure_ascii=False)


def settings_lines(job: TrainingJob, name: str | None = None) -> list[str]:
    """The job's training settings as constants, each saying what it means."""
    model, training = job.model, job.training
    images = f"{training.train_size:_}" if training.train_size else "None"
    lines = [f"NAME = {python_string(name)}"] if name is not None else []
    return lines + [
        f"SEED = {training.seed}",
        f"BATCH_SIZE = {training.batch_size}",
        f"EPOCHS = {training.epochs}",
        f"TIME_BUDGET = {training.time_budget!r}  # seconds; None: train every epoch",
        f"TRAIN_IMAGES = {images}  # the same number of each digit; None: all of them",
        f"VALIDATION_IMAGES = {training.validation_size:_}  # held out first, at most a tenth",
        f"EUROPEAN_SHARE = {training.styles!r}  # of the 0s, 1s and 7s, given European strokes",
        f"LEARNING_RATE = {model.learning_rate!r}",
    ]


def layers_lines(model: ModelConfig, indent: str = "    ") -> list[str]:
    """``keras.Sequential([...])`` of the network's layers, one a line."""
    return [
        "keras.Sequential(",
        f"{indent}[",
        *(f"{indent * 2}{layer.code()}," for layer in layer_list(model)),
        f"{indent}],",
        f'{indent}name="{model.kind}",',
        ")",
    ]


def optimizer_code(model: ModelConfig, rate: str) -> str:
    """The optimizer's call with ``rate`` (a name or expression) as its learning rate."""
    return optimizer_call(model).code().replace(repr(model.learning_rate), rate, 1)


def loss_code(model: ModelConfig) -> str:
    """The loss as ``compile`` takes it: Keras's name, or the app's ``one_hot_mse``."""
    return '"sparse_categorical_crossentropy"' if model.loss == "crossentropy" else "one_hot_mse"


def one_hot_mse_code() -> str:
    """The app's own squared-error loss, for the code that compiles with it."""
    source = inspect.getsource(one_hot_mse)
    return "NUM_CLASSES = 10\n\n\n" + source


def network_code(job: TrainingJob) -> str:
    """Python that builds and compiles ``job``'s network, its training settings above it."""
    model = job.model
    lines = [
        "import math",
        "",
        "import keras",
        "from keras import layers",
        "",
        *settings_lines(job),
        "",
        "model = " + "\n".join(layers_lines(model)),
        "",
    ]
    if model.loss == "mse":
        lines += ["", one_hot_mse_code()]
    if model.schedule == "one-cycle":
        lines += [
            "",
            ONE_CYCLE_SCHEDULE,
            "",
            "steps = EPOCHS * math.ceil((TRAIN_IMAGES or 55_000) / BATCH_SIZE)",
            f"optimizer = {optimizer_code(model, 'one_cycle_schedule(LEARNING_RATE, steps)')}",
        ]
    else:
        lines += [f"optimizer = {optimizer_code(model, 'LEARNING_RATE')}"]
    if job.training.time_budget:
        lines += [
            "# Training stops after TIME_BUDGET seconds, the one cycle then run on the clock:",
            "# the exported notebook holds the callback that does it.",
        ]
    lines += [
        f'model.compile(optimizer=optimizer, loss={loss_code(model)}, metrics=["accuracy"])',
        "model.summary()",
    ]
    return "\n".join(lines) + "\n"
