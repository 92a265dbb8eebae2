"""The training run's one schema: what training reports, what the server asks, what a run is.

Training (``training.train``) reports ``Event``s through a callback. In the app, the worker
process sends them to the server as JSON lines, and the server folds them into the run's
``RunState``, which the pages draw; the CLI draws the same events as a progress bar.

    server -> worker   TrainRequest, StopRequest (one JSON object a line; EOF: the server is gone)
    worker -> server   {"run_id": N, "event": {"type": "<event class>", ...its fields}}

Every record is a frozen dataclass, so a reader sees every field a writer can send.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Literal

from .jobs import TrainingJob


@dataclass(frozen=True)
class CurvePoint:
    """One point of the training curves: metrics after a batch or at an epoch's end.

    Validation metrics exist only at epoch ends. Saved models keep their points in the
    registry's metadata (``history``), so old models draw their curves too.
    """

    epoch: int  # 1-based
    step: int  # batches trained so far in the run
    epochs_seen: float  # images seen / training images: the curves' x axis
    progress: float  # share of the run done, 0-1 (steps or time budget, whichever is further)
    elapsed: float  # seconds of training so far
    images_per_s: float
    loss: float
    accuracy: float
    val_loss: float | None = None
    val_accuracy: float | None = None

    @classmethod
    def from_dict(cls, data: dict) -> CurvePoint:
        """A point from saved metadata, ignoring keys older versions stored beside these."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class SavedModel:
    """What a run tells about a model it saved (the registry holds the rest)."""

    name: str
    kind: str
    test_accuracy: float
    epochs: float  # fractional when stopped mid-epoch
    train_seconds: float
    stopped: bool
    # Trained on a drawings set as well: its name, and how the model reads the set's
    # writers it did not learn from (``None``: too few writers to hold some out).
    drawings: str | None = None
    held_out_writers: int = 0
    held_out_accuracy: float | None = None

    @classmethod
    def from_meta(cls, meta: dict) -> SavedModel:
        """From the metadata the registry saved beside the model."""
        drawn = meta.get("drawings") or {}
        return cls(
            **{
                f.name: meta[f.name] for f in fields(cls) if f.name in meta and f.name != "drawings"
            },
            drawings=drawn.get("set"),
            held_out_writers=drawn.get("held_out_writers", 0),
            held_out_accuracy=drawn.get("held_out_accuracy"),
        )


# --- events: training -> whoever watches --------------------------------------------------


@dataclass(frozen=True)
class JobStarted:
    index: int  # which of the run's jobs


@dataclass(frozen=True)
class StatusChanged:
    message: str  # what is happening now, for people: "loading MNIST", "evaluating..."


@dataclass(frozen=True)
class Progressed:
    point: CurvePoint
    epoch_end: bool  # True at an epoch's end (with validation metrics), else after a batch


@dataclass(frozen=True)
class ModelSaved:
    index: int
    model: SavedModel


@dataclass(frozen=True)
class RunFinished:
    stopped: bool  # by the user's Stop or the server going away, not the time budget


@dataclass(frozen=True)
class RunFailed:
    message: str  # the error, for people


Event = JobStarted | StatusChanged | Progressed | ModelSaved | RunFinished | RunFailed
EVENT_TYPES = {cls.__name__: cls for cls in Event.__args__}


def encode_event(run_id: int, event: Event) -> str:
    """One JSON line for the worker's stdout."""
    return json.dumps({"run_id": run_id, "event": {"type": type(event).__name__, **asdict(event)}})


def decode_event(line: str) -> tuple[int, Event]:
    """(run id, event) from a line made by ``encode_event``."""
    message = json.loads(line)
    data = dict(message["event"])
    cls = EVENT_TYPES[data.pop("type")]
    if cls is Progressed:
        data["point"] = CurvePoint(**data["point"])
    elif cls is ModelSaved:
        data["model"] = SavedModel(**data["model"])
    return message["run_id"], cls(**data)


# --- requests: server -> worker -----------------------------------------------------------


@dataclass(frozen=True)
class TrainRequest:
    run_id: int
    jobs: tuple[TrainingJob, ...]
    first: int = 0  # the job to start from: a resumed run skips the jobs it saved


@dataclass(frozen=True)
class StopRequest:
    run_id: int  # stop after the current batch and save the model so far


Request = TrainRequest | StopRequest

CHECKPOINTS = ".checkpoints"  # in the models folder: hidden, so never listed as a model


def checkpoint_base(models_root: Path, run_id: int, index: int) -> Path:
    """Where the worker keeps job ``index`` of run ``run_id``'s last epoch (``.keras`` and
    ``.json``), and where the server looks for it to resume the run after a crash."""
    return Path(models_root) / CHECKPOINTS / f"run-{run_id}-job-{index}"


def remove_checkpoints(models_root: Path, run_id: int) -> None:
    """Every checkpoint of run ``run_id`` (a failed or discarded run's: nothing resumes it)."""
    for path in (Path(models_root) / CHECKPOINTS).glob(f"run-{run_id}-job-*"):
        path.unlink(missing_ok=True)


def encode_request(request: Request) -> str:
    if isinstance(request, TrainRequest):
        jobs = [job.to_dict() for job in request.jobs]
        message = {"op": "train", "run_id": request.run_id, "jobs": jobs, "first": request.first}
        return json.dumps(message)
    return json.dumps({"op": "stop", "run_id": request.run_id})


def decode_request(line: str) -> Request:
    message = json.loads(line)
    if message["op"] == "train":
        jobs = tuple(TrainingJob.from_dict(job) for job in message["jobs"])
        return TrainRequest(message["run_id"], jobs, message["first"])
    return StopRequest(message["run_id"])


# --- the run's state, as the server sees it ------------------------------------------------

Status = Literal["queued", "starting", "training", "finished", "stopped", "failed", "cancelled"]


@dataclass(frozen=True)
class RunState:
    """A run of one or more jobs at one moment. Immutable: ``apply`` returns the next state,
    so a page reading it while the listener thread applies events sees one consistent state.
    """

    jobs: tuple[TrainingJob, ...]
    status: Status = "queued"
    message: str = "waiting in the queue"
    current: int = 0  # index of the job training now (or last)
    progress: float = 0.0  # of the current job, 0-1
    elapsed: float = 0.0  # seconds of the current job's training
    images_per_s: float = 0.0
    batches: tuple[tuple[CurvePoint, ...], ...] = ()  # per job: the points after batches
    epochs: tuple[tuple[CurvePoint, ...], ...] = ()  # per job: the points at epoch ends
    saved: tuple[SavedModel, ...] = ()
    error: str | None = None

    @classmethod
    def begin(cls, jobs: tuple[TrainingJob, ...]) -> RunState:
        """The state of a run of ``jobs`` waiting in the queue, before any event."""
        return cls(jobs, batches=((),) * len(jobs), epochs=((),) * len(jobs))

    def sent(self) -> RunState:
        """The state once the run is sent to a worker."""
        return replace(self, status="starting", message="starting the training process")

    def cancelled(self) -> RunState:
        """The state of a waiting run taken out of the queue."""
        return replace(self, status="cancelled", message="cancelled before it started")

    @property
    def active(self) -> bool:
        """Sent to a worker and not ended."""
        return self.status in ("starting", "training")

    @property
    def waiting(self) -> bool:
        return self.status == "queued"

    @property
    def ended(self) -> bool:
        return self.status in ("finished", "stopped", "failed", "cancelled")

    @property
    def current_job(self) -> TrainingJob:
        return self.jobs[self.current]

    @property
    def overall_progress(self) -> float:
        """Share of the whole run done, counting finished jobs as complete."""
        if self.status in ("finished", "stopped"):
            return 1.0
        return (self.current + self.progress) / len(self.jobs)

    def apply(self, event: Event) -> RunState:
        """The state after ``event``."""
        if isinstance(event, JobStarted):
            kind = self.jobs[event.index].kind.upper()
            return replace(
                self,
                status="training",
                current=event.index,
                progress=0.0,
                message=f"training {kind}",
            )
        if isinstance(event, StatusChanged):
            return replace(self, message=event.message)
        if isinstance(event, Progressed):
            history = "epochs" if event.epoch_end else "batches"
            points = list(getattr(self, history))
            points[self.current] = (*points[self.current], event.point)
            return replace(
                self,
                **{history: tuple(points)},
                progress=event.point.progress,
                elapsed=event.point.elapsed,
                images_per_s=event.point.images_per_s,
            )
        if isinstance(event, ModelSaved):
            return replace(self, saved=(*self.saved, event.model))
        if isinstance(event, RunFinished):
            status = "stopped" if event.stopped else "finished"
            return replace(self, status=status, message=status)
        if isinstance(event, RunFailed):
            return replace(self, status="failed", message="failed", error=event.message)
        raise TypeError(f"not a training event: {event!r}")
