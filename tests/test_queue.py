"""The shared training queue with real worker processes: order, fairness, who may do what,
a worker killed, a server killed and restarted."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from mnist_core.jobs import TrainingConfig, TrainingJob
from mnist_core.models import AnnConfig, CnnConfig
from mnist_core.protocol import checkpoint_base
from mnist_core.registry import ModelRegistry
from mnist_core.training_queue import (
    STATE_FILE,
    Limits,
    LocalTrainingQueue,
    NotAllowed,
    QueueRefused,
    Requester,
)

ROOT = Path(__file__).resolve().parents[1]
ALICE, BOB = Requester("alice"), Requester("bob")
TEACHER = Requester("teacher", teacher=True)
QUICK = TrainingJob(AnnConfig(hidden_units=(32,)), TrainingConfig(epochs=1, train_size=300))
LONG = TrainingJob(
    CnnConfig(filters=(8, 16), dense_units=32, batch_norm=False),
    TrainingConfig(epochs=50, batch_size=16),
)


def job(base: TrainingJob, root: Path, **changes) -> TrainingJob:
    return replace(base, data_path="sample", models_dir=str(root), **changes)


def wait_for(condition, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def wait_ended(run, timeout=120):
    wait_for(lambda: run.state.ended, timeout)
    return run.state


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("queue-models")


@pytest.fixture(scope="module")
def queue(root):
    queue = LocalTrainingQueue(root, slots=1)
    queue.start_workers()
    yield queue
    queue.shutdown()


def start_long(queue, root, requester=ALICE):
    run = queue.submit([job(LONG, root)], requester)
    wait_for(lambda: run.state.batches and run.state.batches[0])
    return run


def test_runs_wait_their_turn_and_only_their_owner_or_the_teacher_stops_them(queue, root):
    long = start_long(queue, root)
    mine = queue.submit([job(QUICK, root, name="bobs-ann")], BOB)
    waiting = queue.snapshot().waiting
    assert [(w.run.id, w.position) for w in waiting] == [(mine.id, 1)]
    assert waiting[0].starts_in > 0 and mine.state.status == "queued"
    with pytest.raises(QueueRefused, match="already have a training waiting"):
        queue.submit([job(QUICK, root)], BOB)
    with pytest.raises(NotAllowed, match="another browser"):
        queue.cancel(long.id, BOB)
    with pytest.raises(NotAllowed):
        queue.clear(BOB)
    queue.cancel(long.id, ALICE)
    assert wait_ended(long).status == "stopped"
    assert long.state.saved[0].stopped
    state = wait_ended(mine)
    assert state.status == "finished", state.error
    entry = ModelRegistry(root).get("bobs-ann")
    assert entry.meta["owner"] == "bob"
    assert queue.snapshot().latest_of("bob") is mine


def test_a_waiting_run_is_cancelled_by_its_owner_or_cleared_by_the_teacher(queue, root):
    long = start_long(queue, root)
    alices = queue.submit([job(QUICK, root)], ALICE)
    bobs = queue.submit([job(QUICK, root)], BOB)
    queue.cancel(bobs.id, BOB)
    assert bobs.state.status == "cancelled"
    assert [w.run.id for w in queue.snapshot().waiting] == [alices.id]
    assert queue.clear(TEACHER) == 1
    assert alices.state.status == "cancelled"
    queue.cancel(long.id, TEACHER)
    assert wait_ended(long).status == "stopped"


def test_one_click_one_run_and_one_wait_however_often_the_queue_is_read(queue, root):
    long = start_long(queue, root, TEACHER)  # not counted in a student's starts a minute
    clicked = job(QUICK, root, name="dbl-click")
    first = queue.submit([clicked], BOB)
    with pytest.raises(QueueRefused, match="a moment ago \\(one click starts one run\\)"):
        queue.submit([clicked], BOB)  # the second click of a double click
    looks = []  # the page's pollers, the toast, the teacher's panel, each at its moment
    for _ in range(5):
        looks.append((time.time(), queue.snapshot().waiting_of(first.id).starts_in))
        time.sleep(0.5)
    starts = [now + wait for now, wait in looks]
    assert max(starts) - min(starts) < 0.2, looks  # counts down with the clock, no jumps
    queue.cancel(first.id, BOB)
    again = queue.submit([clicked], BOB)  # the same settings again after a Cancel: meant
    queue.cancel(again.id, BOB)
    queue.cancel(long.id, TEACHER)
    assert wait_ended(long).status == "stopped"


def test_a_killed_worker_fails_its_run_saying_why_and_the_next_gets_a_fresh_one(queue, root):
    run = start_long(queue, root)
    pid = queue.worker_pids[0]
    os.kill(pid, signal.SIGKILL)
    state = wait_ended(run, timeout=30)
    assert state.status == "failed"
    assert "killed" in state.error and "SIGKILL" in state.error
    assert not list((root / ".checkpoints").glob(f"run-{run.id}-*"))
    after = queue.submit([job(QUICK, root)], ALICE)
    assert wait_ended(after).status == "finished"
    assert queue.worker_pids[0] != pid


def test_a_sweep_is_one_run_and_a_nan_loss_fails_it_saying_why(queue, root):
    diverging = job(QUICK, root, model=AnnConfig(hidden_units=(32,), learning_rate=1000.0))
    run = queue.submit([job(QUICK, root, experiment="x"), diverging], ALICE)
    state = wait_ended(run)
    assert state.status == "failed" and "the weights blew up" in state.error
    assert len(state.saved) == 1  # the model before it is kept


def test_students_are_held_to_the_teachers_caps_and_a_rate(root):
    queue = LocalTrainingQueue(root / "capped", limits=Limits(starts_per_minute=2))
    queue.set_limits(Limits(starts_per_minute=2, max_seconds=30, max_train_size=500), TEACHER)
    with pytest.raises(NotAllowed):
        queue.set_limits(Limits(), ALICE)
    capped, notes = queue.limits.clamp(job(QUICK, root, training=TrainingConfig(epochs=3)))
    assert capped.training.time_budget == 30 and capped.training.train_size == 500
    assert notes == [
        "time budget set to 30 s, the teacher's limit",
        "training images set to 500, the teacher's limit",
    ]
    with pytest.raises(ValueError, match="larger than the training set of 500 images"):
        queue.submit([job(QUICK, root, training=TrainingConfig(batch_size=1024))], BOB)
    try:
        first = queue.submit([job(QUICK, root)], ALICE)
        assert first.jobs[0].training.time_budget == 30
        queue.cancel(first.id, ALICE)
        queue.submit([job(QUICK, root)], ALICE)
        with pytest.raises(QueueRefused, match="2 trainings started from this browser"):
            queue.submit([job(QUICK, root, name="a-third")], ALICE)
        teachers = queue.submit([job(QUICK, root)], TEACHER)
        assert teachers.jobs[0].training.time_budget is None  # not capped
    finally:
        queue.shutdown()


SERVER = """
import sys, time
from dataclasses import replace
from mnist_core.jobs import TrainingConfig, TrainingJob
from mnist_core.models import AnnConfig
from mnist_core.training_queue import LocalTrainingQueue, Requester
root = sys.argv[1]
queue = LocalTrainingQueue(root)
job = TrainingJob(AnnConfig(hidden_units=(64,)), TrainingConfig(epochs=8, batch_size=16,
    train_size=2000), name="alices", data_path="sample", models_dir=root)
run = queue.submit([job], Requester("alice"))
while len(run.state.epochs[0]) < 2:
    time.sleep(0.02)
print(queue.worker_pids[0], flush=True)
time.sleep(120)
"""


def test_after_a_server_is_killed_its_run_resumes_from_the_last_epoch(tmp_path):
    server = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SERVER), str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        worker = int(server.stdout.readline())
    finally:
        server.kill()  # SIGKILL: no clean-up of any kind
        server.wait()
    wait_for(lambda: not Path(f"/proc/{worker}").exists(), timeout=30)  # it saw stdin close
    registry = ModelRegistry(tmp_path)
    assert registry.entries() == []  # nothing half-written is listed

    queue = LocalTrainingQueue(tmp_path)
    try:
        (run,) = queue.snapshot().interrupted
        done = queue.resumable_epochs(run)
        assert run.owner == "alice" and done >= 1  # the crash cost at most the epoch under way
        with pytest.raises(NotAllowed):
            queue.resume(run.id, BOB)
        resumed = queue.resume(run.id, ALICE)
        state = wait_ended(resumed)
        assert state.status == "finished", state.error
        assert (
            "resumed after epoch" in " ".join(m for m in [state.message] if m)
            or state.epochs[0][0].epoch > 1
        )
        entry = registry.get("alices")
        assert entry.meta["epochs"] == 8
        assert [p.epoch for p in entry.validation_curve] == list(range(1, 9))
        assert queue.snapshot().interrupted == ()
        assert json.loads((tmp_path / STATE_FILE).read_text())["runs"] == []
    finally:
        queue.shutdown()


def test_an_interrupted_run_can_be_discarded_with_its_checkpoint(tmp_path):
    run = {"id": 7, "owner": "alice", "submitted": 0.0, "first": 0}
    run["jobs"] = [job(QUICK, tmp_path).to_dict()]
    (tmp_path / STATE_FILE).write_text(json.dumps({"next_id": 8, "runs": [run]}))
    checkpoint = checkpoint_base(tmp_path, 7, 0).with_suffix(".json")
    checkpoint.parent.mkdir()
    checkpoint.write_text(json.dumps({"epochs": 3}))
    queue = LocalTrainingQueue(tmp_path)
    (interrupted,) = queue.snapshot().interrupted
    assert queue.resumable_epochs(interrupted) == 3
    with pytest.raises(NotAllowed):
        queue.discard(7, BOB)
    queue.discard(7, TEACHER)
    assert not checkpoint.exists() and queue.snapshot().interrupted == ()
    assert json.loads((tmp_path / STATE_FILE).read_text()) == {"next_id": 8, "runs": []}


def test_a_models_folder_that_cannot_be_written_fails_the_run_clearly(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    queue = LocalTrainingQueue(blocked / "models")
    try:
        run = queue.submit([job(QUICK, blocked / "models")], ALICE)
        assert "the queue cannot be saved" in queue.storage_error
        state = wait_ended(run)
        assert state.status == "failed"
        assert state.error.startswith("The model could not be saved")
        assert "Not a directory" in state.error
        assert blocked.read_text() == "not a folder"
    finally:
        queue.shutdown()
