"""Training in a warm worker process, watched from the web server through a ``TrainingRun``.

Why a process and not a thread: on two cores, Keras training in a thread starves the
Streamlit server (page refreshes every 2-3 s instead of 0.5 s); a separate process keeps
it responsive and isolates crashes. The worker imports TensorFlow once, at start-up, so a
Start button does not wait for it. One run trains at a time per service: training is
CPU-bound, and a second run would only slow both.

The worker is a fresh interpreter (``python -m mnist_core.worker``) speaking JSON lines
on its stdin and stdout: the requests and events of ``protocol.py``. ``multiprocessing``'s
spawn would re-run the page script in the child, because Streamlit executes ``app.py`` as
``__main__``. When the server dies, the worker sees its stdin close, stops after the
current batch, saves, and exits.
"""

from __future__ import annotations

import itertools
import os
import queue
import subprocess
import sys
import threading
import traceback

from .data import load_mnist
from .jobs import TrainingJob
from .protocol import (
    Event,
    JobStarted,
    ModelSaved,
    Request,
    RunFailed,
    RunFinished,
    RunState,
    SavedModel,
    StatusChanged,
    StopRequest,
    TrainRequest,
    decode_event,
    decode_request,
    encode_event,
    encode_request,
)

_run_ids = itertools.count(1)


class TrainingBusy(Exception):
    """Raised by ``TrainingService.start`` while another run is training."""


class TrainingRun:
    """One or more jobs trained in sequence, seen from the server: its id, jobs and state.

    The service's listener thread replaces ``state`` with the next ``RunState`` at each
    event; any number of page sessions read it (each read is one consistent snapshot).
    """

    def __init__(self, jobs: list[TrainingJob], request_stop):
        self.id = next(_run_ids)
        self.jobs = tuple(jobs)
        self.state = RunState.begin(self.jobs)
        self._request_stop = request_stop

    @property
    def active(self) -> bool:
        return self.state.active

    def stop(self) -> None:
        """Ask the worker to stop after the current batch; the model so far is saved."""
        self._request_stop(self.id)

    def busy_message(self) -> str:
        state = self.state
        job = state.current_job
        name = f" '{job.name}'" if job.name else ""
        return f"busy: {job.kind.upper()}{name} is training, {state.overall_progress:.0%} done"

    def handle(self, event: Event) -> None:
        """Apply one event from the worker (called by the listener thread only)."""
        self.state = self.state.apply(event)


class TrainingService:
    """Owns the warm worker process and the current ``TrainingRun`` (one at a time)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._run: TrainingRun | None = None

    @property
    def current(self) -> TrainingRun | None:
        """The latest run, active or finished (``None`` before the first)."""
        return self._run

    @property
    def worker_pid(self) -> int:
        return self._process.pid

    def start_worker(self) -> None:
        """Start the worker now (if it is not running), so that it imports TensorFlow
        while nobody waits, not when somebody presses Start."""
        with self._lock:
            self._ensure_worker()

    def start(self, jobs: list[TrainingJob]) -> TrainingRun:
        """Send ``jobs`` to the worker, or raise ``TrainingBusy`` if a run is training."""
        with self._lock:
            if self._run is not None and self._run.active:
                raise TrainingBusy(self._run.busy_message())
            self._ensure_worker()
            self._run = TrainingRun(jobs, self._send_stop)
            self._send(TrainRequest(self._run.id, self._run.jobs))
            return self._run

    def shutdown(self) -> None:
        """Close the worker's stdin: it stops any run after the current batch and exits."""
        if self._process is not None:
            self._process.stdin.close()
            self._process.wait(timeout=60)

    def _send(self, request: Request) -> None:
        self._process.stdin.write(encode_request(request) + "\n")
        self._process.stdin.flush()

    def _send_stop(self, run_id: int) -> None:
        with self._lock:
            if self._process.poll() is None:
                self._send(StopRequest(run_id))

    def _ensure_worker(self) -> None:
        if self._process is None or self._process.poll() is not None:
            package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mnist_core.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
                env={**os.environ, "PYTHONPATH": path},
            )
            threading.Thread(
                target=self._listen, args=(self._process,), name="training-listener", daemon=True
            ).start()

    def _listen(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            run_id, event = decode_event(line)
            run = self._run
            if run is not None and run.id == run_id:
                run.handle(event)
        code = process.wait()
        run = self._run
        if run is not None and run.active:
            run.handle(
                RunFailed(
                    f"the training process died (exit code {code}); models saved before are kept"
                )
            )


def main() -> None:
    """The worker: train each run it is sent, reporting events, until stdin closes."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # stray prints from libraries must not corrupt the protocol
    from . import training  # imports TensorFlow now, so that Start does not wait for it

    runs: queue.Queue[TrainRequest | None] = queue.Queue()
    stop_asked: set[int] = set()
    server_gone = threading.Event()
    threading.Thread(
        target=_read_requests, args=(runs, stop_asked, server_gone), daemon=True
    ).start()
    send_lock = threading.Lock()
    datasets = {}
    while (request := runs.get()) is not None:

        def send(event: Event, run_id: int = request.run_id) -> None:
            with send_lock:
                protocol.write(encode_event(run_id, event) + "\n")

        def should_stop(run_id: int = request.run_id) -> bool:
            return run_id in stop_asked or server_gone.is_set()

        try:
            for index, job in enumerate(request.jobs):
                if should_stop():
                    break
                send(JobStarted(index))
                send(StatusChanged("loading MNIST"))
                if job.data_path not in datasets:
                    datasets[job.data_path] = load_mnist(job.data_path)
                entry = training.train(job, datasets[job.data_path], send, should_stop)
                send(ModelSaved(index, SavedModel.from_meta(entry.meta)))
            send(RunFinished(stopped=should_stop()))
        except Exception as error:  # reported to the page, never swallowed
            traceback.print_exc()
            send(RunFailed(f"{type(error).__name__}: {error}"))


def _read_requests(runs: queue.Queue, stop_asked: set[int], server_gone: threading.Event) -> None:
    """Stdin reader: stop requests act at once, even while a job trains; EOF means quit."""
    for line in sys.stdin:
        request = decode_request(line)
        if isinstance(request, StopRequest):
            stop_asked.add(request.run_id)
        else:
            runs.put(request)
    server_gone.set()
    runs.put(None)


if __name__ == "__main__":
    main()
