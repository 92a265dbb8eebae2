"""Train one model and report its progress as ``protocol`` events, in whatever process runs it.

The CLI calls ``train`` directly; the app calls it inside a worker process (see
``worker.py``) and forwards the same events to the page.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .challenge import hidden_writers, without_writers
from .class_drawings import as_seen
from .data import MnistData, stratified_indices, stratified_subset
from .drawings import DrawingsError, DrawingSet, DrawingsFolder, seen_by_networks, writer_split
from .evaluation import TestDigits, evaluate_digits
from .jobs import (
    HELD_OUT_MIN_WRITERS,
    HELD_OUT_SHARE,
    TrainingConfig,
    TrainingJob,
    validation_count,
    within_data,
)
from .models import WARMUP, build_model, config_to_dict, one_hot_mse, to_input
from .protocol import CurvePoint, Event, Progressed, StatusChanged
from .registry import ModelEntry, ModelRegistry
from .styles import with_styles

REPORT_EVERY_SECONDS = 0.25  # how often batch-level progress is sent (the UI polls ~2x/s)
# Either loss starts near 2.3 (cross-entropy) or below 1 (squared error) and a sane run
# never climbs past a few dozen: past this, or NaN or infinite, the weights have blown up.
DIVERGED_LOSS = 1000.0


class TrainingDiverged(Exception):
    """The loss became NaN, infinite or absurdly large: nothing worth saving was learned."""


@dataclass(frozen=True)
class Resumed:
    """Where a job stood at its last finished epoch, read back from its checkpoint."""

    epochs: int
    step: int
    seen: int
    elapsed: float
    history: dict[str, list[CurvePoint]] = field(default_factory=dict)


class Checkpoint:
    """A job's model and progress after its last finished epoch, kept while it trains.

    A server or worker killed mid-run loses at most the epoch under way: the run resumes
    from here. ``BASE.keras`` (the model with its optimizer state) is written before
    ``BASE.json`` (the progress), each atomically, so the JSON exists only beside a whole
    model; both go once the model is in the registry.
    """

    def __init__(self, base: Path):
        self.model_path = base.with_suffix(".keras")
        self.progress_path = base.with_suffix(".json")

    def read(self) -> tuple[keras.Model, Resumed] | None:
        """The model and progress saved last, or ``None`` if there are none (or they are
        unreadable, in which case the job starts over)."""
        try:
            saved = json.loads(self.progress_path.read_text())
            model = keras.saving.load_model(
                self.model_path, custom_objects={"one_hot_mse": one_hot_mse}, safe_mode=True
            )
        except Exception:  # missing, or damaged by a crash: Keras raises many types
            return None
        history = {
            name: [CurvePoint(**point) for point in points]
            for name, points in saved.pop("history").items()
        }
        return model, Resumed(**saved, history=history)

    def write(self, model: keras.Model, resumed: Resumed) -> None:
        self.model_path.parent.mkdir(parents=True, exist_ok=True)
        model_temporary = self.model_path.with_name(f".{self.model_path.stem}.tmp.keras")
        progress_temporary = self.progress_path.with_name(f".{self.progress_path.name}.tmp")
        try:
            model.save(model_temporary)
            os.replace(model_temporary, self.model_path)
            progress_temporary.write_text(json.dumps(asdict(resumed)))
            os.replace(progress_temporary, self.progress_path)
        except BaseException:  # a full or read-only disk: no temporary file left to fill it
            for path in (model_temporary, progress_temporary):
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
            raise

    def remove(self) -> None:
        self.progress_path.unlink(missing_ok=True)
        self.model_path.unlink(missing_ok=True)


@dataclass(frozen=True)
class ClassDigits:
    """A drawings set split by writer for training: the learned writers' digits, drawn
    ``copies`` times each (placed anew each time), and the held-out writers' digits as the
    networks see them: how the model reads writers it did not learn from."""

    name: str
    images: np.ndarray  # (N, 28, 28) float32
    labels: np.ndarray
    learned: int
    learned_writers: int
    copies: int
    held_out: TestDigits | None


MAX_COPIES = 8
# Each placement is drawn and preprocessed anew (~5 ms a digit on two cores): two are what
# a fine-tune of 1,000 drawings affords in its 30 s; further copies repeat them.
MAX_PLACEMENTS = 2


def class_digits(job: TrainingJob, mnist_images: int) -> ClassDigits:
    """``job``'s drawings set, ready to mix with ``mnist_images`` MNIST digits at the
    job's weight (``DrawingsError`` names an unknown or empty set)."""
    config = job.training
    folder = DrawingsFolder(job.drawings_dir)
    drawings = folder.load(config.drawings)
    # An open challenge's test is never learned from.
    drawings = without_writers(drawings, hidden_writers(folder, drawings.name, None))
    if not drawings.drawings:
        raise DrawingsError(
            f"{drawings.name}: every drawing in it is held back for the class challenge."
        )
    everyone = drawings.drawings

    def subset(indices) -> DrawingSet:
        return replace(drawings, drawings=tuple(everyone[i] for i in indices))

    held_out = None
    learned = np.arange(len(everyone))
    if len(set(drawings.writers)) >= HELD_OUT_MIN_WRITERS:
        test, learned = writer_split(everyone, HELD_OUT_SHARE, seed=config.seed)
        tested = subset(test)
        held_out = TestDigits(
            f"{drawings.name}: writers not learned from",
            f"{drawings.name}:held-out:{config.seed}",
            as_seen(tested),  # a kept drawing as the page saw it
            tested.labels,
            tuple(tested.writers),
            tuple(tested.sources),
        )
    wanted = config.drawings_weight / (1 - config.drawings_weight) * mnist_images
    copies = int(np.clip(round(wanted / len(learned)), 1, MAX_COPIES))
    chosen = subset(learned)
    drawn = [as_seen(chosen)] + [  # as kept, then placed anew
        seen_by_networks(chosen.drawings, seed=(config.seed, copy)).images
        for copy in range(1, min(copies, MAX_PLACEMENTS))
    ]
    images = np.concatenate([drawn[copy % len(drawn)] for copy in range(copies)])
    return ClassDigits(
        drawings.name,
        images,
        np.tile(drawings.labels[learned], copies),
        len(learned),
        len(set(chosen.writers)),
        copies,
        held_out,
    )


def split_data(data: MnistData, config: TrainingConfig, drawings: ClassDigits | None = None):
    """(x_train, y_train), (x_val, y_val): validation held out first, then the subset, then
    the class's drawings if any."""
    n_val = validation_count(data, config)
    val = stratified_indices(data.y_train, n_val, seed=config.seed)
    rest = np.setdiff1d(np.arange(len(data.y_train)), val)
    config.check(available=len(rest))
    x, y = stratified_subset(
        data.x_train[rest], data.y_train[rest], config.train_size or len(rest), seed=config.seed
    )
    x = with_styles(x, y, config.styles, seed=config.seed)  # the validation digits stay MNIST's
    x = to_input(x)
    if drawings is not None:
        x = np.concatenate([x, drawings.images[..., None]])
        y = np.concatenate([y, drawings.labels])
    return (x, y), (to_input(data.x_train[val]), data.y_train[val])


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
    checkpoint: Checkpoint | None = None,
) -> ModelEntry:
    """Train ``job`` on ``data``, evaluate on the test set, save, and return the entry.

    ``should_stop`` is checked after every batch; when it turns true the model trained
    so far is evaluated and saved, marked as stopped. ``callbacks`` are extra Keras
    callbacks (a benchmark's stopwatch, say). With a ``checkpoint``, training resumes
    from it if it holds an epoch and keeps it up to date after every epoch.
    ``TrainingDiverged`` is raised, and nothing saved, if the loss becomes NaN.
    """
    job = within_data(job, len(data.y_train) - validation_count(data, job.training))
    config = job.training
    drawings = None
    if config.drawings:
        on_event(StatusChanged(f"drawing the set {config.drawings!r} as the canvas would"))
        drawings = class_digits(job, config.train_size or len(data.y_train))
    (x_train, y_train), validation = split_data(data, config, drawings)
    keras.utils.set_random_seed(config.seed)
    saved = checkpoint.read() if checkpoint else None
    model, resumed = saved if saved else (starting_model(job), None)
    what = f"{job.kind.upper()} on {len(y_train):,} images"
    if drawings:
        what += f" ({len(drawings.labels):,} of them the set {drawings.name!r})"
    if job.parent:
        what = f"fine-tuning {job.parent}: {what}"
    if resumed:
        what += f", resumed after epoch {resumed.epochs}"
    on_event(StatusChanged(f"training {what}"))
    progress = ProgressCallback(len(y_train), config, on_event, should_stop, resumed)
    callbacks = [progress, *callbacks]
    if job.model.schedule == "one-cycle":
        callbacks.append(OneCycleSchedule(job.model.learning_rate, progress.fraction_done))
    if checkpoint:
        callbacks.append(CheckpointCallback(checkpoint, progress))
    model.fit(
        training_batches(x_train, y_train, config.batch_size, config.seed),
        shuffle=False,
        epochs=config.epochs,
        initial_epoch=resumed.epochs if resumed else 0,
        validation_data=evaluation_batches(*validation),
        callbacks=callbacks,
        verbose=0,
    )
    train_seconds = progress.elapsed()
    if not job.parent:
        recalibrate_batch_norm(model, x_train, config.batch_size, config.seed)
    on_event(StatusChanged("evaluating on the test set"))
    test_loss, test_accuracy = model.evaluate(
        evaluation_batches(to_input(data.x_test), data.y_test), verbose=0
    )
    meta = {
        "kind": job.kind,
        "parent": job.parent,
        "drawings": drawings_facts(model, drawings, config) if drawings else None,
        "experiment": job.experiment,
        "owner": job.owner,
        "owner_name": job.owner_name,
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
    entry = registry.save(model, job.name or f"{job.kind}-{time.strftime('%Y%m%d-%H%M%S')}", meta)
    if checkpoint:
        checkpoint.remove()
    return entry


def starting_model(job: TrainingJob) -> keras.Model:
    """A new network for ``job``, or its parent's trained one, compiled again at the job's
    (smaller) learning rate for fine-tuning."""
    if not job.parent:
        return build_model(job.model)
    registry = ModelRegistry(job.models_dir)
    parent = registry.load(registry.get(job.parent))
    for layer in parent.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False  # keeps MNIST's statistics: the drawings are a few
    fresh = build_model(job.model)  # the optimizer and loss the settings name
    parent.compile(optimizer=fresh.optimizer, loss=fresh.loss, metrics=["accuracy"])
    return parent


def drawings_facts(model, drawings: ClassDigits, config: TrainingConfig) -> dict:
    """What a model learned of a drawings set, and how it reads the writers it did not."""
    facts = {
        "set": drawings.name,
        "weight": config.drawings_weight,
        "learned": drawings.learned,
        "learned_writers": drawings.learned_writers,
        "copies": drawings.copies,
        "held_out": 0,
        "held_out_writers": 0,
        "held_out_accuracy": None,
    }
    if drawings.held_out is not None:
        held_out = evaluate_digits(model, drawings.held_out)
        facts |= {
            "held_out": len(held_out.labels),
            "held_out_writers": len(set(drawings.held_out.writers)),
            "held_out_accuracy": held_out.accuracy,
        }
    return facts


RECALIBRATION_IMAGES = 2000  # one forward pass over a sample of them: 0.2-0.5 s on 2 cores


def recalibrate_batch_norm(
    model, x: np.ndarray, batch_size: int, seed: int = 0, images: int = RECALIBRATION_IMAGES
) -> None:
    """Set each batch normalisation's moving mean and variance to the statistics of a
    sample of the training images ("precise BN").

    Keras starts a moving variance at 1 and moves it 10% a step; the first block's real
    variance is ~0.004, so after the ~40 steps of a classroom's short run (1 epoch on 5,000
    images) it is still ~5x too large and the CNN read 16-56% of the test set instead of
    ~95%: a convnet trained as briefly as a dense net taught the opposite of the lesson.
    After a full run the statistics barely change (99.36% -> 99.37%).
    """
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return
    sample = x[np.random.default_rng(seed).permutation(len(x))[:images]]
    momenta = [layer.momentum for layer in norms]
    try:
        for chunk, start in enumerate(range(0, len(sample), batch_size)):
            for layer in norms:
                layer.momentum = chunk / (chunk + 1)  # the running mean of the chunks' statistics
            model(sample[start : start + batch_size], training=True)
    finally:
        for layer, momentum in zip(norms, momenta, strict=True):
            layer.momentum = momentum


class ProgressCallback(keras.callbacks.Callback):
    """Batch metrics every ``REPORT_EVERY_SECONDS``, full metrics at each epoch end."""

    def __init__(self, n_train, config, on_event, should_stop, resumed: Resumed | None = None):
        super().__init__()
        self.n_train, self.batch_size = n_train, config.batch_size
        self.steps_per_epoch = -(-n_train // config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.time_budget = config.time_budget
        self.on_event, self.should_stop = on_event, should_stop
        self.resumed = resumed or Resumed(0, 0, 0, 0.0)
        self.history: dict[str, list[CurvePoint]] = {
            name: list(self.resumed.history.get(name, [])) for name in ("batch", "epoch")
        }
        self.stopped_by = None

    def on_train_begin(self, logs=None):
        self.last_report = time.perf_counter()
        self.started = self.last_report - self.resumed.elapsed
        self.step, self.seen = self.resumed.step, self.resumed.seen
        self.epoch = self.resumed.epochs

    def elapsed(self) -> float:
        """Seconds of training, those before a resume included."""
        return time.perf_counter() - self.started

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
        loss = float((logs or {}).get("loss", 0.0))
        if not loss < DIVERGED_LOSS:  # NaN compares false
            rate = float(self.model.optimizer.learning_rate)
            raise TrainingDiverged(
                f"the loss became {loss:.3g} in epoch {self.epoch}, batch {batch + 1}: the "
                f"weights blew up, so nothing was saved. The learning rate ({rate:g} at that "
                "moment) is too high for this network: try one ten times smaller."
            )
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


class CheckpointCallback(keras.callbacks.Callback):
    """Write the checkpoint after each whole epoch (not after one a Stop or the time
    budget cut short: that one ends the job, which saves it in the registry)."""

    def __init__(self, checkpoint: Checkpoint, progress: ProgressCallback):
        super().__init__()
        self.checkpoint, self.progress = checkpoint, progress

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training:
            return
        progress = self.progress
        self.checkpoint.write(
            self.model,
            Resumed(epoch + 1, progress.step, progress.seen, progress.elapsed(), progress.history),
        )


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
