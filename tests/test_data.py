import functools
import gzip
import http.server
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mnist_core.data import (
    DataError,
    examples_by_digit,
    keras_cache_path,
    load_mnist,
    stratified_indices,
    stratified_subset,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "mnist"
IDX_MAGIC = {3: 2051, 1: 2049}


def synthetic_arrays(n_train=60, n_test=20, seed=0) -> dict[str, np.ndarray]:
    """Random images with MNIST's layout (not MNIST: never copy the data set)."""
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }


def write_idx(path: Path, array: np.ndarray, compress=True) -> None:
    header = IDX_MAGIC[array.ndim].to_bytes(4, "big")
    header += b"".join(n.to_bytes(4, "big") for n in array.shape)
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def write_idx_folder(folder: Path, arrays, compress=True) -> Path:
    names = {
        "x_train": "train-images-idx3-ubyte",
        "y_train": "train-labels-idx1-ubyte",
        "x_test": "t10k-images-idx3-ubyte",
        "y_test": "t10k-labels-idx1-ubyte",
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in names.items():
        write_idx(folder / (name + (".gz" if compress else "")), arrays[key], compress)
    return folder


def test_explicit_npz(tmp_path):
    arrays = synthetic_arrays()
    np.savez(tmp_path / "mnist.npz", **arrays)
    data = load_mnist(tmp_path / "mnist.npz", download=False)
    assert data.origin == "path" and not data.is_sample
    np.testing.assert_array_equal(data.x_train, arrays["x_train"])
    np.testing.assert_array_equal(data.y_test, arrays["y_test"])
    assert "60 training and 20 test digits" in data.description


@pytest.mark.parametrize("compress", [True, False])
def test_idx_folder_gz_or_raw(tmp_path, compress):
    arrays = synthetic_arrays()
    folder = write_idx_folder(tmp_path / "idx", arrays, compress)
    data = load_mnist(folder, download=False)
    np.testing.assert_array_equal(data.x_test, arrays["x_test"])
    np.testing.assert_array_equal(data.y_train, arrays["y_train"])


def test_mnist_data_environment_variable(tmp_path, monkeypatch):
    np.savez(tmp_path / "env.npz", **synthetic_arrays(n_train=30))
    monkeypatch.setenv("MNIST_DATA", str(tmp_path / "env.npz"))
    assert len(load_mnist(download=False).x_train) == 30


def test_truncated_idx_names_file_and_sizes(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", synthetic_arrays())
    images = folder / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(images.read_bytes())
    images.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: truncated"):
        load_mnist(folder)


def test_corrupt_gzip_is_an_error(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", synthetic_arrays())
    labels = folder / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:20])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: cannot read"):
        load_mnist(folder)


def test_missing_idx_file_is_named(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", synthetic_arrays())
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="no t10k-labels-idx1-ubyte"):
        load_mnist(folder)


def test_truncated_npz(tmp_path):
    np.savez(tmp_path / "mnist.npz", **synthetic_arrays())
    path = tmp_path / "mnist.npz"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match=r"mnist\.npz: not a readable MNIST \.npz"):
        load_mnist(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda a: a.update(x_train=a["x_train"][:, :27]),
            r"x_train should be uint8 \(N, 28, 28\)",
        ),
        (lambda a: a.update(x_test=a["x_test"].astype(np.float32)), "x_test should be uint8"),
        (lambda a: a.update(y_train=a["y_train"][:-1]), "y_train has shape"),
        (lambda a: a.update(y_test=a["y_test"] + 10), "labels outside 0-9"),
        (lambda a: a.pop("y_test"), "missing arrays"),
    ],
)
def test_wrong_content_is_refused(tmp_path, change, message):
    arrays = synthetic_arrays()
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_mnist(tmp_path / "bad.npz")


def test_missing_explicit_path(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_mnist(tmp_path / "nowhere.npz")


def test_valid_keras_cache_is_used():
    cache = keras_cache_path()
    cache.parent.mkdir(parents=True)
    np.savez(cache, **synthetic_arrays(n_train=40))
    data = load_mnist(download=False)
    assert data.origin == "keras-cache" and len(data.x_train) == 40


def test_broken_cache_and_failed_download_fall_back_to_sample(closed_port_url):
    cache = keras_cache_path()
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning):
        data = load_mnist(url=closed_port_url, timeout=2)
    assert data.is_sample
    assert any("Skipped Keras's cache" in note and "mnist.npz" in note for note in data.notes)
    assert any("Could not download MNIST" in note for note in data.notes)
    assert "MNIST_DATA" in data.description  # tells the user how to get the full set


def test_download_that_hangs_times_out(hanging_url):
    started = time.monotonic()
    with pytest.warns(UserWarning, match="timed out"):
        data = load_mnist(url=hanging_url, timeout=1)
    assert time.monotonic() - started < 10
    assert data.is_sample
    assert not list(keras_cache_path().parent.glob("*.part"))  # no half-written file left


def test_download_fills_keras_cache(tmp_path):
    source = tmp_path / "served"
    source.mkdir()
    np.savez(source / "mnist.npz", **synthetic_arrays(n_train=50))
    with serve_folder(source) as port:
        data = load_mnist(url=f"http://127.0.0.1:{port}/mnist.npz", timeout=5)
    assert data.origin == "keras-download" and len(data.x_train) == 50
    assert load_mnist(download=False).origin == "keras-cache"


def test_offline_sample_is_real_and_balanced():
    data = load_mnist("sample")
    assert data.is_sample and "offline MNIST sample" in data.description
    assert data.x_train.shape == (4000, 28, 28) and data.x_test.shape == (1000, 28, 28)
    assert data.x_train.dtype == np.uint8 and data.x_train.max() == 255
    assert np.bincount(data.y_test).tolist() == [100] * 10
    # Real digits: ink in the middle, empty borders (random noise would fill them).
    assert data.x_train[:, 12:16, 12:16].mean() > 5 * data.x_train[:, :2, :].mean()


def test_stratified_subset_is_balanced(mnist):
    x, y = stratified_subset(mnist.x_train, mnist.y_train, 500, seed=3)
    assert len(x) == 500 and np.bincount(y, minlength=10).tolist() == [50] * 10
    again = stratified_indices(mnist.y_train, 500, seed=3)
    np.testing.assert_array_equal(mnist.y_train[again], y)
    with pytest.raises(ValueError, match="subset size"):
        stratified_indices(mnist.y_train, 5)


def test_examples_by_digit_are_ordered(mnist):
    images, labels = examples_by_digit(mnist, per_digit=2)
    assert images.shape == (20, 28, 28)
    assert labels.tolist() == [d for d in range(10) for _ in range(2)]
    first = np.flatnonzero((mnist.x_test == images[0]).all(axis=(1, 2)))
    assert mnist.y_test[first[0]] == 0


@pytest.mark.skipif(not SHARED.is_dir(), reason="full MNIST not beside the checkout")
def test_full_mnist_npz_and_idx_agree():
    npz = load_mnist(SHARED / "mnist.npz")
    idx = load_mnist(SHARED)
    assert npz.x_train.shape == (60000, 28, 28) and npz.x_test.shape == (10000, 28, 28)
    np.testing.assert_array_equal(npz.x_test, idx.x_test)
    np.testing.assert_array_equal(npz.y_train, idx.y_train)


# --- local servers standing in for an unreachable or stalled download -------------------


@pytest.fixture
def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist.npz"


@pytest.fixture
def hanging_url():
    """A server that accepts the connection and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/mnist.npz"
    server.close()


class serve_folder:
    def __init__(self, folder: Path):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.server.server_address[1]

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
