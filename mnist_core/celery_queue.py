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

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from .jobs import TrainingJob
from .protocol import RunState
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
CONNECT_TIMEOUT = 2.0  # seconds: a Redis that does not answer is said so, not waited for
SOCKET_TIMEOUT = 5.0
ENDED_EXPIRES = 24 * 3600  # seconds an ended run's hash is kept
NOT_ENDED = ("queued", "starting", "training")

# One round trip, one consistent moment: the runs training, waiting (in order), ended.
SNAPSHOT_SCRIPT = """
local function runs(ids)
  local out = {}
  for i, id in ipairs(ids) do out[i] = redis.call('HGETALL', ARGV[1] .. ':run:' .. id) end
  return out
end
return {
  runs(redis.call('ZRANGE', ARGV[1] .. ':training', 0, -1)),
  runs(redis.call('ZRANGE', ARGV[1] .. ':waiting', 0, -1)),
  runs(redis.call('LRANGE', ARGV[1] .. ':ended', 0, -1)),
}
"""


class QueueUnavailable(RuntimeError):
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
        prefix: str = "mnist",
    ):
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        self.url = checked_url(url)
        self.models_root = Path(models_root)
        self.storage_error: str | None = None
        self.slots = slots
        self._prefix = prefix
        self._typical_images = typical_train_images
        self._speed = dict(TYPICAL_SPEED)
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._watch_error = redis.exceptions.WatchError
        try:
            self._redis: redis.Redis = redis.Redis.from_url(
                url,
                decode_responses=True,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=SOCKET_TIMEOUT,
                retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
            )
        except ValueError as error:
            raise ValueError(f"{shown_url(url)!r}: {error}") from None
        with self._talking():
            self._redis.ping()
            self._snapshot = self._redis.register_script(SNAPSHOT_SCRIPT)
            if limits is not None:
                self._redis.set(self._key("limits"), json.dumps(asdict(limits)), nx=True)

    # --- the interface ----------------------------------------------------------------

    @property
    def limits(self) -> Limits:
        """The rules and caps every replica applies (``Limits()`` until the teacher sets
        some)."""
        with self._talking():
            return self._read_limits(self._redis)

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
            training, waiting, ended = self._snapshot(args=[self._prefix])
        training = tuple(_run(fields) for fields in training if fields)
        ended = tuple(_run(fields) for fields in ended if fields)
        ends_in = [self._remaining(run) for run in training]
        waiting = waiting_in_order(
            [_run(fields) for fields in waiting if fields], ends_in, self.slots, self._remaining
        )
        return QueueSnapshot(training, waiting, ended, ())

    def resumable_epochs(self, run: TrainingRun) -> int:
        return checkpoint_epochs(self.models_root, run)

    def start_workers(self) -> None:
        """Nothing to start here: the workers are Celery's, on their own hosts."""

    def shutdown(self) -> None:
        self._redis.close()

    # --- in Redis -------------------------------------------------------------------------

    def _key(self, *parts: object) -> str:
        return ":".join([self._prefix, *map(str, parts)])

    @contextmanager
    def _talking(self) -> Iterator[None]:
        """Redis's connection errors as ``QueueUnavailable``, naming the URL; kept in
        ``storage_error`` until the next request that gets through."""
        try:
            yield
        except self._errors as error:
            self.storage_error = (
                f"the training queue's Redis at {shown_url(self.url)} does not answer ({error})"
            )
            raise QueueUnavailable(self.storage_error) from error
        self.storage_error = None

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
