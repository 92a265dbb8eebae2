"""Training in a warm worker process; ``WorkerProcess`` is the server's handle on one.

Why a process and not a thread: on two cores, Keras training in a thread starves the
Streamlit server (page refreshes every 2-3 s instead of 0.5 s); a separate process keeps
it responsive and isolates crashes. The worker imports TensorFlow once, at start-up, so a
Start button does not wait for it, and trains one run after another while it lives. The
queue (``training_queue.py``) decides what each worker trains and when.

The worker is a fresh interpreter (``python -m mnist_core.worker``) speaking JSON lines
on its stdin and stdout: the requests and events of ``protocol.py``. ``multiprocessing``'s
spawn would re-run the page script in the child, because Streamlit executes ``app.py`` as
``__main__``. Each job keeps a checkpoint of its last whole epoch; when the server dies,
the worker sees its stdin close and exits at once, and the restarted server offers to
resume the run from that checkpoint.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable

from .data import load_mnist
from .protocol import (
    Event,
    JobStarted,
    ModelSaved,
    Request,
    RunFailed,
    RunFinished,
    SavedModel,
    StatusChanged,
    StopRequest,
    TrainRequest,
    checkpoint_base,
    decode_event,
    decode_request,
    encode_event,
    encode_request,
)
from .registry import ModelRegistry


class WorkerProcess:
    """The server's handle on one warm worker process: send it requests, hear its events.

    ``on_event(run_id, event)`` is called from a listener thread for every event, and
    ``on_exit(message)`` once if the process dies, saying how, for the run it was training.
    A dead process is replaced by a fresh one at the next ``send``.
    """

    def __init__(
        self,
        on_event: Callable[[int, Event], None],
        on_exit: Callable[[str], None],
        threads: int | None = None,
    ):
        self._on_event, self._on_exit = on_event, on_exit
        self._threads = threads
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start the process now, if it is not running, so that it imports TensorFlow
        while nobody waits, not when somebody presses Start."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = self._spawn()

    def send(self, request: Request) -> None:
        """Send ``request``, starting a fresh process first if the last one died."""
        self.start()
        with self._lock:
            try:
                self._process.stdin.write(encode_request(request) + "\n")
                self._process.stdin.flush()
            except (BrokenPipeError, ValueError):  # died just now: the listener reports it
                pass

    def shutdown(self) -> None:
        """Close the worker's stdin: it exits at once, leaving any run's last checkpoint."""
        with self._lock:
            process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.stdin.close()
            process.wait(timeout=60)

    def _spawn(self) -> subprocess.Popen:
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        if self._threads:
            env[THREADS_VARIABLE] = str(self._threads)
        process = subprocess.Popen(
            [sys.executable, "-m", "mnist_core.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=env,
            # A session of its own: where Linux schedules by session (autogroups, on by default
            # on desktops), the server and the training are two groups sharing the cores
            # evenly. The server, one Python process, rarely wants more than a core, so its
            # answers stay prompt and training keeps the rest; in the server's group, the
            # server's threads crowded training out (bench/load.py, thirty drawing sessions:
            # 1,834 images/s there, 2,350-3,010 in a group of its own). It also keeps the
            # terminal's Ctrl+C from the worker: it exits when the server closes its stdin.
            start_new_session=True,
        )
        threading.Thread(
            target=self._listen, args=(process,), name="training-listener", daemon=True
        ).start()
        return process

    def _listen(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self._on_event(*decode_event(line))
        code = process.wait()
        if self._process is process:  # not a shutdown: it died
            self._on_exit(death_message(code))


def death_message(code: int) -> str:
    """Why a worker process ended, for people."""
    if code < 0:
        name = signal.Signals(-code).name
        why = {
            "SIGKILL": "killed (by someone, or by the system when memory ran out)",
            "SIGSEGV": "crashed (segmentation fault)",
            "SIGTERM": "terminated",
        }.get(name, "ended by a signal")
        return f"the training process was {why}: {name}. Models saved before are kept."
    return f"the training process died (exit code {code}). Models saved before are kept."


THREADS_VARIABLE = "MNIST_WORKER_THREADS"  # CPU threads a worker may use, when several train
WORKER_NICENESS = 10


def main() -> None:
    """The worker: train each run it is sent, reporting events, until stdin closes."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # stray prints from libraries must not corrupt the protocol
    # Below the web server where the kernel ranks processes, not sessions (macOS, or a server
    # run as a service): when thirty browsers draw, their predictions come first.
    os.nice(WORKER_NICENESS)
    warm_up()
    if threads := os.environ.get(THREADS_VARIABLE):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    runs: queue.Queue[TrainRequest] = queue.Queue()
    stop_asked: set[int] = set()
    threading.Thread(target=_read_requests, args=(runs, stop_asked), daemon=True).start()
    send_lock = threading.Lock()
    datasets: dict = {}
    while True:
        request = runs.get()

        def send(event: Event, run_id: int = request.run_id) -> None:
            with send_lock:
                protocol.write(encode_event(run_id, event) + "\n")

        def should_stop(run_id: int = request.run_id) -> bool:
            return run_id in stop_asked

        train_request(request, send, should_stop, datasets)


def warm_up() -> None:
    """Import TensorFlow and the training code now, so that a Start does not wait for it."""
    from . import training  # noqa: F401


class HandedBack(Exception):  # noqa: N818 - not an error: the run goes back to the queue
    """Raised by ``should_stop`` when the run must go back to the queue unsaved (its
    worker shuts down): it resumes elsewhere from its last epoch checkpoint."""


def train_request(
    request: TrainRequest,
    send: Callable[[Event], None],
    should_stop: Callable[[], bool],
    datasets: dict,
) -> None:
    """Train the request's jobs from ``request.first`` on, reporting every event to
    ``send`` and, last, ``RunFinished`` or ``RunFailed``; ``datasets`` keeps the data sets
    loaded between runs. Both kinds of worker (this process, a Celery worker) train so."""
    from . import training

    try:
        for index in range(request.first, len(request.jobs)):
            job = request.jobs[index]
            if should_stop():
                break
            send(JobStarted(index))
            send(StatusChanged("loading MNIST"))
            if job.data_path not in datasets:
                datasets[job.data_path] = load_mnist(job.data_path)
            base = checkpoint_base(ModelRegistry(job.models_dir).root, request.run_id, index)
            checkpoint = training.Checkpoint(base)
            entry = training.train(
                job, datasets[job.data_path], send, should_stop, checkpoint=checkpoint
            )
            send(ModelSaved(index, SavedModel.from_meta(entry.meta)))
        send(RunFinished(stopped=should_stop()))
    except HandedBack:
        raise
    except training.TrainingDiverged as error:
        send(RunFailed(f"Training stopped: {error}"))
    except OSError as error:  # the models folder: read-only, full, gone
        send(RunFailed(f"The model could not be saved: {error}. Models saved before are kept."))
    except Exception as error:  # reported to the page, never swallowed
        traceback.print_exc()
        send(RunFailed(f"{type(error).__name__}: {error}"))


def _read_requests(runs: queue.Queue, stop_asked: set[int]) -> None:
    """Stdin reader: stop requests act at once, even while a job trains. EOF means the
    server is gone: the worker exits at once, like a crash, so that the run's last epoch
    checkpoint is where the restarted server offers to resume it."""
    for line in sys.stdin:
        request = decode_request(line)
        if isinstance(request, StopRequest):
            stop_asked.add(request.run_id)
        else:
            runs.put(request)
    os._exit(0)


if __name__ == "__main__":
    main()
