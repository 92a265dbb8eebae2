"""What to train: the settings of a training job, their defaults, and the quick demo jobs.

Plain dataclasses with no TensorFlow import, so pages and the CLI can build and check
jobs instantly; ``training.py`` runs them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace

from .data import MnistData
from .models import CONFIGS, KINDS, ModelConfig, config_from_dict, config_to_dict, validate
from .text import shortened

MAX_EPOCHS = 1000
# Of a drawings set's writers, a quarter are held out of training when it has at least
# four: the finished model is measured on writers it did not learn from.
HELD_OUT_SHARE = 0.25
HELD_OUT_MIN_WRITERS = 4
MAX_DRAWINGS_WEIGHT = 0.9  # the rest is MNIST: a model of the class's digits alone forgets it


@dataclass(frozen=True)
class TrainingConfig:
    """How long and on what to train. ``time_budget`` (seconds) stops early if it runs out."""

    epochs: int = 5
    batch_size: int = 128
    train_size: int | None = None  # None: every training image not held out for validation
    time_budget: float | None = None
    validation_size: int = 5000  # held out of the training set, capped at 10% of it
    seed: int = 0
    # Share of the training 0s, 1s and 7s written in European styles (styles.with_styles).
    styles: float = 0.0
    # A drawings set to learn from as well (the class's own handwriting), and the share of
    # the training images its digits make up (each drawn again, placed anew, as often as
    # that takes).
    drawings: str | None = None
    drawings_weight: float = 0.2

    def check(self, available: int | None = None) -> None:
        """Raise ``ValueError`` with a specific reason for impossible settings."""
        if not 1 <= self.epochs <= MAX_EPOCHS:
            raise ValueError(f"epochs must be 1-{MAX_EPOCHS}, got {shortened(self.epochs)}")
        if not 1 <= self.batch_size <= 8192:
            raise ValueError(f"batch size must be 1-8192, got {shortened(self.batch_size)}")
        if self.time_budget is not None and not 0 < self.time_budget < math.inf:  # NaN too
            raise ValueError(
                f"time budget must be positive seconds, got {shortened(self.time_budget)}"
            )
        if not 0 <= self.styles <= 1:  # NaN too
            raise ValueError(f"styles must be a share from 0 to 1, got {shortened(self.styles)}")
        if not 0 < self.drawings_weight <= MAX_DRAWINGS_WEIGHT:  # NaN too
            raise ValueError(
                f"the drawings' weight must be a share above 0 and at most "
                f"{MAX_DRAWINGS_WEIGHT:g}, got {shortened(self.drawings_weight)}"
            )
        too_many = available is not None and (self.train_size or 0) > available
        if self.train_size is not None and (self.train_size < 100 or too_many):
            upper = f" and at most {available:,}" if available is not None else ""
            raise ValueError(
                f"training-set size must be at least 100{upper} images, got {self.train_size:,}"
            )
        images = self.train_size or available
        if images is not None and self.batch_size > images:
            raise ValueError(
                f"batch size {self.batch_size:,} is larger than the training set of "
                f"{images:,} images: choose a batch of at most {images:,}"
            )


@dataclass(frozen=True)
class TrainingJob:
    """Everything a worker needs to train and save one model."""

    model: ModelConfig
    training: TrainingConfig = field(default_factory=TrainingConfig)
    name: str | None = None
    data_path: str | None = None
    models_dir: str | None = None
    experiment: str | None = None  # the sweep it belongs to: a tag saved with the model
    owner: str | None = None  # who asked for it (``Requester.owner``): saved with the model
    owner_name: str | None = None  # the name the student goes by (the challenge's board)
    drawings_dir: str | None = None  # where ``training.drawings`` is (default: drawings/)
    parent: str | None = None  # a saved model to fine-tune (``finetune_job``), not a new one

    @property
    def kind(self) -> str:
        return self.model.kind

    def check(self, available: int | None = None) -> None:
        """Raise ``ValueError`` with a specific reason for impossible hyper-parameters or a
        name no model can be saved under (before training, not after it)."""
        from .registry import sanitize_name  # the registry's records import this module

        validate(self.model, self.training.batch_size)
        self.training.check(available)
        if self.name is not None:
            sanitize_name(self.name)

    def to_dict(self) -> dict:
        return {**asdict(self), "model": config_to_dict(self.model)}

    @classmethod
    def from_dict(cls, data: dict) -> TrainingJob:
        return cls(
            **{
                **data,
                "model": config_from_dict(data["model"]),
                "training": TrainingConfig(**data["training"]),
            }
        )


# With the one-cycle schedule, a few epochs are enough (see docs/benchmarks.md).
# A share of MNIST's 0s, 1s and 7s slashed, flagged and crossed: real European handwriting
# read better at no cost in time (docs/benchmarks.md, "Real handwriting").
STYLE_SHARE = 0.15
DEFAULT_TRAINING = {
    "ann": TrainingConfig(epochs=5, batch_size=256, styles=STYLE_SHARE),
    "cnn": TrainingConfig(epochs=4, batch_size=128, styles=STYLE_SHARE),
}


def default_job(kind: str, **overrides) -> TrainingJob:
    """The default job for ``kind`` ("ann" or "cnn"), with every non-None override applied.

    Overrides may name fields of the model config, of ``TrainingConfig`` or of the job.
    """
    parts = {"model": CONFIGS[kind](), "training": DEFAULT_TRAINING[kind]}
    changes = {name: {} for name in parts} | {"job": {}}
    for key, value in overrides.items():
        if value is None:
            continue
        part = next((p for p, obj in parts.items() if key in {f.name for f in fields(obj)}), "job")
        changes[part][key] = value
    return TrainingJob(
        replace(parts["model"], **changes["model"]),
        replace(parts["training"], **changes["training"]),
        **changes["job"],
    )


def validation_count(data: MnistData, config: TrainingConfig) -> int:
    """How many training images are held out for validation (at most 10%)."""
    return min(config.validation_size, len(data.y_train) // 10)


# Fine-tuning a saved model on a class's drawings: a few epochs over the drawings (drawn
# again, placed anew each time) beside as many MNIST digits, at a tenth of the model's
# learning rate, so it learns the class's hands without forgetting MNIST's
# (docs/benchmarks.md, "The class's handwriting").
FINETUNE_EPOCHS = 3
FINETUNE_RATE = 0.1
FINETUNE_WEIGHT = 0.3
FINETUNE_MNIST_IMAGES = 12_000


def finetune_job(
    parent: str, model: dict, drawings: str, epochs: int | None = None, **job_fields
) -> TrainingJob:
    """A job that fine-tunes the saved model ``parent`` (its saved ``model`` settings) on
    the drawings set ``drawings``: a new model."""
    config = config_from_dict(model)
    kind = config.kind
    config = replace(config, learning_rate=config.learning_rate * FINETUNE_RATE)
    training = TrainingConfig(
        epochs=epochs or FINETUNE_EPOCHS,
        batch_size=DEFAULT_TRAINING[kind].batch_size,
        train_size=FINETUNE_MNIST_IMAGES,
        drawings=drawings,
        drawings_weight=FINETUNE_WEIGHT,
    )
    return TrainingJob(config, training, parent=parent, **job_fields)


def within_data(job: TrainingJob, available: int) -> TrainingJob:
    """``job`` fitted to an MNIST of ``available`` training images: a fine-tune's MNIST share
    is its default, not the user's, so a smaller MNIST (the offline sample) gives all it has
    rather than a refusal of a size nobody asked for."""
    if job.parent and (job.training.train_size or 0) > available:
        return replace(job, training=replace(job.training, train_size=None))
    return job


QUICK_SECONDS = {"ann": 15, "cnn": 40}  # about a minute for both on two CPU cores


def quick_jobs(kinds: Sequence[str] = KINDS, **overrides) -> list[TrainingJob]:
    """Default models on a time budget, so a demo never waits long for a model.

    Not augmented: within the same budget, augmentation cost 0.4 (CNN) and 0.8 (ANN)
    points of MNIST test accuracy and gained nothing on pen strokes (bench/pen_strokes.py).
    """
    return [
        default_job(
            kind, **{"time_budget": QUICK_SECONDS[kind], "name": f"{kind}-quick", **overrides}
        )
        for kind in kinds
    ]
