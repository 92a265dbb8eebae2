"""Experiments: several training jobs run in a row, to see what one setting changes.

The presets reproduce the experiments of the material this app grew from (hidden neurons,
activation functions, optimizers with and without dropout and with two losses, ANN
against CNN). Each is a list of ordinary ``TrainingJob``s that differ from the defaults in
one or two settings, so every result is comparable with the models trained on the Train
page. The page edits them as a table (``table_of`` and ``jobs_of``); the CLI's ``sweep``
and the page run them through the same training code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import pandas as pd

from .jobs import TrainingJob, default_job
from .models import KINDS, parse_layer_sizes

SGD_LEARNING_RATE = 0.05  # plain SGD (momentum 0.9) needs a larger step than Adam's 4e-3


@dataclass(frozen=True)
class Preset:
    """A ready-made experiment: the question it asks and the jobs that answer it."""

    name: str
    question: str
    jobs: tuple[TrainingJob, ...]


def _ann(label: str, **settings) -> TrainingJob:
    return default_job("ann", name=label, **settings)


def _optimizer_job(optimizer: str, dropout: float, loss: str) -> TrainingJob:
    rate = SGD_LEARNING_RATE if optimizer == "sgd" else None  # None: the default (Adam's)
    label = f"{optimizer}-{'dropout' if dropout else 'no-dropout'}-{loss}"
    return _ann(label, optimizer=optimizer, dropout=dropout, loss=loss, learning_rate=rate)


PRESETS = {
    preset.name: preset
    for preset in (
        Preset(
            "neurons",
            "How many hidden neurons does a dense net need? One hidden layer of 32 to 512.",
            tuple(_ann(f"neurons-{n}", hidden_units=(n,)) for n in (32, 64, 128, 256, 512)),
        ),
        Preset(
            "activations",
            "Which activation functions learn best? Hidden layers with relu, sigmoid or tanh; "
            "then the output layer with sigmoid or tanh in place of softmax.",
            (
                *(_ann(f"hidden-{a}", activation=a) for a in ("relu", "sigmoid", "tanh")),
                _ann("output-sigmoid", output_activation="sigmoid"),
                _ann("output-tanh-mse", output_activation="tanh", loss="mse"),
            ),
        ),
        Preset(
            "optimizers",
            "SGD or Adam, with or without dropout, with cross-entropy or mean squared error.",
            (
                *(
                    _optimizer_job(optimizer, dropout, "crossentropy")
                    for optimizer in ("sgd", "adam")
                    for dropout in (0.0, 0.2)
                ),
                *(_optimizer_job(optimizer, 0.2, "mse") for optimizer in ("sgd", "adam")),
            ),
        ),
        Preset(
            "ann-vs-cnn",
            "A dense net against a convnet, each with its default settings.",
            (default_job("ann", name="ann"), default_job("cnn", name="cnn")),
        ),
    )
}


def experiment_tag(preset: str) -> str:
    """A tag for one run of an experiment, saved with each of its models: unique per run."""
    return f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepared(jobs: list[TrainingJob], experiment: str, **overrides) -> list[TrainingJob]:
    """``jobs`` tagged with ``experiment``, each with the non-None ``overrides`` applied:
    ``epochs``, ``time_budget`` and ``train_size`` (of the training settings) or
    ``data_path`` and ``models_dir`` (of the job). Raises ``ValueError`` naming the job
    whose settings are impossible."""
    training_keys = {"epochs", "time_budget", "train_size"}
    ready = []
    for job in jobs:
        training = {k: v for k, v in overrides.items() if k in training_keys and v is not None}
        others = {k: v for k, v in overrides.items() if k not in training_keys and v is not None}
        job = replace(
            job,
            training=replace(job.training, **training),
            experiment=experiment,
            **others,
        )
        try:
            job.check()
        except ValueError as error:
            raise ValueError(f"{job.name}: {error}") from None
        ready.append(job)
    return ready


# --- the page's table of jobs ---------------------------------------------------------------

COLUMNS = {  # column -> what it holds, for the page's column help
    "name": "the model's name",
    "kind": "ann or cnn",
    "layers": "hidden units (ANN) or conv filters (CNN) per layer, e.g. 128, 64",
    "activation": "of the hidden layers (ANN only)",
    "output": "the output layer's activation: softmax, sigmoid or tanh",
    "loss": "crossentropy or mse (mean squared error)",
    "dropout": "share of units dropped while training, 0-0.9",
    "optimizer": "adam, sgd or rmsprop",
    "learning rate": "the peak of the one-cycle schedule",
    "epochs": "passes over the training images",
    "seconds": "time budget: stop after this many seconds (empty: none)",
    "batch": "images per training step",
    "images": "training images (empty: all)",
}


def table_of(jobs: list[TrainingJob]) -> pd.DataFrame:
    """The jobs as an editable table, one row each, in ``COLUMNS``."""
    rows = []
    for job in jobs:
        model, training = job.model, job.training
        layers = model.hidden_units if job.kind == "ann" else model.filters
        rows.append(
            {
                "name": job.name or job.kind,
                "kind": job.kind,
                "layers": ", ".join(str(n) for n in layers),
                "activation": getattr(model, "activation", None),
                "output": model.output_activation,
                "loss": model.loss,
                "dropout": model.dropout,
                "optimizer": model.optimizer,
                "learning rate": model.learning_rate,
                "epochs": training.epochs,
                "seconds": training.time_budget,
                "batch": training.batch_size,
                "images": training.train_size,
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def jobs_of(table: pd.DataFrame) -> list[TrainingJob]:
    """The table's rows as jobs. Raises ``ValueError`` naming the row and the setting at
    fault, for a blank or impossible one."""
    jobs = []
    for number, row in enumerate(table.to_dict("records"), start=1):
        try:
            jobs.append(_job_of(row))
        except (ValueError, TypeError, KeyError) as error:
            name = row.get("name") or "unnamed"
            raise ValueError(f"row {number} ({name}): {error}") from None
    return jobs


def _job_of(row: dict) -> TrainingJob:
    kind = row["kind"]
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    layers = parse_layer_sizes(str(row["layers"] or ""))
    settings = {
        "hidden_units" if kind == "ann" else "filters": layers,
        "output_activation": _text(row, "output"),
        "loss": _text(row, "loss"),
        "dropout": float(_given(row, "dropout")),
        "optimizer": _text(row, "optimizer"),
        "learning_rate": float(_given(row, "learning rate")),
        "epochs": int(_given(row, "epochs")),
        "batch_size": int(_given(row, "batch")),
        "time_budget": None if _blank(row["seconds"]) else float(row["seconds"]),
        "train_size": None if _blank(row["images"]) else int(row["images"]),
        "name": str(row["name"]).strip() or kind,
    }
    if kind == "ann":
        settings["activation"] = _text(row, "activation")
    job = default_job(kind, **settings)
    job.check()
    return job


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value == ""


def _given(row: dict, column: str):
    if _blank(row[column]):
        raise ValueError(f"{column} is empty")
    return row[column]


def _text(row: dict, column: str) -> str:
    return str(_given(row, column)).strip().lower()
