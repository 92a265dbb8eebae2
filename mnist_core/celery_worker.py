"""The school's training workers: ``python -m mnist_core worker --queue URL [--slots N]``.

A Celery worker (``celery_queue.celery_app``) whose ``slots`` processes each import
TensorFlow once, at start-up, and train one run at a time. The replicas send one message
per queued run; the message says only "take the next run": the process that gets it takes
the first run of the ``waiting`` set in Redis (one script, so two never take the same), so
the order is the queue's, first come first served, whatever order Celery delivers in, and a
run cancelled meanwhile simply is not there to take.

While a run trains, its process writes every event to the run's progress stream in Redis
(every replica's watchers read it, a late one from the start) together with the run's
status in one script, refreshes the run's heartbeat, and reads the run's Stop flag every
``STOP_READ_EVERY`` seconds. Each epoch is checkpointed in the shared models folder.

What can go wrong, and what happens:

- A worker killed outright (``kill -9``, a machine losing power): its runs' heartbeats
  stop; any other worker, checking every ``TICK`` seconds, puts a run silent for
  ``celery_queue.STALE_AFTER`` seconds back at its place in the queue, and the next free
  process resumes it from its last epoch checkpoint. Nobody presses anything.
- A worker stopped with Ctrl-C (Celery's warm shutdown) or by its service manager: its
  runs are handed back at once, after the batch under way, and resume elsewhere from their
  last epoch checkpoint.
- Redis lost mid-run: training goes on; events wait in memory and are written when Redis
  answers again (the end of a run waits for it), so nothing is lost.
- A run queued by another version of the app (its job format): failed, saying so.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path

from .celery_queue import (
    CELERY_QUEUE,
    ENDED_EXPIRES,
    PROGRESS_KEPT,
    SCHEMA,
    STALE_AFTER,
    TASK_NAME,
    QueueUnavailable,
    celery_app,
    connect,
    key_of,
    shared_folder_problem,
    shown_url,
)
from .jobs import TrainingJob
from .protocol import (
    Event,
    ModelSaved,
    RunFailed,
    RunFinished,
    RunState,
    TrainRequest,
    encode_event,
    remove_checkpoints,
)
from .training_queue import ENDED_KEPT
from .worker import WORKER_NICENESS, HandedBack, train_request, warm_up

HEARTBEAT_EVERY = 5.0  # seconds between a training run's "still alive"
STOP_READ_EVERY = 0.5  # seconds between two reads of a run's Stop flag
TICK = 5.0  # seconds between a worker's rounds: say it lives, return silent runs, top up
HANDED_BACK = "back in the queue: its training worker stopped; it goes on from its last epoch"

# Take the first waiting run: ARGV prefix, the process's name.
TAKE_SCRIPT = """
local p = ARGV[1]
local now = tonumber(redis.call('TIME')[1])
while true do
  local popped = redis.call('ZPOPMIN', p .. ':waiting')
  if #popped == 0 then return false end
  local id = popped[1]
  local key = p .. ':run:' .. id
  if redis.call('HGET', key, 'status') == 'queued' then
    redis.call('HSET', key, 'status', 'starting', 'worker', ARGV[2],
               'message', 'starting on a training worker')
    redis.call('ZADD', p .. ':training', id, id)
    redis.call('ZADD', p .. ':alive', now, id)
    redis.call('SREM', p .. ':waiting_of:' .. redis.call('HGET', key, 'owner'), id)
    return redis.call('HGETALL', key)
  end
end
"""

# Events and the state after them, if the run is still this process's: ARGV prefix, id,
# process, status, message, error, first, ended (0/1), speed kind, speed, events...
REPORT_SCRIPT = f"""
local p, id = ARGV[1], ARGV[2]
local key = p .. ':run:' .. id
if redis.call('HGET', key, 'worker') ~= ARGV[3] then return 0 end
local stream = p .. ':progress:' .. id
for i = 11, #ARGV do
  redis.call('XADD', stream, 'MAXLEN', '~', {PROGRESS_KEPT}, '*', 'event', ARGV[i])
end
redis.call('HSET', key, 'status', ARGV[4], 'message', ARGV[5], 'error', ARGV[6],
           'first', ARGV[7])
if ARGV[9] ~= '' then redis.call('HSET', p .. ':speed', ARGV[9], ARGV[10]) end
if ARGV[8] == '1' then
  redis.call('ZREM', p .. ':training', id)
  redis.call('ZREM', p .. ':alive', id)
  redis.call('HDEL', key, 'worker')
  redis.call('LPUSH', p .. ':ended', id)
  redis.call('LTRIM', p .. ':ended', 0, {ENDED_KEPT - 1})
  redis.call('EXPIRE', key, {ENDED_EXPIRES})
  redis.call('EXPIRE', stream, {ENDED_EXPIRES})
  redis.call('DEL', p .. ':stop:' .. id, p .. ':handback:' .. id)
end
return 1
"""

# "Still alive", if the run is still this process's: ARGV prefix, id, process.
BEAT_SCRIPT = """
local key = ARGV[1] .. ':run:' .. ARGV[2]
if redis.call('HGET', key, 'worker') ~= ARGV[3] then return 0 end
redis.call('ZADD', ARGV[1] .. ':alive', tonumber(redis.call('TIME')[1]), ARGV[2])
return 1
"""

# Back to its place in the queue: ARGV prefix, message, then the ids; only those training.
REQUEUE_SCRIPT = """
local p = ARGV[1]
local back = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  redis.call('ZREM', p .. ':alive', id)
  redis.call('DEL', p .. ':handback:' .. id)
  if redis.call('ZREM', p .. ':training', id) == 1 then
    local key = p .. ':run:' .. id
    redis.call('HSET', key, 'status', 'queued', 'message', ARGV[2])
    redis.call('HDEL', key, 'worker')
    redis.call('ZADD', p .. ':waiting', id, id)
    redis.call('SADD', p .. ':waiting_of:' .. redis.call('HGET', key, 'owner'), id)
    back[#back + 1] = id
  end
end
return back
"""


@dataclass(frozen=True)
class WorkerSettings:
    """What every process of one worker knows (set before Celery forks them)."""

    url: str
    prefix: str
    slots: int
    node: str  # the worker's name: unique on the queue
    models_dir: str | None = None  # where this worker mounts the shared models folder
    drawings_dir: str | None = None
    data: str | None = None  # this worker's MNIST, if not where the replica found it


class RunReporter:
    """One run as the process training it sees it: its events into Redis with its state,
    its heartbeat, its Stop and hand-back flags. Events Redis could not take wait in
    ``pending`` for the next write; the run's last one waits for Redis to answer."""

    def __init__(self, client, prefix: str, run_id: int, me: str, jobs, first: int):
        self.client, self.prefix, self.run_id, self.me = client, prefix, run_id, me
        self.state = RunState.begin(tuple(jobs))
        self.first = first
        self.pending: list[str] = []
        self.speed = ("", "")
        self.abandoned = False  # the run is no longer this process's (put back meanwhile)
        self.handed_back = False
        self._stop = False
        self._read_at = 0.0
        self._lock = threading.Lock()
        self._report = client.register_script(REPORT_SCRIPT)
        self._beat = client.register_script(BEAT_SCRIPT)
        self._beating = threading.Event()

    def send(self, event: Event) -> None:
        with self._lock:
            self.state = self.state.apply(event)
            if isinstance(event, ModelSaved):
                self.first = event.index + 1
                if self.state.images_per_s:
                    self.speed = (self.state.jobs[event.index].kind, str(self.state.images_per_s))
            self.pending.append(encode_event(self.run_id, event))
            final = isinstance(event, RunFinished | RunFailed)
        while not self.flush() and final:
            time.sleep(1.0)  # Redis is away: the run's end is written when it is back

    def flush(self) -> bool:
        """Write the pending events; whether Redis took them."""
        with self._lock:
            state, pending = self.state, list(self.pending)
            ended = state.ended
            args = [self.prefix, self.run_id, self.me, state.status, state.message]
            args += [state.error or "", self.first, int(ended), *self.speed, *pending]
            try:
                if not self._report(args=args):
                    self.abandoned = True
            except QUEUE_ERRORS:
                return False
            self.pending.clear()
            return True

    def should_stop(self) -> bool:
        """Whether Stop was pressed; ``HandedBack`` if the run must go back to the queue."""
        now = time.monotonic()
        if now - self._read_at >= STOP_READ_EVERY:
            self._read_at = now
            stop, handback = (
                key_of(self.prefix, flag, self.run_id) for flag in ("stop", "handback")
            )
            with contextlib.suppress(QUEUE_ERRORS):  # Redis away: the flags as last read
                self._stop, self.handed_back = (bool(v) for v in self.client.mget(stop, handback))
        if self.handed_back or self.abandoned:
            raise HandedBack(self.run_id)
        return self._stop

    def beat_while_training(self) -> threading.Thread:
        """Say "still alive" every ``HEARTBEAT_EVERY`` seconds (and write waiting events)
        until ``stop_beating``."""

        def beat() -> None:
            while not self._beating.wait(HEARTBEAT_EVERY):
                try:
                    if not self._beat(args=[self.prefix, self.run_id, self.me]):
                        self.abandoned = True
                except QUEUE_ERRORS:
                    continue
                if self.pending:
                    self.flush()

        thread = threading.Thread(target=beat, name=f"heartbeat-{self.run_id}", daemon=True)
        thread.start()
        return thread

    def stop_beating(self) -> None:
        self._beating.set()


# --- one process of a worker ----------------------------------------------------------------

SETTINGS: WorkerSettings | None = None  # set by ``run_worker`` before Celery forks
_process: dict = {}  # per process: its Redis client, the data sets it loaded


def _init_process(**_) -> None:
    """Each process: below the web servers where they share a machine, TensorFlow imported
    now (not at the first run), its CPU threads split between the worker's slots."""
    os.nice(WORKER_NICENESS)
    warm_up()
    if SETTINGS.slots > 1:
        import tensorflow as tf

        threads = max(1, (os.cpu_count() or 1) // SETTINGS.slots)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    _process["redis"] = connect(SETTINGS.url)
    _process["datasets"] = {}


def train_next() -> None:
    """The task: take the first waiting run, if any is left, and train it."""
    settings, client = SETTINGS, _process.get("redis") or connect(SETTINGS.url)
    me = f"{settings.node}/{os.getpid()}"
    flat = client.register_script(TAKE_SCRIPT)(args=[settings.prefix, me])
    if not flat:
        return  # cancelled meanwhile, or a spare message
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    run_id, first = int(fields["id"]), int(fields.get("first") or 0)
    try:
        jobs = _on_this_worker(fields, settings)
    except (KeyError, TypeError, ValueError) as error:
        reporter = RunReporter(client, settings.prefix, run_id, me, (), first)
        reporter.send(RunFailed(_other_version(fields, error)))
        return
    reporter = RunReporter(client, settings.prefix, run_id, me, jobs, first)
    reporter.beat_while_training()
    try:
        request = TrainRequest(run_id, jobs, first)
        datasets = _process.setdefault("datasets", {})
        train_request(request, reporter.send, reporter.should_stop, datasets)
        if reporter.state.status == "failed":
            remove_checkpoints(jobs[0].models_dir, run_id)
    except HandedBack:
        reporter.flush()
        requeued = client.register_script(REQUEUE_SCRIPT)(
            args=[settings.prefix, HANDED_BACK, run_id]
        )
        if requeued and not reporter.abandoned:
            celery_app(settings.url).send_task(TASK_NAME, queue=CELERY_QUEUE)
    finally:
        reporter.stop_beating()


def _on_this_worker(fields: dict, settings: WorkerSettings) -> tuple[TrainingJob, ...]:
    """The run's jobs, with this worker's folders (and data, if it has its own)."""
    if fields.get("schema") != str(SCHEMA):
        raise ValueError(f"job format {fields.get('schema', 'none')}")
    jobs = tuple(TrainingJob.from_dict(job) for job in json.loads(fields["jobs"]))
    changes = {
        name: value
        for name, value in (
            ("models_dir", settings.models_dir),
            ("drawings_dir", settings.drawings_dir),
            ("data_path", settings.data),
        )
        if value
    }
    return tuple(replace(job, **changes) for job in jobs)


def _other_version(fields: dict, error: Exception) -> str:
    return (
        f"This run was queued by another version of the app ({error}; this worker reads "
        f"job format {SCHEMA}): start it again from an up-to-date page."
    )


# --- the worker's main process ----------------------------------------------------------------


class WorkerRounds:
    """The main process's rounds, every ``TICK`` seconds: say the worker lives (and its
    slots, for the pages' estimated starts), put silent runs back in the queue, and send a
    message for every waiting run that has none (one lost with a killed process)."""

    def __init__(self, settings: WorkerSettings):
        self.settings = settings
        self.client = connect(settings.url)
        self.app = celery_app(settings.url)
        self._requeue = self.client.register_script(REQUEUE_SCRIPT)
        self._done = threading.Event()

    def start(self, **_) -> None:
        threading.Thread(target=self._loop, name="worker-rounds", daemon=True).start()

    def _loop(self) -> None:
        while not self._done.is_set():
            with contextlib.suppress(QUEUE_ERRORS):  # Redis away: the next round tries again
                self.round()
            self._done.wait(TICK)

    def round(self) -> None:
        prefix, node = self.settings.prefix, self.settings.node
        now = float(self.client.time()[0])
        self.client.zadd(key_of(prefix, "workers"), {node: now})
        self.client.hset(key_of(prefix, "worker_slots"), node, self.settings.slots)
        # After a Redis restart every heartbeat looks old: give the workers time to beat.
        if self.client.info("server")["uptime_in_seconds"] >= STALE_AFTER:
            silent = self.client.zrangebyscore(key_of(prefix, "alive"), "-inf", now - STALE_AFTER)
            if silent:
                self._requeue(args=[prefix, HANDED_BACK, *silent])
        waiting = self.client.zcard(key_of(prefix, "waiting"))
        for _ in range(waiting - self.client.llen(CELERY_QUEUE)):
            self.app.send_task(TASK_NAME, queue=CELERY_QUEUE)

    def hand_back(self, **_) -> None:
        """Ctrl-C or a service stop: this worker's runs go back to the queue now (each
        after its batch under way), to resume elsewhere from their last epoch."""
        self._done.set()
        prefix = self.settings.prefix
        try:
            for run_id in self.client.zrange(key_of(prefix, "training"), 0, -1):
                worker = self.client.hget(key_of(prefix, "run", run_id), "worker") or ""
                if worker.startswith(self.settings.node + "/"):
                    self.client.set(key_of(prefix, "handback", run_id), 1, ex=3600)
            self.client.zrem(key_of(prefix, "workers"), self.settings.node)
        except QUEUE_ERRORS:
            pass  # Redis is away: the runs go back by their silence instead


def engine_versions() -> dict[str, str]:
    """The TensorFlow and Keras this worker trains with (read without importing them)."""
    versions = {}
    for name, distributions in (
        ("tensorflow", ("tensorflow-cpu", "tensorflow")),
        ("keras", ("keras",)),
    ):
        for distribution in distributions:
            try:
                versions[name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions


def join_problem(client, settings: WorkerSettings, models_root: Path) -> str | None:
    """Why this worker may not train for the queue, if it may not: another TensorFlow or
    Keras than the queue's first worker (models saved by one must load on every replica),
    or a models folder that is not the shared one."""
    versions_key = key_of(settings.prefix, "engine")
    mine = engine_versions()
    for name, version in mine.items():
        client.hsetnx(versions_key, name, version)
    theirs = client.hgetall(versions_key)
    differ = [f"{name} {mine[name]} here, {theirs[name]} on the queue" for name in mine
              if theirs.get(name) != mine[name]]  # fmt: skip
    if differ:
        return (
            f"this worker's {', '.join(differ)}: install the same versions as the other "
            "workers (pip install -r requirements.txt), so every model loads everywhere"
        )
    return shared_folder_problem(client, settings.prefix, models_root)


def run_worker(settings: WorkerSettings) -> int:
    """Start the worker in this process (until Ctrl-C); 2 with a message if it may not."""
    from celery import signals

    from .registry import ModelRegistry

    global SETTINGS
    models_root = ModelRegistry(settings.models_dir).root
    try:
        client = connect(settings.url)
        problem = join_problem(client, settings, models_root)
    except QUEUE_ERRORS as error:
        problem = (
            f"the training queue's Redis at {shown_url(settings.url)} does not answer ({error})"
        )
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    SETTINGS = replace(settings, models_dir=str(models_root))
    app = celery_app(settings.url)
    app.task(name=TASK_NAME)(train_next)
    rounds = WorkerRounds(SETTINGS)
    signals.worker_process_init.connect(_init_process, weak=False)
    signals.worker_ready.connect(rounds.start, weak=False)
    signals.worker_shutting_down.connect(rounds.hand_back, weak=False)
    app.worker_main(
        [
            "worker",
            "--loglevel=INFO",
            f"--concurrency={settings.slots}",
            "--pool=prefork",
            f"--queues={CELERY_QUEUE}",
            f"--hostname={settings.node}",
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0


def node_name() -> str:
    """A name for this worker no other has: the host's and the process's."""
    return f"mnist-{socket.gethostname()}-{os.getpid()}"


def _queue_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, QueueUnavailable)


QUEUE_ERRORS = _queue_errors()
