import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import pytest

from mnist_core.jobs import TrainingConfig, TrainingJob, default_job, quick_jobs
from mnist_core.models import AnnConfig, CnnConfig
from mnist_core.protocol import Progressed
from mnist_core.registry import ModelRegistry
from mnist_core.training import (
    WARMUP,
    Checkpoint,
    TrainingDiverged,
    one_cycle,
    train,
    training_batches,
)

ROOT = Path(__file__).resolve().parents[1]
TINY_ANN = AnnConfig(hidden_units=(64,))
TINY_CNN = CnnConfig(filters=(8, 16), dense_units=32, batch_norm=False)  # learns in 20 steps


def tiny_job(tmp_path, model=TINY_ANN, **training):
    settings = {"epochs": 1, "batch_size": 64, **training}
    return TrainingJob(model, TrainingConfig(**settings), models_dir=str(tmp_path / "models"))


def test_train_learns_saves_and_reports(tmp_path, small_mnist):
    events = []
    entry = train(tiny_job(tmp_path, epochs=2), small_mnist, on_event=events.append)
    meta = entry.meta
    assert meta["test_accuracy"] > 0.6  # far above chance (0.1) after 2 quick epochs
    assert meta["epochs"] == 2 and not meta["stopped"]
    assert meta["data"]["train_images"] + 150 == len(small_mnist.y_train)  # 10% held out
    epochs = [e.point for e in events if isinstance(e, Progressed) and e.epoch_end]
    assert [p.epoch for p in epochs] == [1, 2]
    assert None not in (epochs[0].val_loss, epochs[0].val_accuracy)
    assert epochs[0].elapsed > 0 and epochs[0].images_per_s > 0
    assert epochs[-1].progress == pytest.approx(1.0)
    assert meta["history"]["epoch"] == [asdict(p) for p in epochs]
    assert ModelRegistry(tmp_path / "models").get(entry.name).validation_curve == epochs
    saved = ModelRegistry(tmp_path / "models").get(entry.name)
    assert saved.meta["test_accuracy"] == meta["test_accuracy"]


def test_cnn_trains_too(tmp_path, small_mnist):
    entry = train(tiny_job(tmp_path, TINY_CNN), small_mnist)
    assert entry.kind == "cnn" and entry.meta["test_accuracy"] > 0.3


def test_a_default_cnn_trained_as_briefly_as_a_dense_net_reads_at_least_as_well(
    tmp_path, small_mnist
):
    """One epoch on 1,500 images: 12 steps, after which batch normalisation's moving
    statistics are still mostly their starting values (the CNN read ~11%, a constant
    guess, until they were recalibrated on the training images)."""
    read = {}
    for kind in ("ann", "cnn"):
        job = default_job(kind, epochs=1, models_dir=str(tmp_path))
        read[kind] = train(job, small_mnist).meta["test_accuracy"]
    assert read["cnn"] >= read["ann"] - 0.02 and read["cnn"] > 0.6, read


def test_should_stop_keeps_the_model_so_far(tmp_path, small_mnist):
    events = []
    entry = train(
        tiny_job(tmp_path, epochs=5, batch_size=32),
        small_mnist,
        on_event=events.append,
        should_stop=lambda: len(events) >= 3,
    )
    assert entry.meta["stopped"] and entry.meta["stopped_by"] == "user"
    assert entry.meta["epochs"] < 5
    assert entry.model_path.is_file()


def test_time_budget_stops_training(tmp_path, small_mnist):
    started = time.perf_counter()
    entry = train(tiny_job(tmp_path, TINY_CNN, epochs=500, time_budget=2.0), small_mnist)
    assert entry.meta["stopped_by"] == "time budget"
    assert entry.meta["train_seconds"] < 10 and time.perf_counter() - started < 30


def test_training_batches_show_every_image_once_an_epoch_in_a_new_order():
    x = np.arange(100, dtype=np.float32).reshape(100, 1)
    y = np.arange(100)
    batches = training_batches(x, y, batch_size=32, seed=0)
    epochs = [[b[1].numpy() for b in batches] for _ in range(2)]  # one pass = one epoch
    assert [len(b) for b in epochs[0]] == [32, 32, 32, 4]  # the last batch is partial
    first, second = (np.concatenate(e) for e in epochs)
    assert sorted(first) == sorted(second) == list(range(100))
    assert not np.array_equal(first, second) and not np.array_equal(first, y)
    assert all(np.array_equal(bx[:, 0], by) for bx, by in batches.take(4))  # pairs kept
    again = np.concatenate([b[1].numpy() for b in training_batches(x, y, 32, seed=0)])
    assert np.array_equal(first, again)  # same seed, same order


def test_one_cycle_warms_up_then_anneals_to_zero():
    rates = [one_cycle(done / 100, 0.01) for done in range(101)]
    peak = rates.index(max(rates))
    assert rates[0] == pytest.approx(0.001) and max(rates) == pytest.approx(0.01)
    assert peak == pytest.approx(WARMUP * 100, abs=1)
    assert all(
        a <= b for a, b in zip(rates[:peak], rates[1 : peak + 1], strict=True)
    )  # rises, then
    assert all(a >= b for a, b in zip(rates[peak:-1], rates[peak + 1 :], strict=True))  # falls
    assert rates[-1] == pytest.approx(0.0, abs=1e-12)


def test_one_cycle_ends_annealed_when_the_time_budget_ends_the_run(tmp_path, small_mnist):
    rates = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: rates.append(
            float(record.model.optimizer.learning_rate)
        )
    )
    model = AnnConfig(hidden_units=(64,), learning_rate=0.01, schedule="one-cycle")
    train(tiny_job(tmp_path, model, epochs=1000, time_budget=3.0), small_mnist, callbacks=[record])
    assert 0.005 < max(rates) <= 0.01  # near the peak mid-run (batches land where they land)
    assert rates[-1] < 0.002  # and the last steps of the budget are small ones


def test_impossible_settings_are_refused_before_training(tmp_path, small_mnist):
    with pytest.raises(ValueError, match="training-set size must be at least 100 and at most"):
        train(tiny_job(tmp_path, train_size=10**6), small_mnist)
    with pytest.raises(ValueError, match="batch size"):
        tiny_job(tmp_path, batch_size=0).check()


class CrashInEpoch(keras.callbacks.Callback):
    """Stands for a kill -9: the run ends with an exception in the middle of an epoch."""

    def __init__(self, epoch):
        super().__init__()
        self.crash_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._epoch == self.crash_epoch and batch == 2:
            raise KeyboardInterrupt

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1


def test_a_run_cut_short_resumes_from_its_last_whole_epoch(tmp_path, small_mnist):
    checkpoint = Checkpoint(tmp_path / "checkpoints" / "run-1-0")
    job = tiny_job(tmp_path, epochs=4, train_size=600)
    with pytest.raises(KeyboardInterrupt):
        train(job, small_mnist, checkpoint=checkpoint, callbacks=[CrashInEpoch(3)])
    assert ModelRegistry(job.models_dir).entries() == []  # nothing half-done is listed
    model, resumed = checkpoint.read()
    assert resumed.epochs == 2 and len(resumed.history["epoch"]) == 2
    events = []
    entry = train(job, small_mnist, on_event=events.append, checkpoint=checkpoint)
    epochs = [e.point.epoch for e in events if isinstance(e, Progressed) and e.epoch_end]
    assert epochs == [3, 4]  # only the epochs the crash cost, then the rest
    assert [p.epoch for p in entry.validation_curve] == [1, 2, 3, 4]
    assert entry.meta["epochs"] == 4 and entry.test_accuracy > 0.5
    assert not checkpoint.model_path.exists() and not checkpoint.progress_path.exists()


def test_a_damaged_checkpoint_is_not_resumed_from(tmp_path):
    checkpoint = Checkpoint(tmp_path / "run-1-job-0")
    checkpoint.model_path.write_bytes(b"PK\x03\x04 cut short by a crash")
    checkpoint.progress_path.write_text('{"epochs": 2')
    assert checkpoint.read() is None  # the job starts over


def test_a_nan_loss_stops_the_run_and_says_why(tmp_path, small_mnist):
    job = TrainingJob(
        AnnConfig(hidden_units=(64,), learning_rate=1000.0),
        TrainingConfig(epochs=3, batch_size=64),
        models_dir=str(tmp_path / "models"),
    )
    with pytest.raises(TrainingDiverged, match=r"loss became .* the weights blew up.*too high"):
        train(job, small_mnist)
    assert ModelRegistry(job.models_dir).entries() == []


def test_default_job_applies_overrides_to_the_right_part():
    job = default_job("cnn", epochs=3, filters=(4,), name="x", learning_rate=None)
    assert job.training.epochs == 3 and job.model.filters == (4,) and job.name == "x"
    assert job.model.learning_rate == CnnConfig().learning_rate
    assert TrainingJob.from_dict(json.loads(json.dumps(job.to_dict()))) == job
    assert [j.kind for j in quick_jobs(["cnn"])] == ["cnn"]
    assert all(j.training.time_budget for j in quick_jobs())


# --- the worker process ---------------------------------------------------------------


def test_worker_exits_when_the_server_goes_away(tmp_path):
    worker = subprocess.Popen(
        [sys.executable, "-m", "mnist_core.worker"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    worker.stdin.close()
    assert worker.wait(timeout=60) == 0
