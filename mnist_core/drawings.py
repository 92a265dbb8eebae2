"""Real people's handwriting: sets of digits written as pen strokes, read, checked, and seen
as the networks see a drawing on the Draw page.

A drawings file is JSON lines, one digit a line: ``{"digit": 7, "writer": "ana", "source":
"lyon", "strokes": [[[x, y], ...], ...]}``, each stroke the points of one pen-down, y down,
in any units (a tablet's, a canvas's). Each digit is placed on the Draw page's canvas as a
person would draw it (any size, anywhere), drawn with the canvas's brush and read through the
page's own preprocessing (``preprocessing.preprocess_canvas``): a figure measured here is the
figure a class would see on the page.

The drawings folder (``drawings/`` beside ``models/``, ``MNIST_DRAWINGS_DIR`` overrides)
holds named sets: a file ``NAME.jsonl`` (or ``NAME.jsonl.gz``), or a folder ``NAME/`` of
digits kept one a file (``*.json``, one such object each) and imported files (``*.jsonl``),
which is how the class's own sets grow (``class_drawings``): each file is written whole,
never a half-written set.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .data import IMAGE_SIZE, NUM_CLASSES
from .evaluation import TestDigits
from .preprocessing import BRUSH_SIZE, CANVAS_SIZE, ImageError, preprocess_canvas
from .strokes import placed, render

SUFFIXES = (".jsonl", ".jsonl.gz")
MAX_POINTS = 5_000  # in one digit: UNIPEN's longest has 693; a mouse reports ~100
MAX_STROKES = 50
MAX_FAULTS_SHOWN = 5
MAX_FILE_BYTES = 200 * 2**20
MAX_WRITER_LENGTH = 100


class DrawingsError(ValueError):
    """A drawings file or set that cannot be used; the message names the file, the line and
    the fault, for the user."""


@dataclass(frozen=True)
class Drawing:
    """One handwritten digit: its label, who wrote it, and its strokes as (n, 2) arrays."""

    digit: int
    writer: str
    strokes: tuple[np.ndarray, ...]
    source: str | None = None
    # Kept on the Draw page: the browser that kept it (``Requester.owner``), when (epoch
    # seconds), and its 28x28 input as the networks saw it (uint8).
    owner: str | None = None
    kept_at: float | None = None
    image: np.ndarray | None = None
    key: str = ""  # where it is in its set (``class_drawings.ClassSet.delete`` takes it)


@dataclass(frozen=True)
class DrawingSet:
    """A named set of drawings read from one file."""

    name: str
    path: Path
    drawings: tuple[Drawing, ...]

    @property
    def labels(self) -> np.ndarray:
        return np.array([d.digit for d in self.drawings], dtype=np.int64)

    @property
    def writers(self) -> list[str]:
        return [d.writer for d in self.drawings]

    @property
    def sources(self) -> list[str]:
        return [d.source or "unknown" for d in self.drawings]

    def summary(self) -> SetSummary:
        counts = Counter(self.labels.tolist())
        return SetSummary(
            name=self.name,
            count=len(self.drawings),
            writers=len(set(self.writers)),
            per_digit=tuple(counts.get(digit, 0) for digit in range(NUM_CLASSES)),
        )


@dataclass(frozen=True)
class SetSummary:
    """What the drawings folder lists for each set."""

    name: str
    count: int
    writers: int
    per_digit: tuple[int, ...]


@dataclass(frozen=True)
class SeenDrawings:
    """A set's digits as the networks see them: (N, 28, 28) float32 inputs in [0, 1], and
    the digits the page would not read (a dot, say): drawn as blank, counted wrong."""

    images: np.ndarray
    unread: np.ndarray  # (N,) bool


def parse_drawing(line: str) -> Drawing:
    """One line of a drawings file as a ``Drawing``; ``ValueError`` says what is wrong."""
    try:
        record = json.loads(line, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(record, dict):
        raise ValueError(f"a JSON object was expected, not {type(record).__name__}")
    missing = [key for key in ("digit", "writer", "strokes") if key not in record]
    if missing:
        raise ValueError(f"no {' or '.join(repr(key) for key in missing)}")
    digit, writer, source = record["digit"], record["writer"], record.get("source")
    if isinstance(digit, bool) or not isinstance(digit, int) or not 0 <= digit < NUM_CLASSES:
        raise ValueError(f"digit must be a whole number 0-9, got {digit!r}")
    if not isinstance(writer, str) or not writer.strip() or len(writer) > MAX_WRITER_LENGTH:
        raise ValueError(f"writer must be a name of 1-{MAX_WRITER_LENGTH} characters")
    if source is not None and not isinstance(source, str):
        raise ValueError(f"source must be text, got {source!r}")
    owner, kept_at = record.get("owner"), record.get("kept_at")
    if owner is not None and not isinstance(owner, str):
        raise ValueError(f"owner must be text, got {owner!r}")
    if kept_at is not None and (isinstance(kept_at, bool) or not isinstance(kept_at, int | float)):
        raise ValueError(f"kept_at must be seconds since 1970, got {kept_at!r}")
    strokes = checked_strokes(record["strokes"])
    image = _checked_image(record["image"]) if record.get("image") is not None else None
    return Drawing(digit, writer.strip(), strokes, source, owner, kept_at, image)


def to_record(drawing: Drawing, kept: bool = True) -> dict:
    """``drawing`` as one line of a drawings file; without what only a kept set needs
    (the browser, the time, the 28x28) when ``kept`` is false: the shared strokes format."""
    record = {
        "digit": drawing.digit,
        "writer": drawing.writer,
        **({"source": drawing.source} if drawing.source else {}),
        "strokes": [np.round(stroke, 1).tolist() for stroke in drawing.strokes],
    }
    if kept:
        record |= {"owner": drawing.owner, "kept_at": drawing.kept_at}
        if drawing.image is not None:
            record["image"] = base64.b64encode(drawing.image.astype(np.uint8).tobytes()).decode()
    return record


def _checked_image(text) -> np.ndarray:
    try:
        raw = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != IMAGE_SIZE * IMAGE_SIZE:
        raise ValueError(f"image must be {IMAGE_SIZE}x{IMAGE_SIZE} bytes in base64")
    return np.frombuffer(raw, dtype=np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a coordinate")


def checked_strokes(strokes) -> tuple[np.ndarray, ...]:
    """``strokes`` (lists of ``[x, y]``) as arrays, or ``ValueError`` saying what is wrong:
    none, too many points, a point that is not two finite non-negative numbers, a dot."""
    if not isinstance(strokes, list) or not strokes:
        raise ValueError("no strokes: 'strokes' must be a list of strokes, each a list of [x, y]")
    if len(strokes) > MAX_STROKES:
        raise ValueError(f"{len(strokes):,} strokes; a digit has at most {MAX_STROKES}")
    points = sum(len(stroke) if isinstance(stroke, list) else 0 for stroke in strokes)
    if points > MAX_POINTS:
        raise ValueError(f"{points:,} points; a digit has at most {MAX_POINTS:,}")
    checked = []
    for number, stroke in enumerate(strokes, start=1):
        if not isinstance(stroke, list) or not stroke:
            raise ValueError(f"stroke {number} is not a list of [x, y] points")
        if any(not _is_point(point) for point in stroke):
            raise ValueError(f"stroke {number} has a point that is not [x, y] (two numbers)")
        array = np.asarray(stroke, dtype=np.float64)
        if not np.isfinite(array).all():
            raise ValueError(f"stroke {number} has a coordinate that is not a finite number")
        if (array < 0).any():
            raise ValueError(f"stroke {number} has a negative coordinate (the digit starts at 0)")
        checked.append(array)
    if np.ptp(np.concatenate(checked), axis=0).max() == 0:
        raise ValueError("a single point: a dot is not a digit")
    return tuple(checked)


def _is_point(point) -> bool:
    return (
        isinstance(point, list)
        and len(point) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)
    )


def read_drawings(
    path: str | os.PathLike, name: str | None = None, allow_empty: bool = False
) -> DrawingSet:
    """Every digit of a drawings file (``.jsonl``, or ``.jsonl.gz``) or of a set's folder,
    checked.

    Raises ``DrawingsError`` naming the file and each bad line (the first few, and how many
    more) with its fault; nothing of a file with a bad line is used. An empty set is an
    error unless ``allow_empty`` (a class's set before anyone kept a digit).
    """
    path = Path(path)
    drawings = _read_folder(path) if path.is_dir() else _read_lines(path)
    if not drawings and not allow_empty:
        what = "no digits kept in it yet" if path.is_dir() else "no digits in it"
        raise DrawingsError(f"{path.name} has {what} (one JSON object a line).")
    return DrawingSet(name or set_name(path), path, tuple(drawings))


def _read_lines(path: Path, key_prefix: str = "") -> list[Drawing]:
    drawings, faults = [], []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            drawing = parse_drawing(line)
        except ValueError as error:
            faults.append(f"line {number}: {error}")
        else:
            drawings.append(replace(drawing, key=f"{key_prefix}{number}"))
    if faults:
        shown = "; ".join(faults[:MAX_FAULTS_SHOWN])
        more = len(faults) - MAX_FAULTS_SHOWN
        also = f" (and {more:,} more bad lines)" if more > 0 else ""
        raise DrawingsError(f"{path.name}: {shown}{also}. Nothing of it was used.")
    return drawings


def _read_folder(folder: Path) -> list[Drawing]:
    """A set's folder: each kept digit's ``.json`` file, then each imported ``.jsonl``, in
    the order they were written (their names start with the time)."""
    drawings = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix == ".json":
            try:
                drawing = parse_drawing(_read_text(path))
            except ValueError as error:
                raise DrawingsError(f"{folder.name}/{path.name}: {error}.") from None
            drawings.append(replace(drawing, key=path.name))
        elif path.suffix == ".jsonl":
            drawings += _read_lines(path, key_prefix=f"{path.name}:")
    return drawings


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DrawingsError(
                f"{path.name} is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB."
            )
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise DrawingsError(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise DrawingsError(f"{path} is a folder, not a drawings file.") from None
    except (OSError, EOFError, zlib.error) as error:
        raise DrawingsError(f"{path.name} cannot be read: {error}.") from None
    except UnicodeDecodeError:
        raise DrawingsError(f"{path.name} is not text (JSON lines in UTF-8).") from None


def set_name(path: Path) -> str:
    """A set's name: its file name without ``.jsonl`` or ``.jsonl.gz``."""
    for suffix in SUFFIXES[::-1]:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


class DrawingsFolder:
    """The folder of named drawings sets: ``drawings/`` by default, ``MNIST_DRAWINGS_DIR``
    overrides."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root or os.environ.get("MNIST_DRAWINGS_DIR") or "drawings")

    def paths(self) -> dict[str, Path]:
        """Each set's name and file, by name."""
        if not self.root.is_dir():
            return {}
        found = {}
        for path in sorted(self.root.iterdir()):
            if path.name.startswith("."):
                continue
            if path.is_dir() or (path.is_file() and path.name.endswith(SUFFIXES)):
                found.setdefault(set_name(path), path)
        return found

    def names(self) -> list[str]:
        return list(self.paths())

    def summaries(self) -> tuple[list[SetSummary], list[str]]:
        """Each readable set's summary, and for each unreadable one why (the others are
        still listed)."""
        summaries, problems = [], []
        for path in self.paths().values():
            try:
                summaries.append(read_drawings(path, allow_empty=True).summary())
            except DrawingsError as error:
                problems.append(str(error))
        return summaries, problems

    def load(self, name_or_file: str | os.PathLike, allow_empty: bool = False) -> DrawingSet:
        """The set of that name in this folder, or the drawings file at that path."""
        paths = self.paths()
        if str(name_or_file) in paths:
            return read_drawings(paths[str(name_or_file)], allow_empty=allow_empty)
        path = Path(name_or_file)
        if path.is_file():
            return read_drawings(path, allow_empty=allow_empty)
        known = ", ".join(paths) if paths else "none yet"
        raise DrawingsError(
            f"No drawings set or file named {str(name_or_file)!r}: the sets in "
            f"{self.root} are: {known}."
        )


def seen_by_networks(
    drawings: Sequence[Drawing],
    seed: int = 0,
    brush: int = BRUSH_SIZE,
    on_progress: Callable[[float], None] = lambda done: None,
) -> SeenDrawings:
    """Each digit drawn on the canvas and read by the Draw page's preprocessing.

    Each digit's place and size on the canvas are drawn at random from ``seed`` and its
    position in the list, so the same set reads the same every time.
    """
    images = np.zeros((len(drawings), IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    unread = np.zeros(len(drawings), dtype=bool)
    step = max(1, len(drawings) // 50)
    for index, drawing in enumerate(drawings):
        seen = canvas_reading(drawing, np.random.default_rng((seed, index)), brush)
        if seen is None:
            unread[index] = True
        else:
            images[index] = seen
        if (index + 1) % step == 0 or index + 1 == len(drawings):
            on_progress((index + 1) / len(drawings))
    return SeenDrawings(images, unread)


def canvas_reading(
    drawing: Drawing, rng: np.random.Generator, brush: int = BRUSH_SIZE
) -> np.ndarray | None:
    """``drawing`` placed on the canvas by ``rng``, drawn with ``brush`` and preprocessed as
    the Draw page does: the 28x28 input, or ``None`` where the page reads no digit."""
    rgba = render(placed(drawing.strokes, rng, brush, CANVAS_SIZE), CANVAS_SIZE, brush)
    try:
        result = preprocess_canvas(rgba)
    except ImageError:
        return None
    return None if result is None else result.image


def test_digits(
    drawings: DrawingSet, seed: int = 0, on_progress: Callable[[float], None] = lambda done: None
) -> TestDigits:
    """``drawings`` as test digits, seen as the Draw page sees them (a digit the page would
    not read is a blank input)."""
    seen = seen_by_networks(drawings.drawings, seed, on_progress=on_progress)
    version = f"drawings:{drawings.path}:{drawings.path.stat().st_mtime_ns}:{seed}"
    return TestDigits(
        drawings.name,
        version,
        seen.images,
        drawings.labels,
        tuple(drawings.writers),
        tuple(drawings.sources),
    )


def writer_split(
    drawings: Sequence[Drawing], share: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the drawings of a random ``share`` of the writers, and of the rest: no
    writer on both sides (a writer on both makes a split look better than it is)."""
    writers = sorted({d.writer for d in drawings})
    rng = np.random.default_rng(seed)
    count = min(max(1, round(share * len(writers))), len(writers))
    chosen = set(rng.choice(writers, count, replace=False).tolist())
    inside = np.array([d.writer in chosen for d in drawings])
    return np.flatnonzero(inside), np.flatnonzero(~inside)
