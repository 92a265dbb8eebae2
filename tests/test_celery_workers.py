"""The school's queue with real engines: a Redis of its own and two real Celery workers
(``python -m mnist_core worker``) training tiny jobs for two replicas (two
``CeleryTrainingQueue``s); a run followed from the command line; Stop from the other
replica and through a Redis crash; a worker killed with ``kill -9`` and one stopped with
Ctrl-C, their runs resumed on the other from the last epoch checkpoint; workers refused
with why."""

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bench.school import CeleryWorker, RedisServer
from mnist_core.celery_queue import PREFIX, CeleryTrainingQueue, connect, key_of
from mnist_core.celery_worker import TICK, WorkerSettings, _on_this_worker
from mnist_core.jobs import TrainingConfig, TrainingJob
from mnist_core.models import AnnConfig
from mnist_core.protocol import StatusChanged, checkpoint_base
from mnist_core.registry import ModelRegistry
from mnist_core.training_queue import Requester

ROOT = Path(__file__).resolve().parents[1]
ALICE, BOB = Requester("alice"), Requester("bob")
TEACHER = Requester("teacher", teacher=True)
# Epochs of a few seconds on the offline sample: long enough to kill a worker in one.
EPOCHS = TrainingJob(AnnConfig(hidden_units=(64,)), TrainingConfig(epochs=40, batch_size=8))


def wait_for(condition, timeout=120.0, every=0.1):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)
    return value


@pytest.fixture(scope="module")
def school(tmp_path_factory):
    """A Redis, two workers on one models folder, two replicas: what a school runs."""
    import shutil

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    base = tmp_path_factory.mktemp("school")
    redis_server = RedisServer(base)
    redis_server.start()
    models = base / "models"
    replicas = [CeleryTrainingQueue(redis_server.url, models) for _ in range(2)]
    workers = [CeleryWorker(redis_server.url, models, base / f"worker-{n}.log") for n in (1, 2)]
    client = connect(redis_server.url)
    live = key_of(PREFIX, "workers")
    wait_for(lambda: all(client.zscore(live, w.node) for w in workers), timeout=60)
    yield redis_server, models, replicas, workers
    for worker in workers:
        worker.stop()
    for replica in replicas:
        replica.shutdown()
    redis_server.stop()


def a_job(models: Path, **changes) -> TrainingJob:
    return replace(EPOCHS, data_path="sample", models_dir=str(models), **changes)


def run_of(replica: CeleryTrainingQueue, run_id: int):
    snapshot = replica.snapshot()
    runs = [*snapshot.training, *(w.run for w in snapshot.waiting), *snapshot.ended]
    return next(run for run in runs if run.id == run_id)


def test_a_cli_run_trains_on_a_worker_and_every_replica_sees_it_whole(school):
    redis_server, models, replicas, _ = school
    quick = ["--model", "ann", "--epochs", "2", "--train-size", "300", "--data", "sample"]
    command = [sys.executable, "-m", "mnist_core", "train", *quick, "--name", "from-cli"]
    done = subprocess.run(
        [*command, "--queue", redis_server.url, "--models-dir", str(models)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["name"] == "from-cli" and result["epochs"] == 2.0
    assert "queued as run" in done.stderr and "epoch 2" in done.stderr  # the progress bar
    assert ModelRegistry(models).get("from-cli").meta["data"]["train_images"] == 300
    for replica in replicas:  # a late watcher: the curves from the run's start
        run = replica.snapshot().ended[0]
        assert run.state.status == "finished" and run.state.saved[0].name == "from-cli"
        assert [point.epoch for point in run.state.epochs[0]] == [1, 2]


def test_stop_on_the_other_replica_through_a_redis_crash(school):
    redis_server, models, (first, second), _ = school
    run = first.submit([a_job(models, name="stopped")], ALICE)
    wait_for(lambda: run_of(second, run.id).state.batches[0])
    redis_server.stop(signal.SIGKILL)  # training goes on; its events wait for Redis
    time.sleep(2 * TICK)
    redis_server.start()
    wait_for(lambda: len(run_of(second, run.id).state.epochs[0]) >= 2)  # went on meanwhile
    second.cancel(run.id, TEACHER)  # the teacher's Stop, on the other replica
    state = wait_for(lambda: (s := run_of(first, run.id).state).ended and s, timeout=30)
    assert state.status == "stopped" and state.saved[0].name == "stopped"
    assert ModelRegistry(models).get("stopped").meta["stopped"]


def test_a_killed_worker_s_run_resumes_on_the_other_and_ctrl_c_hands_back(school):
    _, models, (first, second), workers = school
    client = connect(school[0].url)
    run = first.submit([a_job(models, name="survivor")], BOB)
    progress = checkpoint_base(models, run.id, 0).with_suffix(".json")
    wait_for(lambda: progress.exists() and json.loads(progress.read_text())["epochs"] >= 2)

    def trained_by() -> CeleryWorker | None:
        worker = client.hget(key_of(PREFIX, "run", run.id), "worker") or ""
        return next((w for w in workers if worker.startswith(w.node + "/")), None)

    killed = trained_by()
    saved_epochs = json.loads(progress.read_text())["epochs"]
    killed.signal(signal.SIGKILL)  # the whole worker: a machine losing power
    began = time.monotonic()
    workers.append(CeleryWorker(school[0].url, models, models.parent / "worker-3.log"))
    resumed_by = wait_for(lambda: (w := trained_by()) not in (None, killed) and w, 90)
    assert time.monotonic() - began < 60  # by itself, within a minute
    # Ctrl-C now: the run goes back to the queue at once, resumed by the third worker.
    wait_for(lambda: run_of(second, run.id).state.status == "training")
    resumed_by.signal(signal.SIGINT)
    assert resumed_by.process.wait(timeout=60) == 0
    wait_for(lambda: trained_by() not in (None, killed, resumed_by))
    wait_for(lambda: len(run_of(second, run.id).state.epochs[0]) > saved_epochs + 1)
    second.cancel(run.id, BOB)
    state = wait_for(lambda: (s := run_of(second, run.id).state).ended and s, timeout=60)
    assert state.status == "stopped" and state.saved[0].name == "survivor"
    said = [event.message for _, event in second.events(run.id) if isinstance(event, StatusChanged)]
    resumed_after = [int(m.rsplit(" ", 1)[1]) for m in said if "resumed after epoch" in m]
    assert len(resumed_after) == 2  # once after the kill, once after the Ctrl-C
    assert resumed_after[0] >= saved_epochs  # at most the epoch under way was lost


def test_a_worker_with_another_models_folder_or_keras_is_refused_saying_why(school, tmp_path):
    redis_server = school[0]
    command = [sys.executable, "-m", "mnist_core", "worker", "--queue", redis_server.url]
    refused = subprocess.run(
        [*command, "--models-dir", str(tmp_path / "elsewhere")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "is not the one the queue's other servers and workers share" in refused.stderr
    client = connect(redis_server.url)
    engine = key_of(PREFIX, "engine")
    keras = client.hget(engine, "keras")
    client.hset(engine, "keras", "2.15.0")
    try:
        refused = subprocess.run(
            [*command, "--models-dir", str(school[1])],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        client.hset(engine, "keras", keras)
    assert refused.returncode == 2
    assert f"keras {keras} here, 2.15.0 on the queue" in refused.stderr


def test_a_run_in_another_job_format_is_refused_naming_it():
    settings = WorkerSettings("redis://127.0.0.1:1/0", PREFIX, 1, "node")
    with pytest.raises(ValueError, match="job format 0"):
        _on_this_worker({"schema": "0", "jobs": "[]"}, settings)
