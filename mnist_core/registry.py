"""Trained models on disk: ``NAME.keras`` plus ``NAME.json`` metadata beside it.

The JSON is written last, so an entry exists only once its model is complete; both
are written to a temporary file and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .data import NUM_CLASSES, MnistData
from .evaluation import evaluate
from .files import write_whole
from .models import INPUT_SHAPE
from .protocol import CurvePoint

REQUIRED_FIELDS = ("kind", "config", "test_accuracy", "created")
MAX_NAME_LENGTH = 80
# An uploaded model file: the largest network the app trains (models.MAX_PARAMETERS) saves
# smaller, with its optimizer's state.
MAX_MODEL_BYTES = 100 * 2**20
SAFE_NAME = "letters, digits, '.', '_' and '-'"
ZIP_MAGIC = b"PK\x03\x04"  # how a .keras file (a zip archive) starts


class ModelLoadError(Exception):
    """A registry entry exists but its model file cannot be loaded."""


class ModelGone(ModelLoadError):
    """A model listed a moment ago whose file has gone since: deleted or renamed from
    another browser (or another server on the same folder), which is normal in a class."""

    def __init__(self, name: str):
        super().__init__(f"the model {name!r} was deleted or renamed")
        self.name = name


class ModelNotFound(ValueError):
    """No saved model has the name asked for."""


@dataclass(frozen=True)
class ModelEntry:
    """One saved model: its name, files and metadata (see ``ModelRegistry.save``)."""

    name: str
    model_path: Path
    meta: dict

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @property
    def test_accuracy(self) -> float:
        return self.meta["test_accuracy"]

    @property
    def training_curve(self) -> list[CurvePoint]:
        """The points every few batches (training metrics only), for its full curves."""
        return [
            CurvePoint.from_dict(point) for point in self.meta.get("history", {}).get("batch", [])
        ]

    @property
    def validation_curve(self) -> list[CurvePoint]:
        """The points at each epoch's end (with validation metrics), to draw its curves."""
        return [
            CurvePoint.from_dict(point) for point in self.meta.get("history", {}).get("epoch", [])
        ]

    @property
    def saved_at(self) -> datetime:
        """When it was saved (older entries say it to the second, newer ones to the
        microsecond: compared as strings, they would sort wrongly)."""
        try:
            saved = datetime.fromisoformat(self.meta["created"])
        except (KeyError, TypeError, ValueError):
            return datetime.min.replace(tzinfo=UTC)
        return saved if saved.tzinfo else saved.replace(tzinfo=UTC)

    @property
    def label(self) -> str:
        """What a selector shows: name, accuracy, and whether it was stopped early."""
        stopped = ", stopped early" if self.meta.get("stopped") else ""
        return f"{self.name} ({self.test_accuracy:.2%} test{stopped})"


def sanitize_name(name: str) -> str:
    """A file-safe model name: letters, digits, ``.``, ``_`` and ``-`` only, no dot, dash or
    underscore at either end, at most ``MAX_NAME_LENGTH`` characters."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-_")[:MAX_NAME_LENGTH].rstrip(".-_")
    if not cleaned:
        raise ValueError(f"model name {name!r} has no usable characters ({SAFE_NAME})")
    return cleaned


class ModelRegistry:
    """The models directory: ``models/`` by default, ``MNIST_MODELS_DIR`` overrides."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root or os.environ.get("MNIST_MODELS_DIR") or "models")

    def entries(self, kind: str | None = None) -> list[ModelEntry]:
        """Saved models, newest first. Corrupt entries are skipped with a warning."""
        found = []
        for meta_path in self.root.glob("*.json"):
            if meta_path.name.startswith("."):  # the queue's state, temporary files
                continue
            try:
                entry = self._read_entry(meta_path)
            except (OSError, ValueError, KeyError, TypeError) as error:
                warnings.warn(f"Skipping model entry {meta_path.name}: {error}", stacklevel=2)
                continue
            if kind is None or entry.kind == kind:
                found.append(entry)
        return sorted(found, key=_saved_at, reverse=True)

    def count(self) -> int:
        """How many models are saved, without reading their metadata (pages poll it)."""
        return sum(1 for path in self.root.glob("*.json") if not path.name.startswith("."))

    def newest(self, kind: str) -> ModelEntry | None:
        entries = self.entries(kind)
        return entries[0] if entries else None

    def get(self, name: str) -> ModelEntry:
        """The entry saved as ``name``; ``ModelNotFound`` if there is none. Only a saved name
        finds a model: another spelling (``../x``, ``my model``) is refused, not cleaned up
        into the name of a different model."""
        try:
            saved_as = sanitize_name(name)
        except ValueError:
            saved_as = None
        meta_path = self.root / f"{saved_as}.json"
        if saved_as != name:
            hint = f": did you mean {saved_as!r}?" if saved_as and meta_path.is_file() else ""
            raise ModelNotFound(f"no model named {name!r}: saved names have only {SAFE_NAME}{hint}")
        if not meta_path.is_file():
            raise ModelNotFound(f"no model named {name!r} in {self.root}")
        return self._read_entry(meta_path)

    def unique_name(self, wanted: str) -> str:
        """``wanted`` sanitized, with ``-2``, ``-3``... appended rather than overwrite."""
        base = sanitize_name(wanted)
        name, n = base, 1
        while (self.root / f"{name}.json").exists() or (self.root / f"{name}.keras").exists():
            n += 1
            name = f"{base}-{n}"
        return name

    def save(self, model, name: str, meta: dict) -> ModelEntry:
        """Save ``model`` and ``meta`` atomically under a unique version of ``name``.

        The name is claimed by hard-linking the finished model file to it, which fails if
        the name exists: two workers saving the same name on one shared folder (at the same
        moment, each having seen it free) get ``NAME`` and ``NAME-2``, never one file.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        # Keras only saves to paths ending in .keras, so the temporary file does too.
        tmp_model = self.root / f".{sanitize_name(name)}.{uuid.uuid4().hex[:12]}.tmp.keras"
        model_path = None
        try:
            model.save(tmp_model)
            name, model_path = self._claim(tmp_model, self.unique_name(name))
            meta = {
                "name": name,
                # To the microsecond: an experiment saves several models a second, in order.
                "created": datetime.now(UTC).isoformat(timespec="microseconds"),
                "params": int(model.count_params()),
                **meta,
            }
            write_whole(self.root / f"{name}.json", json.dumps(meta, indent=2), sync=False)
        except BaseException:  # a full or read-only disk: leave no part of this model behind
            for path in filter(None, (tmp_model, model_path)):
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
            raise
        return ModelEntry(name, model_path, meta)

    def _claim(self, finished: Path, name: str) -> tuple[str, Path]:
        """The first free name of ``name``, ``name-2``, ...; ``finished`` becomes its model."""
        base, number = name, 1
        while True:
            model_path = self.root / f"{name}.keras"
            try:
                os.link(finished, model_path)
            except FileExistsError:  # another writer took it meanwhile
                number += 1
                name = f"{base}-{number}"
                continue
            except OSError:  # a file system without hard links: the name as seen free
                os.replace(finished, model_path)
                return name, model_path
            finished.unlink()
            return name, model_path

    def rename(self, name: str, new_name: str) -> ModelEntry:
        """Give the model ``name`` the sanitized ``new_name``; ``ValueError`` if that is taken.

        The model file is hard-linked (copied where links are not possible) to its new name
        before the new metadata is written, and the old names go only then: a crash at any
        step leaves at worst the model listed twice, never an entry without its model.
        """
        entry = self.get(name)
        new_name = sanitize_name(new_name)
        if new_name == entry.name:
            return entry
        taken = ValueError(f"a model named {new_name!r} already exists: choose another name")
        if (self.root / f"{new_name}.json").exists() or (self.root / f"{new_name}.keras").exists():
            raise taken
        model_path = self.root / f"{new_name}.keras"
        try:
            os.link(entry.model_path, model_path)
        except FileExistsError:  # saved under that name meanwhile
            raise taken from None
        except OSError:  # a file system without hard links
            tmp_model = self.root / f".{new_name}.{os.getpid()}.tmp.keras"
            shutil.copy2(entry.model_path, tmp_model)
            os.replace(tmp_model, model_path)
        meta = {**entry.meta, "name": new_name}
        write_whole(self.root / f"{new_name}.json", json.dumps(meta, indent=2), sync=False)
        (self.root / f"{entry.name}.json").unlink()
        entry.model_path.unlink()
        return ModelEntry(new_name, model_path, meta)

    def delete(self, name: str) -> None:
        """Remove the model ``name``: its metadata first, so it is never listed without its file."""
        entry = self.get(name)
        (self.root / f"{entry.name}.json").unlink()
        entry.model_path.unlink(missing_ok=True)

    def load(self, entry: ModelEntry):
        """The Keras model of ``entry``; ``ModelLoadError`` names the file if it is broken,
        ``ModelGone`` says when it is no longer there."""
        try:
            return _load_keras(entry.model_path, f"model file {entry.model_path}")
        except ModelLoadError:
            if not entry.model_path.is_file():
                raise ModelGone(entry.name) from None
            raise

    def import_model(
        self, data: bytes, name: str, test_set: MnistData, meta_extra: dict | None = None
    ) -> ModelEntry:
        """Save an uploaded ``.keras`` file as a model of this registry, under a unique version
        of ``name``, with ``meta_extra`` in its metadata; ``ModelLoadError`` says why a file is
        refused (``ValueError`` why a name is), and then nothing is written.

        The upload is loaded in Keras's safe mode (no Lambda layer's code is run), must read
        MNIST's ``INPUT_SHAPE`` images into ``NUM_CLASSES`` outputs, as the pages feed it,
        and is measured on ``test_set``'s test digits: every page shows a model's test
        accuracy, and an uploaded file's own claim would not be comparable, or true.
        """
        sanitize_name(name)  # an unusable name is refused before any work
        if len(data) > MAX_MODEL_BYTES:
            raise ModelLoadError(
                f"the file is {len(data) / 2**20:.0f} MB; the limit is "
                f"{MAX_MODEL_BYTES / 2**20:.0f} MB"
            )
        if not data.startswith(ZIP_MAGIC):
            raise ModelLoadError("this is not a .keras model file (those are zip archives)")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "upload.keras"  # Keras reads only files named .keras
            path.write_bytes(data)
            model = _load_keras(path, "this .keras file")
        shapes = {"input": tuple(model.input_shape[1:]), "output": tuple(model.output_shape[1:])}
        if shapes != {"input": INPUT_SHAPE, "output": (NUM_CLASSES,)}:
            raise ModelLoadError(
                f"the model reads {shapes['input']} inputs into {shapes['output']} outputs; "
                f"the app feeds {INPUT_SHAPE} grey images and needs {NUM_CLASSES} outputs, "
                "one for each digit"
            )
        try:
            result = evaluate(model, test_set)
        except Exception as error:  # a layer that builds but cannot run: anything Keras raises
            raise ModelLoadError(
                f"the model fails on MNIST's digits ({type(error).__name__}: {error})"
            ) from error
        meta = {
            "kind": "cnn" if _has_convolutions(model) else "ann",
            "config": {},
            "imported": True,
            "test_accuracy": result.accuracy,
            "test_loss": result.loss,
            **(meta_extra or {}),
        }
        return self.save(model, name, meta)

    def _read_entry(self, meta_path: Path) -> ModelEntry:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("metadata is not a JSON object")
        missing = [f for f in REQUIRED_FIELDS if f not in meta]
        if missing:
            raise ValueError(f"metadata lacks {missing}")
        model_path = meta_path.with_suffix(".keras")
        if not model_path.is_file():
            raise ValueError(f"model file {model_path.name} is missing")
        return ModelEntry(meta_path.stem, model_path, meta)


def _saved_at(entry: ModelEntry) -> tuple[datetime, str]:
    """When ``entry`` was saved, then its name: the registry's order."""
    return entry.saved_at, entry.name


def _load_keras(path: Path, what: str):
    """The Keras model in ``path``, loaded in safe mode (code in a file is never run);
    ``ModelLoadError`` starting with ``what`` says why it cannot be."""
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a damaged archive.
        reason = f"{type(error).__name__}: {error}"
        if "safe_mode" in str(error):
            reason = "it holds Python code, e.g. a Lambda layer, which is never run from a file"
        raise ModelLoadError(f"{what} cannot be loaded ({reason})") from error


def _has_convolutions(model) -> bool:
    """Whether any layer of ``model``, or of a model inside it, is a convolution."""
    import keras

    return any(
        isinstance(layer, keras.layers.Conv2D)
        or (hasattr(layer, "layers") and _has_convolutions(layer))
        for layer in model.layers
    )
