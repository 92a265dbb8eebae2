"""The training queue every session of the server shares: who waits, who trains, in order.

A class shares one server: thirty students may press Start within a minute, and training
is CPU-bound, so runs wait their turn. First come, first served, with one waiting run per
browser and a few starts a minute (``Limits``), so nobody can fill the queue. Only the
browser that asked for a run, or the teacher, may stop or cancel it (``Requester``), and
the teacher's caps bound what students ask for.

``TrainingQueue`` is the whole interface the pages use (through ``ui.py``);
``LocalTrainingQueue`` runs it on this machine with warm worker processes.
``docs/scaling.md`` puts a distributed engine behind the same interface.

The local queue writes every run not yet ended to ``.queue.json`` in the models folder at
each change (atomically), so a server killed mid-run finds, when it restarts, the runs it
cut short: each can resume from its last epoch checkpoint or be discarded.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from .jobs import TrainingJob
from .protocol import (
    Event,
    ModelSaved,
    RunFailed,
    RunFinished,
    RunState,
    StopRequest,
    TrainRequest,
    checkpoint_base,
    remove_checkpoints,
)
from .worker import WorkerProcess

STATE_FILE = ".queue.json"
ENDED_KEPT = 50  # ended runs the queue remembers, for the pages to show how they ended
# Images per second of the default networks on two cores, until runs here measure their own.
TYPICAL_SPEED = {"ann": 20_000.0, "cnn": 4_000.0}
JOB_OVERHEAD = 5.0  # seconds a job spends besides training: loading, evaluating, saving
# The same settings again from the same browser within this many seconds: a double click.
REPEAT_SECONDS = 5.0
# A training run's estimated end moves at most this often, halfway to the fresh estimate:
# its first epoch's pace misleads, and every page showing a wait must show the same one.
ESTIMATE_EVERY = 10.0
SLOTS_VARIABLE = "MNIST_TRAINING_SLOTS"


class QueueRefused(Exception):
    """A run the queue will not take now; the message says why, for people."""


class NotAllowed(Exception):
    """A request about another browser's run, without the teacher's passphrase."""


@dataclass(frozen=True)
class Requester:
    """Who asks: ``owner`` stands for one browser (a hash of a token it keeps in a cookie,
    so it survives a reconnect), ``teacher`` for the passphrase having been given."""

    owner: str
    teacher: bool = False

    def may_act_on(self, owner: str | None) -> bool:
        return self.teacher or owner == self.owner


@dataclass(frozen=True)
class Limits:
    """Fairness rules and the teacher's caps on what students ask for (``None``: no cap)."""

    waiting_per_owner: int = 1
    starts_per_minute: int = 6
    max_seconds: float | None = None
    max_train_size: int | None = None

    def clamp(self, job: TrainingJob) -> tuple[TrainingJob, list[str]]:
        """``job`` within the caps, and what was changed, in words."""
        training, notes = job.training, []
        if self.max_seconds and (training.time_budget or float("inf")) > self.max_seconds:
            training = replace(training, time_budget=self.max_seconds)
            notes.append(f"time budget set to {self.max_seconds:g} s, the teacher's limit")
        if self.max_train_size and (training.train_size or float("inf")) > self.max_train_size:
            training = replace(training, train_size=self.max_train_size)
            notes.append(f"training images set to {self.max_train_size:,}, the teacher's limit")
        return replace(job, training=training), notes


class TrainingRun:
    """One or more jobs trained one after another, as the queue sees them.

    ``state`` is replaced by the next ``RunState`` at each event (by the worker's listener
    thread); any number of page sessions read it, each read one consistent snapshot.
    ``first`` is the first job not yet saved: where the run resumes after a crash.
    """

    def __init__(self, run_id: int, owner: str, jobs: Sequence[TrainingJob], submitted: float):
        self.id = run_id
        self.owner = owner
        self.jobs = tuple(jobs)
        self.submitted = submitted
        self.first = 0
        self.state = RunState.begin(self.jobs)

    @property
    def active(self) -> bool:
        return self.state.active

    @property
    def label(self) -> str:
        """What the run trains, in a few words."""
        if len(self.jobs) > 1:
            tag = self.jobs[0].experiment
            return f"{len(self.jobs)} models" + (f" of experiment {tag}" if tag else "")
        job = self.jobs[0]
        return job.kind.upper() + (f" {job.name}" if job.name else "")

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "owner": self.owner,
            "jobs": [job.to_dict() for job in self.jobs],
            "submitted": self.submitted,
            "first": self.first,
        }

    @classmethod
    def from_dict(cls, data: dict) -> TrainingRun:
        jobs = [TrainingJob.from_dict(job) for job in data["jobs"]]
        run = cls(data["id"], data["owner"], jobs, data["submitted"])
        run.first = data["first"]
        return run


@dataclass(frozen=True)
class Waiting:
    run: TrainingRun
    position: int  # 1: the next to start
    starts_in: float  # seconds, estimated


@dataclass(frozen=True)
class QueueSnapshot:
    """The queue at one moment: what trains, what waits (in order), what ended lately
    (newest first) and what a server restart cut short."""

    training: tuple[TrainingRun, ...]
    waiting: tuple[Waiting, ...]
    ended: tuple[TrainingRun, ...]
    interrupted: tuple[TrainingRun, ...]

    def latest_of(self, owner: str) -> TrainingRun | None:
        """``owner``'s run to show: one training, else one waiting, else the latest ended."""
        runs = [*self.training, *(w.run for w in self.waiting), *self.ended]
        return next((run for run in runs if run.owner == owner), None)

    def waiting_of(self, run_id: int) -> Waiting | None:
        return next((w for w in self.waiting if w.run.id == run_id), None)


class TrainingQueue(Protocol):
    """What the pages ask of a training queue. Every method is safe from any thread."""

    limits: Limits
    storage_error: str | None  # why the queue's state cannot be kept, if it cannot

    def submit(self, jobs: Sequence[TrainingJob], requester: Requester) -> TrainingRun:
        """Queue ``jobs`` as one run; ``QueueRefused`` says why not (the same jobs again
        from the same browser within ``REPEAT_SECONDS``, a double click, among others)."""

    def cancel(self, run_id: int, requester: Requester) -> None:
        """Take a waiting run out, or stop a training one after its current batch (its
        model so far is saved); ``NotAllowed`` unless it is the requester's or a teacher's."""

    def clear(self, requester: Requester) -> int:
        """Cancel every waiting run (the teacher only); how many."""

    def resume(self, run_id: int, requester: Requester) -> TrainingRun:
        """Queue an interrupted run again, to go on from its last epoch checkpoint."""

    def discard(self, run_id: int, requester: Requester) -> None:
        """Forget an interrupted run and its checkpoint."""

    def set_limits(self, limits: Limits, requester: Requester) -> None:
        """Change the rules and caps (the teacher only)."""

    def snapshot(self) -> QueueSnapshot: ...

    def resumable_epochs(self, run: TrainingRun) -> int:
        """Epochs of an interrupted run's current job that its checkpoint holds."""

    def start_workers(self) -> None:
        """Get whatever trains ready before the first Start (a remote engine: nothing)."""


def default_slots() -> int:
    """How many runs train at once: ``MNIST_TRAINING_SLOTS``, else one on up to four
    cores (a second run would only slow both) and one per four cores above that."""
    if setting := os.environ.get(SLOTS_VARIABLE):
        return max(1, int(setting))
    cores = os.cpu_count() or 1
    return 1 if cores <= 4 else cores // 4


# --- the rules and estimates every backend shares (pure: no queue state of their own) ------

REPEAT_REFUSAL = (
    "these same settings were started from this browser a moment ago (one click starts one run)"
)


def rate_refusal(starts: Sequence[float], now: float, limits: Limits) -> str | None:
    """Why not, if ``starts`` (this browser's start times in the last minute, oldest first)
    already reach ``limits.starts_per_minute``."""
    if len(starts) < limits.starts_per_minute:
        return None
    wait = 60 - (now - starts[0])
    return (
        f"{len(starts)} trainings started from this browser in the last minute: "
        f"wait {wait:.0f} s before the next"
    )


def waiting_refusal(positions: Sequence[int], limits: Limits) -> str | None:
    """Why not, if this browser's waiting runs (their ``positions``, in order) already
    reach ``limits.waiting_per_owner``."""
    if len(positions) < limits.waiting_per_owner:
        return None
    return (
        f"you already have a training waiting in the queue (number {positions[0]}): "
        "cancel it, or start this one when it has begun"
    )


def check_allowed(requester: Requester, owner: str | None) -> None:
    """``NotAllowed`` unless ``requester`` may stop or cancel a run of ``owner``'s."""
    if not requester.may_act_on(owner):
        raise NotAllowed("this run was started from another browser: only its owner or "
                         "the teacher may stop or cancel it")  # fmt: skip


def job_seconds(job: TrainingJob, speed: dict[str, float], typical_images: int) -> float:
    """Seconds ``job`` should take, from its settings and ``speed`` (images a second)."""
    images = job.training.train_size or typical_images
    seconds = job.training.epochs * images / speed[job.kind]
    if job.training.time_budget:
        seconds = min(seconds, job.training.time_budget)
    return seconds + JOB_OVERHEAD


def remaining_seconds(run: TrainingRun, speed: dict[str, float], typical_images: int) -> float:
    """Seconds until ``run`` ends, estimated from its progress or its settings."""

    def seconds(job: TrainingJob) -> float:
        return job_seconds(job, speed, typical_images)

    state = run.state
    if not run.active:
        return sum(seconds(job) for job in run.jobs[run.first :])
    later = sum(seconds(job) for job in run.jobs[state.current + 1 :])
    if state.progress > 0.05:
        now = state.elapsed * (1 - state.progress) / state.progress + JOB_OVERHEAD
    else:
        now = max(seconds(state.current_job) - state.elapsed, JOB_OVERHEAD)
    return now + later


def waiting_in_order(
    runs: Sequence[TrainingRun],
    training_ends_in: Sequence[float],
    slots: int,
    remaining: Callable[[TrainingRun], float],
) -> tuple[Waiting, ...]:
    """The waiting ``runs`` (in order) with their places and estimated starts: each takes
    the slot that frees first, the training runs' slots freeing in ``training_ends_in``
    seconds and the other slots of ``slots`` now."""
    free_at = sorted(training_ends_in)
    free_at += [0.0] * (slots - len(free_at))
    waiting = []
    for position, run in enumerate(runs, start=1):
        starts_in = free_at.pop(0)
        waiting.append(Waiting(run, position, starts_in))
        free_at = sorted([*free_at, starts_in + remaining(run)])
    return tuple(waiting)


def checkpoint_epochs(models_root: Path, run: TrainingRun) -> int:
    """Epochs of the run's current job that its checkpoint holds (0: it starts over)."""
    root = Path(run.jobs[0].models_dir or models_root)
    path = checkpoint_base(root, run.id, run.first).with_suffix(".json")
    try:
        return int(json.loads(path.read_text())["epochs"])
    except (OSError, ValueError, KeyError):
        return 0


class LocalTrainingQueue:
    """The queue on this machine: ``slots`` warm worker processes, each training one run
    at a time, fed in order from the waiting list."""

    def __init__(
        self,
        models_root: Path,
        slots: int = 1,
        limits: Limits = Limits(),
        typical_train_images: int = 55_000,
        clock: Callable[[], float] = time.time,
    ):
        self.limits = limits
        self.models_root = Path(models_root)
        self.storage_error: str | None = None  # why the queue's state cannot be written
        self._typical_images = typical_train_images
        self._clock = clock
        self._lock = threading.RLock()
        threads = (os.cpu_count() or 1) // slots if slots > 1 else None
        self._workers = [
            WorkerProcess(self._listener(slot), self._on_exit(slot), threads)
            for slot in range(slots)
        ]
        self._training: list[TrainingRun | None] = [None] * slots
        self._waiting: list[TrainingRun] = []
        self._ended: deque[TrainingRun] = deque(maxlen=ENDED_KEPT)
        self._interrupted: dict[int, TrainingRun] = {}
        self._starts: dict[str, deque[float]] = {}
        self._last_submitted: dict[str, TrainingRun] = {}  # owner -> its last run
        self._ends_at: dict[int, tuple[float, float]] = {}  # run id -> (estimated at, end)
        self._speed = dict(TYPICAL_SPEED)
        self._next_id = 1
        self._load()

    # --- the interface ----------------------------------------------------------------

    def submit(self, jobs: Sequence[TrainingJob], requester: Requester) -> TrainingRun:
        if not jobs:
            raise QueueRefused("nothing to train")
        with self._lock:
            now = self._clock()
            if not requester.teacher:
                jobs = [self.limits.clamp(job)[0] for job in jobs]
            jobs = tuple(replace(job, owner=requester.owner) for job in jobs)
            if self._repeated(requester.owner, jobs, now):
                raise QueueRefused(REPEAT_REFUSAL)
            if not requester.teacher:
                self._check_fair(requester.owner, now)
            for job in jobs:
                job.check()
            run = TrainingRun(self._next_id, requester.owner, jobs, now)
            self._last_submitted[requester.owner] = run
            self._next_id += 1
            self._starts.setdefault(requester.owner, deque()).append(now)
            self._waiting.append(run)
            self._dispatch()
            return run

    def cancel(self, run_id: int, requester: Requester) -> None:
        with self._lock:
            self._forget_start(run_id)
            for run in self._waiting:
                if run.id == run_id:
                    self._allow(requester, run)
                    self._waiting.remove(run)
                    run.state = run.state.cancelled()
                    self._ended.appendleft(run)
                    self._save()
                    return
            for slot, run in enumerate(self._training):
                if run is not None and run.id == run_id:
                    self._allow(requester, run)
                    self._workers[slot].send(StopRequest(run_id))
                    return
        raise QueueRefused(f"run {run_id} has already ended")

    def clear(self, requester: Requester) -> int:
        if not requester.teacher:
            raise NotAllowed("only the teacher may clear the queue")
        with self._lock:
            waiting = list(self._waiting)
            for run in waiting:
                self.cancel(run.id, requester)
            return len(waiting)

    def resume(self, run_id: int, requester: Requester) -> TrainingRun:
        with self._lock:
            run = self._interrupted.get(run_id)
            if run is None:
                raise QueueRefused(f"run {run_id} is no longer waiting to be resumed")
            self._allow(requester, run)
            del self._interrupted[run_id]
            run.state = RunState.begin(run.jobs)
            self._waiting.append(run)
            self._dispatch()
            return run

    def discard(self, run_id: int, requester: Requester) -> None:
        with self._lock:
            run = self._interrupted.get(run_id)
            if run is None:
                return
            self._allow(requester, run)
            del self._interrupted[run_id]
            self._remove_checkpoints(run)
            self._save()

    def set_limits(self, limits: Limits, requester: Requester) -> None:
        if not requester.teacher:
            raise NotAllowed("only the teacher may change the limits")
        self.limits = limits

    def snapshot(self) -> QueueSnapshot:
        with self._lock:
            now = self._clock()
            training = tuple(run for run in self._training if run is not None)
            ends_in = [self._ends_in(run, now) for run in training]
            waiting = waiting_in_order(self._waiting, ends_in, len(self._workers), self._remaining)
            interrupted = tuple(self._interrupted.values())
            return QueueSnapshot(training, waiting, tuple(self._ended), interrupted)

    # --- the local machinery ------------------------------------------------------------

    def start_workers(self) -> None:
        """Start every worker process now, so they import TensorFlow while nobody waits."""
        for worker in self._workers:
            worker.start()

    @property
    def worker_pids(self) -> list[int]:
        return [worker.pid for worker in self._workers if worker.pid is not None]

    def shutdown(self) -> None:
        for worker in self._workers:
            worker.shutdown()

    def resumable_epochs(self, run: TrainingRun) -> int:
        """Epochs of the run's current job that its checkpoint holds (0: it starts over)."""
        return checkpoint_epochs(self.models_root, run)

    def _check_fair(self, owner: str, now: float) -> None:
        starts = self._starts.setdefault(owner, deque())
        while starts and now - starts[0] > 60:
            starts.popleft()
        if refusal := rate_refusal(starts, now, self.limits):
            raise QueueRefused(refusal)
        waiting = [
            position for position, run in enumerate(self._waiting, start=1) if run.owner == owner
        ]
        if refusal := waiting_refusal(waiting, self.limits):
            raise QueueRefused(refusal)

    def _repeated(self, owner: str, jobs: tuple[TrainingJob, ...], now: float) -> bool:
        """Whether ``owner`` started these same ``jobs`` a moment ago, and they go on: a
        double click."""
        last = self._last_submitted.get(owner)
        return bool(
            last and last.jobs == jobs and not last.state.ended
            and now - last.submitted < REPEAT_SECONDS
        )  # fmt: skip

    def _forget_start(self, run_id: int) -> None:
        """After a Cancel or a Stop, the same settings started again are meant."""
        for owner, run in list(self._last_submitted.items()):
            if run.id == run_id:
                del self._last_submitted[owner]

    def _allow(self, requester: Requester, run: TrainingRun) -> None:
        check_allowed(requester, run.owner)

    def _dispatch(self) -> None:
        for slot, run in enumerate(self._training):
            if run is None and self._waiting:
                run = self._waiting.pop(0)
                self._training[slot] = run
                run.state = run.state.sent()
                self._workers[slot].send(TrainRequest(run.id, run.jobs, run.first))
        self._save()

    def _listener(self, slot: int) -> Callable[[int, Event], None]:
        def on_event(run_id: int, event: Event) -> None:
            with self._lock:
                run = self._training[slot]
                if run is None or run.id != run_id:
                    return
                run.state = run.state.apply(event)
                if isinstance(event, ModelSaved):
                    run.first = event.index + 1
                    if run.state.images_per_s:
                        self._speed[run.jobs[event.index].kind] = run.state.images_per_s
                    self._save()
                elif isinstance(event, RunFinished | RunFailed):
                    self._end(slot)

        return on_event

    def _on_exit(self, slot: int) -> Callable[[str], None]:
        def on_exit(message: str) -> None:
            with self._lock:
                run = self._training[slot]
                if run is not None:
                    run.state = run.state.apply(RunFailed(message))
                    self._end(slot)

        return on_exit

    def _end(self, slot: int) -> None:
        run = self._training[slot]
        self._training[slot] = None
        self._ends_at.pop(run.id, None)
        if run.state.status == "failed":
            self._remove_checkpoints(run)
        self._ended.appendleft(run)
        self._dispatch()

    def _ends_in(self, run: TrainingRun, now: float) -> float:
        """Seconds until the training ``run`` ends, from an estimate that moves only every
        ``ESTIMATE_EVERY`` seconds: the same wait for every page that asks meanwhile."""
        fresh = now + self._remaining(run)
        estimated_at, ends_at = self._ends_at.get(run.id, (now, fresh))
        if now - estimated_at >= ESTIMATE_EVERY:
            estimated_at, ends_at = now, (ends_at + fresh) / 2
        self._ends_at[run.id] = (estimated_at, ends_at)
        return max(ends_at - now, JOB_OVERHEAD)

    def _remaining(self, run: TrainingRun) -> float:
        """Seconds until ``run`` ends, estimated from its progress or its settings."""
        return remaining_seconds(run, self._speed, self._typical_images)

    def _root_of(self, run: TrainingRun) -> Path:
        return Path(run.jobs[0].models_dir or self.models_root)

    def _remove_checkpoints(self, run: TrainingRun) -> None:
        remove_checkpoints(self._root_of(run), run.id)

    def _save(self) -> None:
        """Write the runs not ended; a failure is kept in ``storage_error``, not raised:
        training goes on, only a restart would not know these runs."""
        runs = [*filter(None, self._training), *self._waiting, *self._interrupted.values()]
        state = {"next_id": self._next_id, "runs": [run.to_dict() for run in runs]}
        path = self.models_root / STATE_FILE
        try:
            self.models_root.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f"{STATE_FILE}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps(state))
            os.replace(temporary, path)
            self.storage_error = None
        except OSError as error:
            self.storage_error = (
                f"the queue cannot be saved in {self.models_root}: {error}. Training goes on, "
                "but a server restart would not find these runs"
            )

    def _load(self) -> None:
        """Runs the last server left unfinished become interrupted: offered to resume."""
        path = self.models_root / STATE_FILE
        try:
            state = json.loads(path.read_text())
            runs = [TrainingRun.from_dict(run) for run in state["runs"]]
            self._next_id = int(state["next_id"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as error:
            self.storage_error = f"{path} is damaged and was ignored ({error})"
            return
        for run in runs:
            run.state = RunState.begin(run.jobs)
            self._interrupted[run.id] = run
