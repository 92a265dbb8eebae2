"""Training in a warm worker process, watched from the web server through a ``TrainingRun``.

Why a process and not a thread: on two cores, Keras training in a thread starves the
Streamlit server (page refreshes every 2-3 s instead of 0.5 s); a spawned process keeps
it responsive and isolates crashes. The worker imports TensorFlow once, at start-up, so a
Start button does not wait for it. One run trains at a time per service: training is
CPU-bound, and a second run would only slow both.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import threading
import time
import traceback

from .data import load_mnist
from .training import TrainingJob

_run_ids = itertools.count(1)


class TrainingBusy(Exception):
    """Raised by ``TrainingService.start`` while another run is training."""


class TrainingRun:
    """One or more jobs trained in sequence, seen from the server: progress, history, result.

    Updated by the service's listener thread, read by any number of page sessions:
    every read goes through ``snapshot()``, which copies under a lock.
    """

    def __init__(self, jobs: list[TrainingJob], stop_event):
        self.id = next(_run_ids)
        self.jobs = list(jobs)
        self._stop_event = stop_event
        self._lock = threading.Lock()
        self._state = {
            "status": "starting",  # starting, training, finished, stopped, failed
            "message": "starting the training process",
            "current": 0,
            "progress": 0.0,
            "elapsed": 0.0,
            "images_per_s": 0.0,
            "batches": [[] for _ in self.jobs],
            "epochs": [[] for _ in self.jobs],
            "saved": [],  # metadata of each model saved so far
            "error": None,
            "started": time.time(),
        }

    def stop(self) -> None:
        """Ask the worker to stop after the current batch; the model so far is saved."""
        self._stop_event.set()

    def snapshot(self) -> dict:
        with self._lock:
            state = dict(self._state)
            state["batches"] = [list(b) for b in state["batches"]]
            state["epochs"] = [list(e) for e in state["epochs"]]
            state["saved"] = list(state["saved"])
        state["active"] = state["status"] in ("starting", "training")
        state["kind"] = self.jobs[min(state["current"], len(self.jobs) - 1)].kind
        return state

    @property
    def active(self) -> bool:
        return self.snapshot()["active"]

    def busy_message(self) -> str:
        state = self.snapshot()
        job = self.jobs[min(state["current"], len(self.jobs) - 1)]
        name = f" '{job.name}'" if job.name else ""
        return f"busy: {job.kind.upper()}{name} is training, {self.overall_progress(state):.0%} done"

    def overall_progress(self, state: dict | None = None) -> float:
        """Fraction of the whole run done, counting finished jobs as complete."""
        state = state or self.snapshot()
        if state["status"] in ("finished", "stopped"):
            return 1.0
        return (state["current"] + state["progress"]) / len(self.jobs)

    def handle(self, event: dict) -> None:
        """Apply one event from the worker (called by the listener thread)."""
        kind = event["type"]
        with self._lock:
            state = self._state
            if kind == "job_start":
                state.update(status="training", current=event["index"], progress=0.0,
                             message=f"training {self.jobs[event['index']].kind.upper()}")
            elif kind in ("batch", "epoch"):
                history = state["batches" if kind == "batch" else "epochs"]
                history[state["current"]].append(event)
                state.update(progress=event["progress"], elapsed=event["elapsed"],
                             images_per_s=event["images_per_s"])
            elif kind == "status":
                state["message"] = event["message"]
            elif kind == "saved":
                state["saved"].append(event["meta"])
            elif kind == "finished":
                state.update(status="stopped" if event["stopped"] else "finished",
                             message="stopped" if event["stopped"] else "finished")
            elif kind == "error":
                state.update(status="failed", message="failed", error=event["message"])


class TrainingService:
    """Owns the warm worker process and the current ``TrainingRun`` (one at a time)."""

    def __init__(self):
        context = multiprocessing.get_context("spawn")
        self._context = context
        self._jobs = context.Queue()
        self._events = context.Queue()
        self._stop = context.Event()
        self._lock = threading.Lock()
        self._process = None
        self._run: TrainingRun | None = None
        self._ensure_worker()
        threading.Thread(target=self._listen, name="training-listener", daemon=True).start()

    @property
    def current(self) -> TrainingRun | None:
        """The latest run, active or finished (``None`` before the first)."""
        return self._run

    def start(self, jobs: list[TrainingJob]) -> TrainingRun:
        """Queue ``jobs`` on the worker, or raise ``TrainingBusy`` if a run is training."""
        with self._lock:
            if self._run is not None and self._run.active:
                raise TrainingBusy(self._run.busy_message())
            self._ensure_worker()
            self._stop.clear()
            self._run = TrainingRun(jobs, self._stop)
            self._jobs.put({"run_id": self._run.id, "jobs": [job.to_dict() for job in jobs]})
            return self._run

    def shutdown(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._stop.set()
            self._jobs.put(None)
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.terminate()

    def _ensure_worker(self) -> None:
        if self._process is None or not self._process.is_alive():
            self._process = self._context.Process(
                target=_worker_main, name="mnist-training-worker", daemon=True,
                args=(self._jobs, self._events, self._stop, os.getpid()),
            )
            self._process.start()

    def _listen(self) -> None:
        while True:
            try:
                run_id, event = self._events.get(timeout=1.0)
            except queue.Empty:
                run = self._run
                if run is not None and run.active and not self._process.is_alive():
                    run.handle({"type": "error", "message": (
                        f"the training process died (exit code {self._process.exitcode}); "
                        "models saved before are kept")})
                continue
            run = self._run
            if run is not None and run.id == run_id:
                run.handle(event)


def _worker_main(jobs, events, stop_event, parent_pid: int) -> None:
    """The worker's loop: train each job it is sent, reporting events, until told to quit."""
    from . import training  # imports TensorFlow now, so that Start does not wait for it

    datasets = {}
    while True:
        try:
            message = jobs.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent_pid:  # the server died: do not linger as an orphan
                return
            continue
        if message is None:
            return
        send = lambda event, run_id=message["run_id"]: events.put((run_id, event))  # noqa: E731
        try:
            for index, job in enumerate(map(TrainingJob.from_dict, message["jobs"])):
                if stop_event.is_set():
                    break
                send({"type": "job_start", "index": index})
                send({"type": "status", "message": "loading MNIST"})
                if job.data_path not in datasets:
                    datasets[job.data_path] = load_mnist(job.data_path)
                entry = training.train(job, datasets[job.data_path], send, stop_event.is_set)
                send({"type": "saved", "index": index, "meta": entry.meta})
            send({"type": "finished", "stopped": stop_event.is_set()})
        except Exception as error:  # reported to the page, never swallowed
            send({"type": "error", "message": f"{type(error).__name__}: {error}",
                  "traceback": traceback.format_exc()})
