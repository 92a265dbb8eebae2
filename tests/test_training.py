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
from mnist_core.training import WARMUP, one_cycle, train, training_batches
from mnist_core.worker import TrainingBusy, TrainingService

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


def test_default_job_applies_overrides_to_the_right_part():
    job = default_job("cnn", epochs=3, filters=(4,), name="x", learning_rate=None)
    assert job.training.epochs == 3 and job.model.filters == (4,) and job.name == "x"
    assert job.model.learning_rate == CnnConfig().learning_rate
    assert TrainingJob.from_dict(json.loads(json.dumps(job.to_dict()))) == job
    assert [j.kind for j in quick_jobs(["cnn"])] == ["cnn"]
    assert all(j.training.time_budget for j in quick_jobs())


# --- the worker process, as the app uses it ------------------------------------------------


@pytest.fixture
def service():
    service = TrainingService()
    yield service
    service.shutdown()


def wait(run, timeout=120):
    deadline = time.monotonic() + timeout
    while run.active and time.monotonic() < deadline:
        time.sleep(0.2)
    return run.state


def test_service_trains_two_jobs_and_reports_progress(service, tmp_path):
    jobs = [
        TrainingJob(
            TINY_ANN,
            TrainingConfig(epochs=2, train_size=500),
            data_path="sample",
            models_dir=str(tmp_path),
        ),
        TrainingJob(
            TINY_CNN,
            TrainingConfig(epochs=1, train_size=500),
            data_path="sample",
            models_dir=str(tmp_path),
            name="my-cnn",
        ),
    ]
    run = service.start(jobs)
    with pytest.raises(TrainingBusy, match=r"busy: (ANN|CNN)( 'my-cnn')? is training, \d+% done"):
        service.start(jobs)
    state = wait(run)
    assert state.status == "finished", state.error
    assert [m.kind for m in state.saved] == ["ann", "cnn"]
    assert state.saved[1].name == "my-cnn"
    assert [len(e) for e in state.epochs] == [2, 1]
    assert all(state.batches)
    assert state.overall_progress == 1.0
    assert {e.name for e in ModelRegistry(tmp_path).entries()} == {m.name for m in state.saved}
    again = service.start(jobs[:1])  # not busy any more
    assert wait(again).status == "finished"


def start_long_run(service, tmp_path):
    """A 50-epoch run in the worker, returned once its first batches are reported."""
    job = TrainingJob(
        TINY_CNN,
        TrainingConfig(epochs=50, batch_size=16),
        data_path="sample",
        models_dir=str(tmp_path),
    )
    run = service.start([job])
    while not run.state.batches[0]:
        time.sleep(0.1)
    return run


def test_stop_ends_after_the_current_batch_and_saves(service, tmp_path):
    run = start_long_run(service, tmp_path)
    run.stop()
    state = wait(run, timeout=60)
    assert state.status == "stopped"
    assert state.saved[0].stopped and state.saved[0].epochs < 50


def test_errors_in_the_worker_are_shown_not_swallowed(service, tmp_path):
    job = TrainingJob(TINY_ANN, TrainingConfig(epochs=1), data_path=str(tmp_path / "missing.npz"))
    state = wait(service.start([job]))
    assert state.status == "failed"
    assert "missing.npz: no such file" in state.error


def test_a_dead_worker_is_reported_and_replaced(service, tmp_path):
    run = start_long_run(service, tmp_path)
    service._process.kill()
    state = wait(run, timeout=30)
    assert state.status == "failed" and "training process died" in state.error
    quick = TrainingJob(
        TINY_ANN,
        TrainingConfig(epochs=1, train_size=200),
        data_path="sample",
        models_dir=str(tmp_path),
    )
    assert wait(service.start([quick])).status == "finished"


def test_worker_exits_when_the_server_goes_away(tmp_path):
    worker = subprocess.Popen(
        [sys.executable, "-m", "mnist_core.worker"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    worker.stdin.close()
    assert worker.wait(timeout=60) == 0
