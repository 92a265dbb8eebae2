"""A school on this machine: one Redis, Celery workers, app replicas behind nginx, as
``deploy/`` and the README's classroom section set them up; and the figures of issue 21.

    python -m bench.school [--stops N] [--pollers P] [--load-seconds S] [--no-load]

Starts Debian's ``redis-server`` (AOF on), two workers (``python -m mnist_core worker``),
two replicas (``streamlit run app.py`` with ``MNIST_QUEUE``) on one models folder (a copy
of $MNIST_MODELS_DIR, or /work/models-full) and nginx with the shipped site in front, all
on free localhost ports, stopped after. Then measures:

- Stop: N runs started on one replica, each stopped (the teacher's Stop) from the other
  once it trains: seconds from the Stop to the run ended as the first replica sees it.
- The queue's snapshot, what every page polls: P sessions (half on each replica, sharing
  their replica's queue as the app's sessions do) polling twice a second while a run
  trains: the latency of each poll.
- A worker killed with ``kill -9`` mid-run: seconds until the run trains on the other,
  epochs it had checkpointed and the epoch it resumed after, and that it finished.
- ``bench.load`` through nginx: 30 websocket sessions drawing (and two pressing Start)
  while a CNN trains on the workers: errors.

Ends with one JSON line. The classes here are the tests' too (tests/conftest.py,
tests/test_replicas.py): one way to start each service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "deploy" / "nginx-mnist-live.conf"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
MODELS = "/work/models-full"
TARGETS = {"stop_p95_s": 3.0, "snapshot_p95_ms": 20.0, "resume_s": 60.0, "load_errors": 0}


class RedisServer:
    """Debian's ``redis-server`` on a free localhost port, its append-only file (AOF) in
    ``directory``: what a school runs, with nothing saved but the AOF."""

    def __init__(self, directory: Path):
        self.directory = directory
        with socket.socket() as probe:  # a free port, kept across restarts
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self.directory), "--appendonly", "yes", "--save", ""]
        log = (self.directory / "redis.log").open("a")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start: see {self.directory}/redis.log")
            time.sleep(0.02)

    def answers(self) -> bool:
        """Whether it answers PING (spoken as RESP by hand: no client library needed)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: a clean shutdown; SIGKILL: a crash (the AOF is all that is left)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        self.process = None


class CeleryWorker:
    """``python -m mnist_core worker`` in a process group of its own (its Celery processes
    with it), as a school starts one; its output in ``log``."""

    def __init__(self, url: str, models: Path, log: Path, env: dict | None = None):
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        command = [sys.executable, "-m", "mnist_core", "worker", "--queue", url]
        self.process = subprocess.Popen(
            [*command, "--models-dir", str(models)],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.node = f"mnist-{os.uname().nodename}-{self.process.pid}"

    def signal(self, sig: int) -> None:
        os.killpg(self.process.pid, sig)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGKILL)
            self.process.wait(timeout=30)


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Nginx:
    """nginx on a free port with the shipped site, its upstreams the given replicas and
    its files in ``directory``; ``served()`` reads its log: (cookie key, replica) a line."""

    def __init__(self, directory: Path, replicas: list[str]):
        self.directory, self.port = directory, free_port()
        site = SITE.read_text().replace("listen 80;", f"listen 127.0.0.1:{self.port};")
        site = site.replace("/var/log/nginx/mnist-live.log", str(directory / "access.log"))
        servers = "".join(f"    server {r} max_fails=1 fail_timeout=10s;\n" for r in replicas)
        site = re.sub(r"(    server 127\.0\.0\.1:85\d\d .*\n)+", servers, site)
        temporary = " ".join(
            f"{kind}_temp_path {directory}/{kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (directory / "nginx.conf").write_text(
            f"pid {directory}/nginx.pid; error_log {directory}/error.log; daemon off;\n"
            f"events {{}}\nhttp {{ {temporary}\n{site}\n}}\n"
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [NGINX, "-p", str(directory), "-c", str(directory / "nginx.conf")],
            stderr=(directory / "nginx.out").open("w"),
        )
        deadline = time.monotonic() + 10
        while not self._answers():
            assert self.process.poll() is None, (directory / "nginx.out").read_text()
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def served(self) -> list[tuple[str, str]]:
        lines = (self.directory / "access.log").read_text().splitlines()
        return [tuple(line.split(" ")[1:3]) for line in lines]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


TEACHER = "the school's passphrase"


@contextmanager
def school(base: Path, models_source: Path, data: str, workers: int = 2, replicas: int = 2):
    """Redis, ``workers`` workers and ``replicas`` replicas on one models folder (a copy of
    ``models_source``), nginx in front; yields (redis, workers, [(url, process)], nginx)."""
    from bench.browser import running_app
    from mnist_core.celery_queue import PREFIX, connect, key_of

    models = base / "models"
    models.mkdir()
    for path in [*models_source.glob("*.keras"), *models_source.glob("*.json")]:
        shutil.copy(path, models)
    redis_server = RedisServer(base)
    redis_server.start()
    env = {"MNIST_QUEUE": redis_server.url, "MNIST_TEACHER_PASSPHRASE": TEACHER,
           "MNIST_DRAWINGS_DIR": str(base / "drawings")}  # fmt: skip
    started = [
        CeleryWorker(redis_server.url, models, base / f"worker-{n}.log", {"MNIST_DATA": data})
        for n in range(workers)
    ]
    client = connect(redis_server.url)
    deadline = time.monotonic() + 120
    while not all(client.zscore(key_of(PREFIX, "workers"), w.node) for w in started):
        assert time.monotonic() < deadline, "the workers did not start: see worker-*.log"
        time.sleep(0.2)
    try:
        with ExitStack() as stack:
            served = [
                stack.enter_context(running_app(str(models), data, env=env))
                for _ in range(replicas)
            ]
            nginx = Nginx(base, [url.removeprefix("http://") for url, _ in served])
            stack.callback(nginx.stop)
            yield redis_server, started, served, nginx
    finally:
        for worker in started:
            worker.stop()
        redis_server.stop()


def _percentile(values: list[float], share: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else None


def _job(models: Path, epochs: int, name: str):
    from mnist_core.jobs import TrainingConfig, TrainingJob
    from mnist_core.models import AnnConfig

    return TrainingJob(
        AnnConfig(hidden_units=(128,)),
        TrainingConfig(epochs=epochs, batch_size=32, train_size=6000),
        name=name,
        models_dir=str(models),
    )


def _wait(condition, timeout: float, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        time.sleep(every)
    return value


def _state(queue, run_id: int):
    snapshot = queue.snapshot()
    runs = [*snapshot.training, *(w.run for w in snapshot.waiting), *snapshot.ended]
    return next((run.state for run in runs if run.id == run_id), None)


def measure_stops(queues, models: Path, count: int) -> list[float]:
    """Seconds from the teacher's Stop on one replica to the run ended on the other."""
    from mnist_core.training_queue import Requester

    first, second = queues
    teacher = Requester("bench-teacher", teacher=True)
    seconds = []
    for number in range(count):
        run = first.submit([_job(models, 200, f"stop-{number}")], Requester(f"stopper-{number}"))
        _wait(lambda run=run: (s := _state(second, run.id)) and s.batches and s.batches[0], 120)
        time.sleep(1.0)  # well into training
        pressed = time.monotonic()
        second.cancel(run.id, teacher)
        _wait(lambda run=run: _state(first, run.id).ended, 60, every=0.02)
        seconds.append(time.monotonic() - pressed)
    return seconds


def measure_snapshots(queues, models: Path, pollers: int, seconds: float) -> list[float]:
    """Each poll's milliseconds: ``pollers`` sessions polling twice a second while a run trains."""
    from mnist_core.training_queue import Requester

    run = queues[0].submit([_job(models, 200, "polled")], Requester("polled"))
    _wait(lambda: (s := _state(queues[1], run.id)) and s.status == "training", 120)
    timings: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def poll(queue) -> None:
        while time.monotonic() < stop_at:
            began = time.perf_counter()
            queue.snapshot()
            with lock:
                timings.append((time.perf_counter() - began) * 1000)
            time.sleep(0.5)

    threads = [threading.Thread(target=poll, args=(queues[n % 2],)) for n in range(pollers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queues[0].cancel(run.id, Requester("polled"))
    _wait(lambda: _state(queues[0], run.id).ended, 60)
    return timings


def measure_kill(queues, workers, models: Path, client) -> dict:
    """A worker killed with ``kill -9`` mid-run: how the run went on on the other."""
    from mnist_core.celery_queue import PREFIX, key_of
    from mnist_core.protocol import StatusChanged, checkpoint_base
    from mnist_core.training_queue import Requester

    run = queues[0].submit([_job(models, 12, "killed-mid-run")], Requester("killed"))
    progress = checkpoint_base(models, run.id, 0).with_suffix(".json")
    _wait(lambda: progress.exists() and json.loads(progress.read_text())["epochs"] >= 3, 300)
    checkpointed = json.loads(progress.read_text())["epochs"]
    trained_by = client.hget(key_of(PREFIX, "run", run.id), "worker")
    killed = next(w for w in workers if trained_by.startswith(w.node + "/"))
    killed.signal(signal.SIGKILL)
    killed_at = time.monotonic()

    def on_another() -> bool:
        worker = client.hget(key_of(PREFIX, "run", run.id), "worker") or ""
        return bool(worker) and not worker.startswith(killed.node + "/")

    _wait(on_another, 180, every=0.2)
    resumed_in = time.monotonic() - killed_at
    state = _wait(lambda: (s := _state(queues[1], run.id)).ended and s, 600)
    said = [e.message for _, e in queues[1].events(run.id) if isinstance(e, StatusChanged)]
    resumed = [int(m.rsplit(" ", 1)[1]) for m in said if "resumed after epoch" in m]
    return {
        "checkpointed_epochs_at_kill": checkpointed,
        "resumed_after_epoch": resumed[0] if resumed else None,
        "seconds_to_resume": round(resumed_in, 1),
        "status": state.status,
    }


def measure_load(lb_url: str, replica_pid: int, seconds: float) -> dict:
    """``bench.load`` through nginx: websocket sessions drawing, two pressing Start."""
    from bench.load import Settings, measure

    settings = Settings(drawers=30, real=0, queuers=2, seconds=seconds, unloaded_seconds=15,
                        keep=False, keep_timings=0)  # fmt: skip
    report = asyncio.run(measure(lb_url, replica_pid, settings))
    return {
        "sessions": settings.drawers + settings.queuers,
        "errors": report.errors,
        "examples": report.error_examples[:5],
        "drawings_shown": report.drawings_shown,
        "draw_p95_s": report.latency_p95_s,
        "training_images_per_s": report.training_images_per_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.school", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--stops", type=int, default=10)
    parser.add_argument("--pollers", type=int, default=30)
    parser.add_argument("--poll-seconds", type=float, default=30)
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument("--no-load", dest="load", action="store_false")
    options = parser.parse_args(argv)
    for command, package in (("redis-server", "redis-server"), (NGINX, "nginx-light")):
        if not command or not shutil.which(command):
            print(f"cannot run: {package} is not installed (apt-get install {package})")
            return 2
    from mnist_core.celery_queue import CeleryTrainingQueue, connect

    data = os.environ.get("MNIST_DATA", "/work/shared/mnist/mnist.npz")
    source = Path(os.environ.get("MNIST_MODELS_DIR", MODELS))
    figures: dict = {}
    with ExitStack() as stack:
        base = stack.enter_context(tempfile.TemporaryDirectory(prefix="school-"))
        redis_server, workers, served, nginx = stack.enter_context(school(Path(base), source, data))
        models = Path(base) / "models"
        print(f"Redis {redis_server.url}, workers {[w.node for w in workers]}, "
              f"replicas {[url for url, _ in served]}, nginx {nginx.url}")  # fmt: skip
        queues = [CeleryTrainingQueue(redis_server.url, models) for _ in served]
        stops = measure_stops(queues, models, options.stops)
        figures["stop_s"] = {"p50": round(_percentile(stops, 0.5), 2),
                             "p95": round(_percentile(stops, 0.95), 2),
                             "max": round(max(stops), 2), "count": len(stops)}  # fmt: skip
        print(f"Stop on one replica to stopped on the other: {figures['stop_s']}")
        polls = measure_snapshots(queues, models, options.pollers, options.poll_seconds)
        figures["snapshot_ms"] = {"p50": round(_percentile(polls, 0.5), 2),
                                  "p95": round(_percentile(polls, 0.95), 2),
                                  "max": round(max(polls), 2), "count": len(polls),
                                  "pollers": options.pollers}  # fmt: skip
        print(f"snapshot, {options.pollers} polling sessions: {figures['snapshot_ms']}")
        figures["killed_worker"] = measure_kill(queues, workers, models, connect(redis_server.url))
        print(f"a worker killed mid-run: {figures['killed_worker']}")
        if options.load:
            log = Path(base) / "worker-3.log"  # two again: the killed one's successor
            workers.append(CeleryWorker(redis_server.url, models, log, {"MNIST_DATA": data}))
            figures["load_through_nginx"] = measure_load(
                nginx.url, served[0][1].pid, options.load_seconds
            )
            print(f"bench.load through nginx: {figures['load_through_nginx']}")
        for queue in queues:
            queue.shutdown()
    killed = figures["killed_worker"]
    figures["passed"] = {
        "stop": figures["stop_s"]["p95"] <= TARGETS["stop_p95_s"],
        "snapshot": figures["snapshot_ms"]["p95"] <= TARGETS["snapshot_p95_ms"],
        "killed_worker": killed["status"] == "finished"
        and killed["seconds_to_resume"] <= TARGETS["resume_s"]
        and (killed["resumed_after_epoch"] or 0) >= killed["checkpointed_epochs_at_kill"],
        **({"load": figures["load_through_nginx"]["errors"] == 0} if options.load else {}),
    }
    print(json.dumps(figures))
    return 0 if all(figures["passed"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
