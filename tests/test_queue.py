"""The shared training queue: its contract on both backends (the local queue and
``CeleryTrainingQueue`` on a real ``redis-server``: order, one waiting run per browser,
a rate, the teacher's caps, cancel, rights, clear), two replicas on one Redis and a Redis
restart; then the local queue with real worker processes: training, a worker killed, a
server killed and restarted."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from mnist_core import training_queue
from mnist_core.celery_queue import CeleryTrainingQueue, QueueUnavailable
from mnist_core.jobs import TrainingConfig, TrainingJob
from mnist_core.models import AnnConfig, CnnConfig
from mnist_core.protocol import checkpoint_base
from mnist_core.registry import ModelRegistry
from mnist_core.training_queue import (
    STATE_FILE,
    TYPICAL_SPEED,
    Limits,
    LocalTrainingQueue,
    NotAllowed,
    QueueRefused,
    Requester,
    job_seconds,
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
def working_queue(root):
    """The local queue with a real, warm worker process."""
    queue = LocalTrainingQueue(root, slots=1)
    queue.start_workers()
    yield queue
    queue.shutdown()


# --- the contract, on both backends (no training: fast) -----------------------------------


class IdleWorker:
    """A local worker slot that takes a run and never trains it: the local queue's rules
    without TensorFlow (the tests further down use real workers)."""

    pid = None

    def __init__(self, on_event, on_exit, threads=None):
        self.sent = []

    def start(self):
        pass

    def send(self, request):
        self.sent.append(request)

    def shutdown(self):
        pass


def flushed(url: str) -> str:
    import redis

    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return url


@pytest.fixture
def fresh_redis(redis_url):
    """The session's Redis, emptied: each test its own school."""
    return flushed(redis_url)


@pytest.fixture(params=["local", "celery"])
def queue(request, tmp_path, monkeypatch):
    """A queue of each backend, nothing training it. The local queue hands its first run
    to its (idle) worker slot; Celery's runs all wait, as they do with no worker up."""
    if request.param == "local":
        monkeypatch.setattr(training_queue, "WorkerProcess", IdleWorker)
        queue = LocalTrainingQueue(tmp_path / "models")
    else:
        queue = CeleryTrainingQueue(request.getfixturevalue("fresh_redis"), tmp_path / "models")
    yield queue
    queue.shutdown()


def in_order(queue) -> list[int]:
    """The runs not ended, in the order they train: training first, then waiting."""
    snapshot = queue.snapshot()
    return [run.id for run in snapshot.training] + [w.run.id for w in snapshot.waiting]


def status(queue, run_id: int) -> str:
    snapshot = queue.snapshot()
    runs = [*snapshot.training, *(w.run for w in snapshot.waiting), *snapshot.ended]
    return next(run.state.status for run in runs if run.id == run_id)


def test_first_come_first_served_one_waiting_run_per_browser_and_who_may_cancel(queue, tmp_path):
    first = queue.submit([job(LONG, tmp_path)], TEACHER)
    alices = queue.submit([job(QUICK, tmp_path)], ALICE)
    bobs = queue.submit([job(QUICK, tmp_path, name="bobs-ann")], BOB)
    assert in_order(queue) == [first.id, alices.id, bobs.id]
    snapshot = queue.snapshot()
    assert [w.position for w in snapshot.waiting] == list(range(1, len(snapshot.waiting) + 1))
    seconds = {base: job_seconds(base, TYPICAL_SPEED, 55_000) for base in (LONG, QUICK)}
    assert snapshot.waiting_of(bobs.id).starts_in == pytest.approx(
        seconds[LONG] + seconds[QUICK], abs=1
    )  # the same estimate on both backends
    assert status(queue, bobs.id) == "queued" and snapshot.latest_of("bob").id == bobs.id
    assert bobs.jobs[0].owner == "bob"
    with pytest.raises(QueueRefused, match="already have a training waiting"):
        queue.submit([job(QUICK, tmp_path, name="another")], BOB)
    with pytest.raises(NotAllowed, match="another browser"):
        queue.cancel(alices.id, BOB)
    with pytest.raises(NotAllowed):
        queue.clear(BOB)
    with pytest.raises(QueueRefused, match="nothing to train"):
        queue.submit([], BOB)
    assert in_order(queue) == [first.id, alices.id, bobs.id]


def test_a_waiting_run_is_cancelled_by_its_owner_or_cleared_by_the_teacher(queue, tmp_path):
    first = queue.submit([job(LONG, tmp_path)], TEACHER)
    alices = queue.submit([job(QUICK, tmp_path)], ALICE)
    bobs = queue.submit([job(QUICK, tmp_path)], BOB)
    queue.cancel(bobs.id, BOB)
    assert status(queue, bobs.id) == "cancelled"
    assert queue.snapshot().ended[0].id == bobs.id
    assert in_order(queue) == [first.id, alices.id]
    with pytest.raises(QueueRefused, match="has already ended"):
        queue.cancel(bobs.id, BOB)
    again = queue.submit([job(QUICK, tmp_path, name="bobs-second")], BOB)  # its turn now
    waiting = [w.run.id for w in queue.snapshot().waiting]
    assert queue.clear(TEACHER) == len(waiting)
    assert queue.snapshot().waiting == ()
    assert status(queue, alices.id) == status(queue, again.id) == "cancelled"


def test_one_click_one_run_and_the_same_settings_again_after_a_cancel(queue, tmp_path):
    clicked = job(QUICK, tmp_path, name="dbl-click")
    first = queue.submit([clicked], BOB)
    refusal = re.escape("a moment ago (one click starts one run)")
    with pytest.raises(QueueRefused, match=refusal):
        queue.submit([clicked], BOB)  # the second click of a double click
    alices = queue.submit([clicked], ALICE)  # another browser's click is its own
    queue.cancel(first.id, BOB)
    again = queue.submit([clicked], BOB)  # the same settings again after a Cancel: meant
    assert {alices.id, again.id} <= set(in_order(queue))


def test_students_are_held_to_the_teachers_caps_and_a_rate(queue, tmp_path):
    caps = Limits(starts_per_minute=2, max_seconds=30, max_train_size=500)
    queue.set_limits(caps, TEACHER)
    with pytest.raises(NotAllowed):
        queue.set_limits(Limits(), ALICE)
    assert queue.limits == caps
    capped, notes = queue.limits.clamp(job(QUICK, tmp_path, training=TrainingConfig(epochs=3)))
    assert capped.training.time_budget == 30 and capped.training.train_size == 500
    assert notes == [
        "time budget set to 30 s, the teacher's limit",
        "training images set to 500, the teacher's limit",
    ]
    with pytest.raises(ValueError, match="larger than the training set of 500 images"):
        queue.submit([job(QUICK, tmp_path, training=TrainingConfig(batch_size=1024))], BOB)
    first = queue.submit([job(QUICK, tmp_path)], ALICE)
    assert first.jobs[0].training.time_budget == 30
    queue.cancel(first.id, ALICE)
    queue.submit([job(QUICK, tmp_path)], ALICE)
    with pytest.raises(QueueRefused, match="2 trainings started from this browser"):
        queue.submit([job(QUICK, tmp_path, name="a-third")], ALICE)
    teachers = queue.submit([job(QUICK, tmp_path)], TEACHER)
    assert teachers.jobs[0].training.time_budget is None  # not capped


# --- Celery's queue: replicas, a Redis restart, bad URLs ----------------------------------


def test_two_replicas_on_one_redis_keep_one_order_and_one_set_of_limits(fresh_redis, tmp_path):
    one = CeleryTrainingQueue(fresh_redis, tmp_path)
    two = CeleryTrainingQueue(fresh_redis, tmp_path)
    two.set_limits(Limits(starts_per_minute=2, max_train_size=500), TEACHER)
    assert one.limits == two.limits == Limits(starts_per_minute=2, max_train_size=500)
    assert one.submit([job(QUICK, tmp_path)], BOB).jobs[0].training.train_size == 300
    alices = one.submit([job(QUICK, tmp_path)], ALICE)
    with pytest.raises(QueueRefused, match="already have a training waiting"):
        two.submit([job(QUICK, tmp_path, name="elsewhere")], ALICE)  # same browser, replica 2
    two.cancel(alices.id, TEACHER)  # the teacher on replica 2, a run queued on replica 1
    assert status(one, alices.id) == "cancelled"
    two.submit([job(QUICK, tmp_path, name="second")], ALICE)
    with pytest.raises(QueueRefused, match="2 trainings started from this browser"):
        one.submit([job(QUICK, tmp_path, name="third")], ALICE)  # counted once for both

    # Thirty browsers press Start at once, twice each, half on each replica.
    owners = [Requester(f"student-{n}") for n in range(30)]
    barrier = threading.Barrier(12)

    def press(n: int):
        barrier.wait()
        replica, requester = (one, two)[n % 2], owners[n // 2]
        try:
            return replica.submit([job(QUICK, tmp_path, name=f"run-{n}")], requester).id
        except QueueRefused as refused:
            assert "already have a training waiting" in str(refused)
            return None

    with ThreadPoolExecutor(12) as pool:
        accepted = [run_id for run_id in pool.map(press, range(60)) if run_id is not None]
    assert len(accepted) == 30  # one waiting run per browser, whichever replica it used
    order = in_order(one)
    assert order == in_order(two) == sorted(order)  # one order, by the id Redis handed out
    assert set(accepted) <= set(order)
    owners_waiting = [w.run.owner for w in one.snapshot().waiting]
    assert len(owners_waiting) == len(set(owners_waiting))


def test_queued_runs_and_the_limits_outlive_a_redis_crash(redis_server, tmp_path):
    url = flushed(redis_server.url)
    queue = CeleryTrainingQueue(url, tmp_path)
    queue.set_limits(Limits(max_seconds=60), TEACHER)
    runs = [queue.submit([job(QUICK, tmp_path)], who) for who in (ALICE, BOB, TEACHER)]
    queue.cancel(runs[1].id, BOB)
    redis_server.stop(signal.SIGKILL)  # no shutdown: only the append-only file is left
    try:
        began = time.monotonic()
        with pytest.raises(QueueUnavailable, match=re.escape(url)):
            queue.snapshot()
        with pytest.raises(QueueUnavailable, match=re.escape(url)):
            CeleryTrainingQueue(url, tmp_path)
        assert time.monotonic() - began < 5  # said at once, not hung
        assert url in queue.storage_error
    finally:
        redis_server.start()
    restarted = CeleryTrainingQueue(url, tmp_path)  # a replica restarted as well
    assert in_order(restarted) == in_order(queue) == [runs[0].id, runs[2].id]
    assert status(restarted, runs[1].id) == "cancelled"
    assert restarted.limits == Limits(max_seconds=60)
    assert queue.storage_error is None
    with pytest.raises(QueueRefused, match="already have a training waiting"):
        restarted.submit([job(QUICK, tmp_path, name="again")], ALICE)
    assert restarted.submit([job(QUICK, tmp_path)], BOB).id > runs[2].id  # no id reused


@pytest.mark.parametrize(
    "url, says",
    [
        ("http://127.0.0.1:6379/0", "(the scheme http://)"),
        ("127.0.0.1:6379", "is not a Redis URL"),
        ("redis://127.0.0.1:port/0", "the port is not a number"),
        ("redis://127.0.0.1:6379/zero", "the database 'zero' is not a number"),
        ("redis:///0", "names no host"),
    ],
)
def test_a_wrong_url_is_refused_naming_it(url, says, tmp_path):
    with pytest.raises(ValueError, match=re.escape(says)) as refused:
        CeleryTrainingQueue(url, tmp_path)
    assert url in str(refused.value)


def test_a_redis_that_does_not_answer_is_named_without_its_password(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there
    began = time.monotonic()
    with pytest.raises(QueueUnavailable, match="does not answer") as unavailable:
        CeleryTrainingQueue(f"redis://:s3cret@127.0.0.1:{port}/0", tmp_path)
    assert time.monotonic() - began < 5
    assert f"redis://:***@127.0.0.1:{port}/0" in str(unavailable.value)
    assert "s3cret" not in str(unavailable.value)


# --- the local queue with real worker processes --------------------------------------------


def start_long(queue, root, requester=ALICE):
    run = queue.submit([job(LONG, root)], requester)
    wait_for(lambda: run.state.batches and run.state.batches[0])
    return run


def test_runs_wait_their_turn_and_only_their_owner_or_the_teacher_stops_them(working_queue, root):
    queue = working_queue
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


def test_one_click_one_run_and_one_wait_however_often_the_queue_is_read(working_queue, root):
    queue = working_queue
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


def test_a_killed_worker_fails_its_run_saying_why_and_the_next_gets_a_fresh_one(
    working_queue, root
):
    queue = working_queue
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


def test_a_sweep_is_one_run_and_a_nan_loss_fails_it_saying_why(working_queue, root):
    queue = working_queue
    diverging = job(QUICK, root, model=AnnConfig(hidden_units=(32,), learning_rate=1000.0))
    run = queue.submit([job(QUICK, root, experiment="x"), diverging], ALICE)
    state = wait_ended(run)
    assert state.status == "failed" and "the weights blew up" in state.error
    assert len(state.saved) == 1  # the model before it is kept


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
