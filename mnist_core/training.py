"""Train one model and report progress as plain dicts, in whatever process runs it.

The CLI calls ``train`` directly; the app calls it inside a worker process (see
``worker.py``) and forwards the same events to the page.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Callable

import keras
import numpy as np

from .data import MnistData, stratified_indices, stratified_subset
from .models import CONFIGS, ModelConfig, build_model, config_from_dict, config_to_dict, validate
from .registry import ModelEntry, ModelRegistry

REPORT_EVERY_SECONDS = 0.25  # how often batch-level progress is sent (the UI polls ~2x/s)


@dataclass(frozen=True)
class TrainingConfig:
    """How long and on what to train. ``time_budget`` (seconds) stops early if it runs out."""

    epochs: int = 5
    batch_size: int = 128
    train_size: int | None = None  # None: every training image not held out for validation
    time_budget: float | None = None
    validation_size: int = 5000  # held out of the training set, capped at 10% of it
    seed: int = 0

    def check(self, available: int | None = None) -> None:
        """Raise ``ValueError`` with a specific reason for impossible settings."""
        if not 1 <= self.epochs <= 1000:
            raise ValueError(f"epochs must be 1-1000, got {self.epochs}")
        if not 1 <= self.batch_size <= 8192:
            raise ValueError(f"batch size must be 1-8192, got {self.batch_size}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise ValueError(f"time budget must be positive seconds, got {self.time_budget}")
        too_many = available is not None and (self.train_size or 0) > available
        if self.train_size is not None and (self.train_size < 100 or too_many):
            upper = f" and at most {available:,}" if available is not None else ""
            raise ValueError(
                f"training-set size must be at least 100{upper} images, got {self.train_size:,}"
            )


@dataclass(frozen=True)
class TrainingJob:
    """Everything a worker needs to train and save one model."""

    model: ModelConfig
    training: TrainingConfig = field(default_factory=TrainingConfig)
    name: str | None = None
    data_path: str | None = None
    models_dir: str | None = None

    @property
    def kind(self) -> str:
        return self.model.kind

    def to_dict(self) -> dict:
        return {**asdict(self), "model": config_to_dict(self.model)}

    @classmethod
    def from_dict(cls, data: dict) -> TrainingJob:
        return cls(**{**data, "model": config_from_dict(data["model"]),
                      "training": TrainingConfig(**data["training"])})


DEFAULT_TRAINING = {
    "ann": TrainingConfig(epochs=10, batch_size=128),
    "cnn": TrainingConfig(epochs=12, batch_size=128),
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
    return TrainingJob(replace(parts["model"], **changes["model"]),
                       replace(parts["training"], **changes["training"]), **changes["job"])


def split_data(data: MnistData, config: TrainingConfig):
    """(x_train, y_train), (x_val, y_val): validation held out first, then the subset."""
    n_val = min(config.validation_size, len(data.y_train) // 10)
    val = stratified_indices(data.y_train, n_val, seed=config.seed)
    rest = np.setdiff1d(np.arange(len(data.y_train)), val)
    config.check(available=len(rest))
    x, y = stratified_subset(data.x_train[rest], data.y_train[rest],
                             config.train_size or len(rest), seed=config.seed)
    return (to_input(x), y), (to_input(data.x_train[val]), data.y_train[val])


def to_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1], the networks' input."""
    return (images.astype(np.float32) / 255.0)[..., None]


def train(
    job: TrainingJob,
    data: MnistData,
    on_event: Callable[[dict], None] = lambda event: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> ModelEntry:
    """Train ``job`` on ``data``, evaluate on the test set, save, and return the entry.

    ``should_stop`` is checked after every batch; when it turns true the model trained
    so far is evaluated and saved, marked as stopped.
    """
    validate(job.model)
    config = job.training
    (x_train, y_train), validation = split_data(data, config)
    keras.utils.set_random_seed(config.seed)
    model = build_model(job.model)
    on_event({"type": "status", "message": f"training {job.kind.upper()} on {len(y_train):,} images"})
    progress = ProgressCallback(len(y_train), config, on_event, should_stop)
    started = time.perf_counter()
    model.fit(
        x_train, y_train,
        batch_size=config.batch_size, epochs=config.epochs,
        validation_data=validation, callbacks=[progress], verbose=0,
    )
    train_seconds = time.perf_counter() - started
    on_event({"type": "status", "message": "evaluating on the test set"})
    test_loss, test_accuracy = model.evaluate(to_input(data.x_test), data.y_test,
                                              batch_size=1024, verbose=0)
    meta = {
        "kind": job.kind,
        "config": config_to_dict(job.model),
        "training": asdict(config),
        "data": {"origin": data.origin, "location": data.location,
                 "train_images": int(len(y_train)), "test_images": int(len(data.y_test))},
        "epochs": progress.epochs_done,
        "stopped": progress.stopped_by is not None,
        "stopped_by": progress.stopped_by,
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "train_seconds": round(train_seconds, 2),
        "history": progress.history,
    }
    registry = ModelRegistry(job.models_dir)
    return registry.save(model, job.name or f"{job.kind}-{time.strftime('%Y%m%d-%H%M%S')}", meta)


class ProgressCallback(keras.callbacks.Callback):
    """Batch metrics every ``REPORT_EVERY_SECONDS``, full metrics at each epoch end."""

    def __init__(self, n_train, config, on_event, should_stop):
        super().__init__()
        self.n_train, self.batch_size = n_train, config.batch_size
        self.total_steps = -(-n_train // config.batch_size) * config.epochs
        self.time_budget = config.time_budget
        self.on_event, self.should_stop = on_event, should_stop
        self.history = {"batch": [], "epoch": []}
        self.epochs_done = 0
        self.stopped_by = None

    def on_train_begin(self, logs=None):
        self.started = self.last_report = time.perf_counter()
        self.step = self.seen = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.seen = (self.epoch - 1) * self.n_train + min((batch + 1) * self.batch_size, self.n_train)
        now = time.perf_counter()
        if self.should_stop():
            self.stopped_by = "user"
        elif self.time_budget and now - self.started >= self.time_budget:
            self.stopped_by = "time budget"
        if self.stopped_by:
            self.model.stop_training = True
        if now - self.last_report >= REPORT_EVERY_SECONDS or self.stopped_by:
            self.last_report = now
            self._report("batch", logs, now)

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done = epoch + 1  # Keras validates even an epoch cut short by a stop
        self._report("epoch", logs, time.perf_counter())

    def _report(self, kind, logs, now):
        elapsed = now - self.started
        progress = self.step / self.total_steps
        if self.time_budget:
            progress = max(progress, elapsed / self.time_budget)
        event = {
            "type": kind, "epoch": self.epoch, "step": self.step,
            "progress": min(progress, 1.0), "elapsed": round(elapsed, 3),
            "images_per_s": self.seen / max(elapsed, 1e-9),
            **{key: float(value) for key, value in (logs or {}).items()},
        }
        self.history[kind].append(event)
        self.on_event(event)
