"""The training queue of several app servers (replicas): its state in Redis, not in memory.

``CeleryTrainingQueue`` is the ``TrainingQueue`` the pages use, for a school with several
Streamlit replicas on one Redis (``MNIST_QUEUE=redis://HOST:PORT/DB``, ``docs/scaling.md``).
Every replica reads and writes the same keys, so there is one order (first come, first
served: by the run id Redis hands out), one waiting run per browser, one count of starts a
minute per browser and one set of teacher's caps for the whole school. The rules and the
estimates are the local queue's own functions (``training_queue``); this module only keeps
their inputs in Redis and changes them in transactions (``WATCH``/``MULTI``: a change based
on what another replica changed meanwhile is retried on the new state).

Built so far: submit, cancel, clear, set_limits and snapshot. Nothing trains yet: the Celery
workers that take the waiting runs are the next step (``docs/scaling.md``); a cancel of a
run they train sets its stop flag (``PREFIX:stop:ID``) for them to read.

Keys (``PREFIX`` is ``mnist`` unless given): ``next_id`` (a counter), ``run:ID`` (a hash:
owner, jobs as JSON, submitted, first, status, message, error), ``waiting`` and
``training`` (sorted sets of run ids, scored by id), ``ended`` (a list of ids, newest
first, ``ENDED_KEPT`` long), ``limits`` (JSON), and per browser ``waiting_of:OWNER`` (a
set of ids), ``starts:OWNER`` (a sorted set of start times) and ``last:OWNER`` (its last
run, for the double-click refusal). Times are Redis's clock (``TIME``), one for all replicas.

``redis`` (and later ``celery``) is imported only when a queue is built, so the app with
the local queue needs neither.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from .files import write_whole
from .jobs import TrainingJob
from .protocol import Event, RunState, decode_event
from .training_queue import (
    ENDED_KEPT,
    REPEAT_REFUSAL,
    REPEAT_SECONDS,
    TYPICAL_SPEED,
    Limits,
    NotAllowed,
    QueueRefused,
    QueueSnapshot,
    Requester,
    TrainingRun,
    check_allowed,
    checkpoint_epochs,
    rate_refusal,
    remaining_seconds,
    waiting_in_order,
    waiting_refusal,
)

if TYPE_CHECKING:
    import redis

SCHEMES = ("redis", "rediss")
CELERY_QUEUE = "mnist-training"  # the Celery queue (a Redis list) the workers consume
TASK_NAME = "mnist_core.train_next"
SCHEMA = 1  # the format of a run's jobs in Redis; a worker refuses runs of another
# A run whose worker has not said it lives for this long goes back to the queue (and on
# from its last epoch checkpoint on another worker); workers say so every few seconds.
STALE_AFTER = 20.0
PROGRESS_KEPT = 20_000  # events a run's progress stream keeps (a run sends ~4 a second)
# Celery hands a message nobody acknowledged back after this long; the runs themselves go
# back much sooner, by ``STALE_AFTER``, so a redelivered message is only a spare token.
VISIBILITY_TIMEOUT = 3600
FOLDER_MARKER = ".queue-folder"
PREFIX = "mnist"  # every key's first part: another prefix is another queue on the same Redis
CONNECT_TIMEOUT = 2.0  # seconds: a Redis that does not answer is said so, not waited for
SOCKET_TIMEOUT = 5.0
RETRY_AFTER = 3.0  # seconds a Redis that timed out is not asked again (pages poll often)
ENDED_EXPIRES = 24 * 3600  # seconds an ended run's hash is kept
NOT_ENDED = ("queued", "starting", "training")

# One round trip, one consistent moment: the runs training, waiting (in order), ended.
SNAPSHOT_SCRIPT = """
local function runs(ids)
  local out = {}
  for i, id in ipairs(ids) do out[i] = redis.call('HGETALL', ARGV[1] .. ':run:' .. id) end
  return out
end
local now = tonumber(redis.call('TIME')[1])
local slots = 0
local workers = redis.call('ZRANGEBYSCORE', ARGV[1] .. ':workers', now - tonumber(ARGV[2]), '+inf')
for i, name in ipairs(workers) do
  slots = slots + tonumber(redis.call('HGET', ARGV[1] .. ':worker_slots', name) or '0')
end
return {
  runs(redis.call('ZRANGE', ARGV[1] .. ':training', 0, -1)),
  runs(redis.call('ZRANGE', ARGV[1] .. ':waiting', 0, -1)),
  runs(redis.call('LRANGE', ARGV[1] .. ':ended', 0, -1)),
  redis.call('HGETALL', ARGV[1] .. ':speed'),
  slots,
}
"""


class QueueUnavailable(QueueRefused):
    """The queue's Redis does not answer; the message names its URL (without a password)."""


def shown_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``: fit for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def checked_url(url: str) -> str:
    """``url`` if it is a Redis URL (``redis://HOST:PORT/DB``, ``rediss://`` for TLS), else
    ``ValueError`` naming it and what is wrong."""
    shown = shown_url(url)
    parts = urlsplit(url)
    expected = "expected redis://HOST:PORT/DB (rediss:// with TLS)"
    if parts.scheme not in SCHEMES:
        scheme = f"the scheme {parts.scheme}://" if parts.scheme else "no scheme"
        raise ValueError(f"{shown!r} is not a Redis URL ({scheme}): {expected}")
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ValueError(f"{shown!r}: the port is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise ValueError(f"{shown!r} names no host: {expected}")
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise ValueError(f"{shown!r}: the database {database!r} is not a number: {expected}")
    return url


def connect(url: str) -> redis.Redis:
    """A client of the Redis at ``url`` (checked first) that gives up within seconds, not
    minutes, when it does not answer, retrying a dropped connection twice at once."""
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    try:
        return redis.Redis.from_url(
            checked_url(url),
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        )
    except ValueError as error:
        raise ValueError(f"{shown_url(url)!r}: {error}") from None


def celery_app(url: str):
    """The Celery application of the queue at ``url``: the replicas send with it, the
    workers consume with it. Long jobs: one message per worker process at a time
    (prefetch 1), acknowledged when it ends (late), handed back if its process dies."""
    from celery import Celery

    app = Celery("mnist_core", broker=checked_url(url), set_as_current=False)
    app.conf.update(
        task_default_queue=CELERY_QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        # Redis lost mid-run: the run goes on and its events wait (celery_worker.py).
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
    )
    return app


def key_of(prefix: str, *parts: object) -> str:
    """The Redis key ``PREFIX:PART:PART...`` (the layout is in the module's docstring)."""
    return ":".join([prefix, *map(str, parts)])


class CeleryTrainingQueue:
    """The ``TrainingQueue`` of every replica on the Redis at ``url``.

    ``slots`` is how many runs the workers train at once, for the estimated starts (until
    workers report their own). ``limits``, if given, become the queue's limits only if the
    Redis holds none yet: a replica starting never undoes the teacher's caps.
    """

    def __init__(
        self,
        url: str,
        models_root: Path,
        slots: int = 1,
        limits: Limits | None = None,
        typical_train_images: int = 55_000,
        prefix: str = PREFIX,
        teacher_digest: str | None = None,
        require_answer: bool = True,
    ):
        import redis

        self.url = checked_url(url)
        self.models_root = Path(models_root)
        self.slots = slots
        self._prefix = prefix
        self._typical_images = typical_train_images
        self._speed = dict(TYPICAL_SPEED)
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._watch_error = redis.exceptions.WatchError
        self._timeout = redis.exceptions.TimeoutError
        self._connection_error: str | None = None
        self._quiet_until = 0.0
        self._setup_problems: list[str] = []
        self._celery = None
        self._progress: dict[int, tuple[str, RunState]] = {}  # run id -> (last event read, state)
        self._progress_lock = threading.Lock()
        self._start_limits, self._teacher_digest = limits, teacher_digest
        self._joined = False
        self._last_limits = limits or Limits()
        self._redis = connect(url)
        self._snapshot = self._redis.register_script(SNAPSHOT_SCRIPT)
        try:
            with self._talking():
                self._redis.ping()
        except QueueUnavailable:
            if require_answer:
                raise

    def _join(self) -> None:
        """Once Redis first answers: this server's limits if the queue has none, and the
        checks that it belongs with the others (the same models folder and passphrase)."""
        if self._start_limits is not None:
            self._redis.set(self._key("limits"), json.dumps(asdict(self._start_limits)), nx=True)
        problems = [shared_folder_problem(self._redis, self._prefix, self.models_root)]
        if self._teacher_digest is not None:
            self._redis.set(self._key("teacher"), self._teacher_digest, nx=True)
            if self._redis.get(self._key("teacher")) != self._teacher_digest:
                problems.append(
                    "this server's teacher passphrase is not the one the other servers of "
                    f"the training queue at {shown_url(self.url)} were started with: start "
                    "every server with the same MNIST_TEACHER_PASSPHRASE"
                )
        self._setup_problems = [problem for problem in problems if problem]
        self._joined = True

    @property
    def storage_error(self) -> str | None:
        """Why the queue cannot work as it should now, for the pages: its Redis does not
        answer, or this server's models folder is not the one the workers share."""
        return self._connection_error or "; ".join(self._setup_problems) or None

    # --- the interface ----------------------------------------------------------------

    @property
    def limits(self) -> Limits:
        """The rules and caps every replica applies (``Limits()`` until the teacher sets
        some; the last ones read while Redis does not answer)."""
        with contextlib.suppress(QueueUnavailable), self._talking():
            self._last_limits = self._read_limits(self._redis)
        return self._last_limits

    def submit(self, jobs: Sequence[TrainingJob], requester: Requester) -> TrainingRun:
        if not jobs:
            raise QueueRefused("nothing to train")
        owner = requester.owner
        starts_key, waiting_key = self._key("starts", owner), self._key("waiting_of", owner)
        last_key, limits_key = self._key("last", owner), self._key("limits")
        with self._talking():
            run_id = int(self._redis.incr(self._key("next_id")))  # the order: Redis's count
            with self._redis.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(starts_key, waiting_key, last_key, limits_key)
                        now = self._now(pipe)
                        limits = self._read_limits(pipe)
                        ready = self._ready(jobs, requester, limits)
                        encoded = _encoded(ready)
                        if self._repeated(pipe, last_key, encoded, now):
                            raise QueueRefused(REPEAT_REFUSAL)
                        if not requester.teacher:
                            self._check_fair(pipe, starts_key, waiting_key, now, limits)
                        pipe.multi()
                        pipe.hset(
                            self._key("run", run_id),
                            mapping={
                                "id": run_id,
                                "owner": owner,
                                "jobs": encoded,
                                "submitted": repr(now),
                                "first": 0,
                                "status": "queued",
                                "message": RunState.begin(ready).message,
                                "schema": SCHEMA,
                            },
                        )
                        pipe.zadd(self._key("waiting"), {run_id: run_id})
                        pipe.sadd(waiting_key, run_id)
                        pipe.zadd(starts_key, {run_id: now})
                        pipe.zremrangebyscore(starts_key, "-inf", now - 60)
                        pipe.expire(starts_key, 120)
                        last = {"id": run_id, "jobs": encoded, "submitted": repr(now)}
                        pipe.hset(last_key, mapping=last)
                        pipe.expire(last_key, 120)
                        pipe.execute()
                        break
                    except self._watch_error:
                        continue  # another replica changed this browser's keys: again
        self._send_token()
        return TrainingRun(run_id, owner, ready, now)

    def cancel(self, run_id: int, requester: Requester) -> None:
        run_key = self._key("run", run_id)
        with self._talking(), self._redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(run_key)
                    run = pipe.hgetall(run_key)
                    if run.get("status") not in NOT_ENDED:
                        raise QueueRefused(f"run {run_id} has already ended")
                    check_allowed(requester, run["owner"])
                    last_key = self._key("last", run["owner"])
                    pipe.watch(last_key)
                    last_id = pipe.hget(last_key, "id")
                    pipe.multi()
                    if last_id == str(run_id):  # the same settings again are meant now
                        pipe.delete(last_key)
                    if run["status"] == "queued":
                        cancelled = RunState.begin(()).cancelled()
                        pipe.hset(run_key, mapping={"status": "cancelled",
                                                    "message": cancelled.message})  # fmt: skip
                        pipe.expire(run_key, ENDED_EXPIRES)
                        pipe.zrem(self._key("waiting"), run_id)
                        pipe.srem(self._key("waiting_of", run["owner"]), run_id)
                        pipe.lpush(self._key("ended"), run_id)
                        pipe.ltrim(self._key("ended"), 0, ENDED_KEPT - 1)
                    else:  # training: its worker stops after the batch
                        pipe.set(self._key("stop", run_id), 1, ex=ENDED_EXPIRES)
                    pipe.execute()
                    return
                except self._watch_error:
                    continue

    def clear(self, requester: Requester) -> int:
        if not requester.teacher:
            raise NotAllowed("only the teacher may clear the queue")
        with self._talking():
            waiting = self._redis.zrange(self._key("waiting"), 0, -1)
        cleared = 0
        for run_id in waiting:
            try:
                self.cancel(int(run_id), requester)
                cleared += 1
            except QueueRefused:
                pass  # it started or was cancelled meanwhile
        return cleared

    def resume(self, run_id: int, requester: Requester) -> TrainingRun:
        raise QueueRefused(f"run {run_id} is no longer waiting to be resumed")

    def discard(self, run_id: int, requester: Requester) -> None:
        """Nothing is interrupted yet: the workers that could be are not built."""

    def set_limits(self, limits: Limits, requester: Requester) -> None:
        if not requester.teacher:
            raise NotAllowed("only the teacher may change the limits")
        with self._talking():
            self._redis.set(self._key("limits"), json.dumps(asdict(limits)))

    def snapshot(self) -> QueueSnapshot:
        with self._talking():
            training, waiting, ended, speed, slots = self._snapshot(
                args=[self._prefix, STALE_AFTER]
            )
            for kind, images_per_s in zip(speed[::2], speed[1::2], strict=True):
                self._speed[kind] = float(images_per_s)
            training = self._with_progress([_run(fields) for fields in training if fields])
            ended = self._with_progress([_run(fields) for fields in ended if fields])
        ends_in = [self._remaining(run) for run in training]
        waiting = waiting_in_order(
            [_run(fields) for fields in waiting if fields],
            ends_in,
            int(slots) or self.slots,
            self._remaining,
        )
        self._forget_progress({run.id for run in (*training, *ended)})
        return QueueSnapshot(tuple(training), waiting, tuple(ended), ())

    def events(self, run_id: int, after: str = "0-0", wait: float = 1.0) -> list[tuple[str, Event]]:
        """The run's events after the event ``after`` (ids as Redis gives them), waiting up
        to ``wait`` seconds for one: how the command line follows a run."""
        with self._talking():
            read = self._redis.xread(
                {self._key("progress", run_id): after}, block=int(wait * 1000) or None
            )
        return [
            (event_id, decode_event(fields["event"])[1])
            for _, events in read
            for event_id, fields in events
        ]

    def run(self, run_id: int) -> TrainingRun | None:
        """The run as its hash says (status, message, error; no curves), if Redis has it."""
        with self._talking():
            fields = self._redis.hgetall(self._key("run", run_id))
        return _run([item for pair in fields.items() for item in pair]) if fields else None

    def resumable_epochs(self, run: TrainingRun) -> int:
        return checkpoint_epochs(self.models_root, run)

    def start_workers(self) -> None:
        """Nothing to start here: the workers are Celery's, on their own hosts."""

    def shutdown(self) -> None:
        self._redis.close()

    # --- in Redis -------------------------------------------------------------------------

    def _key(self, *parts: object) -> str:
        return key_of(self._prefix, *parts)

    @contextmanager
    def _talking(self) -> Iterator[None]:
        """Redis's connection errors as ``QueueUnavailable``, naming the URL; kept in
        ``storage_error`` until the next request that gets through."""
        if self._connection_error and time.monotonic() < self._quiet_until:
            raise QueueUnavailable(self._connection_error)  # every poll need not wait for it
        try:
            if not self._joined:
                self._join()
            yield
        except self._errors as error:
            self._connection_error = (
                f"the training queue's Redis at {shown_url(self.url)} does not answer ({error})"
            )
            if isinstance(error, self._timeout):  # a host that does not answer, not refuses
                self._quiet_until = time.monotonic() + RETRY_AFTER
            raise QueueUnavailable(self._connection_error) from error
        self._connection_error = None

    def _now(self, client: redis.Redis) -> float:
        seconds, microseconds = client.time()
        return seconds + microseconds / 1e6

    def _read_limits(self, client: redis.Redis) -> Limits:
        stored = client.get(self._key("limits"))
        return Limits(**json.loads(stored)) if stored else Limits()

    def _ready(
        self, jobs: Sequence[TrainingJob], requester: Requester, limits: Limits
    ) -> tuple[TrainingJob, ...]:
        """The jobs as queued: within the caps for a student, owned, checked."""
        if not requester.teacher:
            jobs = [limits.clamp(job)[0] for job in jobs]
        ready = tuple(replace(job, owner=requester.owner) for job in jobs)
        for job in ready:
            job.check()
        return ready

    def _repeated(self, pipe, last_key: str, encoded: str, now: float) -> bool:
        """Whether this browser queued these same jobs a moment ago, and they go on."""
        last = pipe.hgetall(last_key)
        if not last or last["jobs"] != encoded or now - float(last["submitted"]) >= REPEAT_SECONDS:
            return False
        return pipe.hget(self._key("run", last["id"]), "status") in NOT_ENDED

    def _check_fair(self, pipe, starts_key: str, waiting_key: str, now: float, limits: Limits):
        starts = [t for _, t in pipe.zrangebyscore(starts_key, now - 60, "+inf", withscores=True)]
        if refusal := rate_refusal(starts, now, limits):
            raise QueueRefused(refusal)
        ranks = [pipe.zrank(self._key("waiting"), run_id) for run_id in pipe.smembers(waiting_key)]
        positions = sorted(rank + 1 for rank in ranks if rank is not None)
        if refusal := waiting_refusal(positions, limits):
            raise QueueRefused(refusal)

    def _remaining(self, run: TrainingRun) -> float:
        return remaining_seconds(run, self._speed, self._typical_images)

    def _send_token(self) -> None:
        """One Celery message for one run to take: whichever worker receives it trains the
        first waiting run (the order is the ``waiting`` set's, not the messages')."""
        if self._celery is None:
            self._celery = celery_app(self.url)
        self._celery.send_task(TASK_NAME, queue=CELERY_QUEUE)

    def _with_progress(self, runs: list[TrainingRun]) -> list[TrainingRun]:
        """``runs`` (from their hashes) with their curves: each run's progress stream,
        folded into its state, reading only the events this replica has not read yet. The
        hash's status, message and error are the run's word on where it is; the worker
        writes them with the stream's last event, so a run ended in its hash is read whole.
        """
        with self._progress_lock:
            unread = {
                self._key("progress", run.id): self._progress.get(run.id, ("0-0", None))[0]
                for run in runs
                if run.id not in self._progress or not self._progress[run.id][1].ended
            }
            read = dict(self._redis.xread(unread)) if unread else {}
            for run in runs:
                last, state = self._progress.get(run.id, ("0-0", RunState.begin(run.jobs)))
                for event_id, fields in read.get(self._key("progress", run.id), ()):
                    last, state = event_id, state.apply(decode_event(fields["event"])[1])
                state = replace(
                    state, status=run.state.status, message=run.state.message,
                    error=run.state.error,
                )  # fmt: skip
                self._progress[run.id] = (last, state)
                run.state = state
        return runs

    def _forget_progress(self, keep: set[int]) -> None:
        """Drop what this replica folded of runs it no longer shows."""
        with self._progress_lock:
            for run_id in set(self._progress) - keep:
                del self._progress[run_id]


def shared_folder_problem(client: redis.Redis, prefix: str, models_root: Path) -> str | None:
    """Why not, if ``models_root`` is not the models folder the queue's other servers and
    workers share: each folder holds a marker (``.queue-folder``, made by the first to use
    it) and the queue keeps the first one it met. ``None``: it is the same folder."""
    marker = Path(models_root) / FOLDER_MARKER
    try:
        mine = marker.read_text().strip()
    except FileNotFoundError:
        mine = uuid.uuid4().hex
        Path(models_root).mkdir(parents=True, exist_ok=True)
        write_whole(marker, mine)
    except OSError as error:
        return f"the models folder {models_root} cannot be read ({error})"
    client.set(key_of(prefix, "models_folder"), mine, nx=True)
    if client.get(key_of(prefix, "models_folder")) == mine:
        return None
    return (
        f"the models folder {models_root} is not the one the queue's other servers and "
        "workers share (its marker differs): mount the shared folder there (or point "
        "MNIST_MODELS_DIR at it), or models trained by one would be missing on another"
    )


def _encoded(jobs: Sequence[TrainingJob]) -> str:
    """The jobs as JSON, the same text for the same jobs (the double-click check compares it)."""
    return json.dumps([job.to_dict() for job in jobs], sort_keys=True)


def _run(flat: list[str]) -> TrainingRun:
    """A run from its hash, as ``HGETALL`` gives it in a script (key, value, key, ...)."""
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    jobs = tuple(TrainingJob.from_dict(job) for job in json.loads(fields["jobs"]))
    run = TrainingRun(int(fields["id"]), fields["owner"], jobs, float(fields["submitted"]))
    run.first = int(fields["first"])
    run.state = replace(
        run.state,
        status=fields["status"],
        message=fields["message"],
        error=fields.get("error") or None,
    )
    return run
