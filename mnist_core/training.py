"""Train one model and report its progress as ``protocol`` events, in whatever process runs it.

The CLI calls ``train`` directly; the app calls it inside a worker process (see
``worker.py``) and forwards the same events to the page.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict

import keras
import numpy as np
import tensorflow as tf

from .data import MnistData, stratified_indices, stratified_subset
from .jobs import TrainingConfig, TrainingJob, validation_count
from .models import build_model, config_to_dict, to_input
from .protocol import CurvePoint, Event, Progressed, StatusChanged
from .registry import ModelEntry, ModelRegistry

REPORT_EVERY_SECONDS = 0.25  # how often batch-level progress is sent (the UI polls ~2x/s)
WARMUP = 0.2  # share of a one-cycle run spent raising the learning rate to its peak


def split_data(data: MnistData, config: TrainingConfig):
    """(x_train, y_train), (x_val, y_val): validation held out first, then the subset."""
    n_val = validation_count(data, config)
    val = stratified_indices(data.y_train, n_val, seed=config.seed)
    rest = np.setdiff1d(np.arange(len(data.y_train)), val)
    config.check(available=len(rest))
    x, y = stratified_subset(
        data.x_train[rest], data.y_train[rest], config.train_size or len(rest), seed=config.seed
    )
    return (to_input(x), y), (to_input(data.x_train[val]), data.y_train[val])


def training_batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
    """Shuffled batches, reshuffled each epoch: a ``tf.data`` pipeline built once.

    Not ``fit(x, y)``: with Keras's own pipeline, each epoch's start waited for the last
    epoch's tf.data autotuning thread to wake up, idle for up to an epoch's length
    (0-20 s per epoch on two cores); here autotuning is off. The order is shuffled, not
    the images: one gather per batch, and no second copy of the training set.
    """
    order = tf.data.Dataset.range(len(y)).shuffle(len(y), seed=seed).batch(batch_size)
    arrays = tf.data.Dataset.from_tensors((x, y)).repeat()
    batches = tf.data.Dataset.zip(order, arrays).map(
        lambda batch, xy: (tf.gather(xy[0], batch), tf.gather(xy[1], batch))
    )
    return without_autotuning(batches.prefetch(2))


def evaluation_batches(x: np.ndarray, y: np.ndarray) -> tf.data.Dataset:
    """A held-out set (validation or test) in fixed order, for the same reason: Keras keeps
    the validation pipeline for the whole run, and freeing it later waited as above."""
    return without_autotuning(tf.data.Dataset.from_tensor_slices((x, y)).batch(1024))


def without_autotuning(dataset: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def train(
    job: TrainingJob,
    data: MnistData,
    on_event: Callable[[Event], None] = lambda event: None,
    should_stop: Callable[[], bool] = lambda: False,
    callbacks: list = (),
) -> ModelEntry:
    """Train ``job`` on ``data``, evaluate on the test set, save, and return the entry.

    ``should_stop`` is checked after every batch; when it turns true the model trained
    so far is evaluated and saved, marked as stopped. ``callbacks`` are extra Keras
    callbacks (a benchmark's stopwatch, say).
    """
    config = job.training
    (x_train, y_train), validation = split_data(data, config)
    keras.utils.set_random_seed(config.seed)
    model = build_model(job.model)
    on_event(StatusChanged(f"training {job.kind.upper()} on {len(y_train):,} images"))
    progress = ProgressCallback(len(y_train), config, on_event, should_stop)
    callbacks = [progress, *callbacks]
    if job.model.schedule == "one-cycle":
        callbacks.append(OneCycleSchedule(job.model.learning_rate, progress.fraction_done))
    started = time.perf_counter()
    model.fit(
        training_batches(x_train, y_train, config.batch_size, config.seed),
        shuffle=False,
        epochs=config.epochs,
        validation_data=evaluation_batches(*validation),
        callbacks=callbacks,
        verbose=0,
    )
    train_seconds = time.perf_counter() - started
    on_event(StatusChanged("evaluating on the test set"))
    test_loss, test_accuracy = model.evaluate(
        evaluation_batches(to_input(data.x_test), data.y_test), verbose=0
    )
    meta = {
        "kind": job.kind,
        "experiment": job.experiment,
        "config": config_to_dict(job.model),
        "training": asdict(config),
        "data": {
            "origin": data.origin,
            "location": data.location,
            "train_images": int(len(y_train)),
            "test_images": int(len(data.y_test)),
        },
        "epochs": round(progress.seen / len(y_train), 2),  # fractional if stopped mid-epoch
        "stopped": progress.stopped_by is not None,
        "stopped_by": progress.stopped_by,
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "train_seconds": round(train_seconds, 2),
        "history": {
            name: [asdict(point) for point in points] for name, points in progress.history.items()
        },
    }
    registry = ModelRegistry(job.models_dir)
    return registry.save(model, job.name or f"{job.kind}-{time.strftime('%Y%m%d-%H%M%S')}", meta)


class ProgressCallback(keras.callbacks.Callback):
    """Batch metrics every ``REPORT_EVERY_SECONDS``, full metrics at each epoch end."""

    def __init__(self, n_train, config, on_event, should_stop):
        super().__init__()
        self.n_train, self.batch_size = n_train, config.batch_size
        self.steps_per_epoch = -(-n_train // config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.time_budget = config.time_budget
        self.on_event, self.should_stop = on_event, should_stop
        self.history: dict[str, list[CurvePoint]] = {"batch": [], "epoch": []}
        self.stopped_by = None

    def on_train_begin(self, logs=None):
        self.started = self.last_report = time.perf_counter()
        self.step = self.seen = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def fraction_done(self) -> float:
        """Steps done over steps planned, or time used over the time budget if further."""
        done = self.step / self.total_steps
        if self.time_budget:
            done = max(done, (time.perf_counter() - self.started) / self.time_budget)
        return min(done, 1.0)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.seen = (self.epoch - 1) * self.n_train + min(
            (batch + 1) * self.batch_size, self.n_train
        )
        now = time.perf_counter()
        if self.should_stop():
            self.stopped_by = "user"
        elif self.time_budget and now - self.started >= self.time_budget:
            self.stopped_by = "time budget"
        if self.stopped_by:
            self.model.stop_training = True
        if now - self.last_report >= REPORT_EVERY_SECONDS or self.stopped_by:
            self.last_report = now
            self._report(logs, now, epoch_end=False)

    def on_epoch_end(self, epoch, logs=None):
        self._report(logs, time.perf_counter(), epoch_end=True)  # Keras validates a cut epoch too

    def _report(self, logs, now, epoch_end: bool):
        elapsed = now - self.started
        metrics = {key: float(value) for key, value in (logs or {}).items()}
        point = CurvePoint(
            epoch=self.epoch,
            step=self.step,
            epochs_seen=self.seen / self.n_train,
            progress=self.fraction_done(),
            elapsed=round(elapsed, 3),
            images_per_s=self.seen / max(elapsed, 1e-9),
            loss=metrics["loss"],
            accuracy=metrics["accuracy"],
            val_loss=metrics.get("val_loss"),
            val_accuracy=metrics.get("val_accuracy"),
        )
        self.history["epoch" if epoch_end else "batch"].append(point)
        self.on_event(Progressed(point, epoch_end))


class OneCycleSchedule(keras.callbacks.Callback):
    """Warm the learning rate up to its peak, then anneal it to zero by the end of the run.

    The end is whichever comes first, the last epoch or the time budget, so a run told
    "30 seconds" still finishes with small, careful steps. Fast and accurate in few epochs.
    """

    def __init__(self, peak: float, fraction_done: Callable[[], float]):
        super().__init__()
        self.peak, self.fraction_done = peak, fraction_done

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate.assign(one_cycle(self.fraction_done(), self.peak))


def one_cycle(done: float, peak: float) -> float:
    """Learning rate after ``done`` (0-1) of the run: linear warm-up, then half a cosine."""
    if done < WARMUP:
        return peak * (0.1 + 0.9 * done / WARMUP)
    return peak * 0.5 * (1 + math.cos(math.pi * (done - WARMUP) / (1 - WARMUP)))
