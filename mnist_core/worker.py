"""Training in a warm worker process, watched from the web server through a ``TrainingRun``.

Why a process and not a thread: on two cores, Keras training in a thread starves the
Streamlit server (page refreshes every 2-3 s instead of 0.5 s); a separate process keeps
it responsive and isolates crashes. The worker imports TensorFlow once, at start-up, so a
Start button does not wait for it. One run trains at a time per service: training is
CPU-bound, and a second run would only slow both.

The worker is a fresh interpreter (``python -m mnist_core.worker``) speaking JSON lines
on its stdin and stdout. ``multiprocessing``'s spawn would re-run the page script in the
child, because Streamlit executes ``app.py`` as ``__main__``. When the server dies, the
worker sees its stdin close, stops after the current batch, saves, and exits.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
import traceback

from .data import load_mnist
from .jobs import TrainingJob

_run_ids = itertools.count(1)


class TrainingBusy(Exception):
    """Raised by ``TrainingService.start`` while another run is training."""


class TrainingRun:
    """One or more jobs trained in sequence, seen from the server: progress, history, result.

    Updated by the service's listener thread, read by any number of page sessions:
    every read goes through ``snapshot()``, which copies under a lock.
    """

    def __init__(self, jobs: list[TrainingJob], request_stop):
        self.id = next(_run_ids)
        self.jobs = list(jobs)
        self._request_stop = request_stop
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
        self._request_stop(self.id)

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
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._run: TrainingRun | None = None
        self._ensure_worker()

    @property
    def current(self) -> TrainingRun | None:
        """The latest run, active or finished (``None`` before the first)."""
        return self._run

    @property
    def worker_pid(self) -> int:
        return self._process.pid

    def start(self, jobs: list[TrainingJob]) -> TrainingRun:
        """Send ``jobs`` to the worker, or raise ``TrainingBusy`` if a run is training."""
        with self._lock:
            if self._run is not None and self._run.active:
                raise TrainingBusy(self._run.busy_message())
            self._ensure_worker()
            self._run = TrainingRun(jobs, self._send_stop)
            self._send({"op": "train", "run_id": self._run.id,
                        "jobs": [job.to_dict() for job in jobs]})
            return self._run

    def shutdown(self) -> None:
        """Close the worker's stdin: it stops any run after the current batch and exits."""
        if self._process is not None:
            self._process.stdin.close()
            self._process.wait(timeout=60)

    def _send(self, message: dict) -> None:
        self._process.stdin.write(json.dumps(message) + "\n")
        self._process.stdin.flush()

    def _send_stop(self, run_id: int) -> None:
        with self._lock:
            if self._process.poll() is None:
                self._send({"op": "stop", "run_id": run_id})

    def _ensure_worker(self) -> None:
        if self._process is None or self._process.poll() is not None:
            package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mnist_core.worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                env={**os.environ, "PYTHONPATH": path},
            )
            threading.Thread(target=self._listen, args=(self._process,),
                             name="training-listener", daemon=True).start()

    def _listen(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            message = json.loads(line)
            run = self._run
            if run is not None and run.id == message["run_id"]:
                run.handle(message["event"])
        code = process.wait()
        run = self._run
        if run is not None and run.active:
            run.handle({"type": "error", "message": (
                f"the training process died (exit code {code}); models saved before are kept")})


def main() -> None:
    """The worker: train each job it is sent, reporting events, until stdin closes."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # stray prints from libraries must not corrupt the protocol
    from . import training  # imports TensorFlow now, so that Start does not wait for it

    requests: queue.Queue = queue.Queue()
    stopped: set[int] = set()  # runs asked to stop (0: all, the server is gone)
    threading.Thread(target=_read_requests, args=(requests, stopped), daemon=True).start()
    send_lock = threading.Lock()
    datasets = {}
    while (message := requests.get()) is not None:
        run_id = message["run_id"]

        def send(event, run_id=run_id):
            with send_lock:
                protocol.write(json.dumps({"run_id": run_id, "event": event}) + "\n")

        def should_stop(run_id=run_id):
            return run_id in stopped or 0 in stopped

        try:
            for index, job in enumerate(map(TrainingJob.from_dict, message["jobs"])):
                if should_stop():
                    break
                send({"type": "job_start", "index": index})
                send({"type": "status", "message": "loading MNIST"})
                if job.data_path not in datasets:
                    datasets[job.data_path] = load_mnist(job.data_path)
                entry = training.train(job, datasets[job.data_path], send, should_stop)
                send({"type": "saved", "index": index, "meta": entry.meta})
            send({"type": "finished", "stopped": should_stop()})
        except Exception as error:  # reported to the page, never swallowed
            traceback.print_exc()
            send({"type": "error", "message": f"{type(error).__name__}: {error}"})


def _read_requests(requests: queue.Queue, stopped: set[int]) -> None:
    """Stdin reader: stop requests act at once, even while a job trains; EOF means quit."""
    for line in sys.stdin:
        message = json.loads(line)
        if message["op"] == "stop":
            stopped.add(message["run_id"])
        else:
            requests.put(message)
    stopped.add(0)
    requests.put(None)


if __name__ == "__main__":
    main()
