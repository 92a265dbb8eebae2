"""Trained models on disk: ``NAME.keras`` plus ``NAME.json`` metadata beside it.

The JSON is written last, so an entry exists only once its model is complete; both
are written to a temporary file and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .protocol import CurvePoint

REQUIRED_FIELDS = ("kind", "config", "test_accuracy", "created")


class ModelLoadError(Exception):
    """A registry entry exists but its model file cannot be loaded."""


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
    def label(self) -> str:
        """What a selector shows: name, accuracy, and whether it was stopped early."""
        stopped = ", stopped early" if self.meta.get("stopped") else ""
        return f"{self.name} ({self.test_accuracy:.2%} test{stopped})"


def sanitize_name(name: str) -> str:
    """A file-safe model name: letters, digits, ``.``, ``_`` and ``-`` only, no leading dot."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-_")
    if not cleaned:
        raise ValueError(f"model name {name!r} has no usable characters")
    return cleaned[:80]


class ModelRegistry:
    """The models directory: ``models/`` by default, ``MNIST_MODELS_DIR`` overrides."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root or os.environ.get("MNIST_MODELS_DIR") or "models")

    def entries(self, kind: str | None = None) -> list[ModelEntry]:
        """Saved models, newest first. Corrupt entries are skipped with a warning."""
        found = []
        for meta_path in self.root.glob("*.json"):
            try:
                entry = self._read_entry(meta_path)
            except (OSError, ValueError, KeyError, TypeError) as error:
                warnings.warn(f"Skipping model entry {meta_path.name}: {error}", stacklevel=2)
                continue
            if kind is None or entry.kind == kind:
                found.append(entry)
        return sorted(found, key=lambda e: e.meta["created"], reverse=True)

    def newest(self, kind: str) -> ModelEntry | None:
        entries = self.entries(kind)
        return entries[0] if entries else None

    def get(self, name: str) -> ModelEntry:
        """The entry saved as ``name``; ``ModelNotFound`` if there is none."""
        meta_path = self.root / f"{sanitize_name(name)}.json"
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
        """Save ``model`` and ``meta`` atomically under a unique version of ``name``."""
        self.root.mkdir(parents=True, exist_ok=True)
        name = self.unique_name(name)
        meta = {
            "name": name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "params": int(model.count_params()),
            **meta,
        }
        model_path = self.root / f"{name}.keras"
        # Keras only saves to paths ending in .keras, so the temporary file does too.
        tmp_model = self.root / f".{name}.{os.getpid()}.tmp.keras"
        model.save(tmp_model)
        os.replace(tmp_model, model_path)
        _write_atomic(self.root / f"{name}.json", json.dumps(meta, indent=2))
        return ModelEntry(name, model_path, meta)

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
        _write_atomic(self.root / f"{new_name}.json", json.dumps(meta, indent=2))
        (self.root / f"{entry.name}.json").unlink()
        entry.model_path.unlink()
        return ModelEntry(new_name, model_path, meta)

    def delete(self, name: str) -> None:
        """Remove the model ``name``: its metadata first, so it is never listed without its file."""
        entry = self.get(name)
        (self.root / f"{entry.name}.json").unlink()
        entry.model_path.unlink(missing_ok=True)

    def load(self, entry: ModelEntry):
        """The Keras model of ``entry``; ``ModelLoadError`` names the file if it is broken."""
        import keras

        try:
            return keras.saving.load_model(entry.model_path, compile=False)
        except Exception as error:  # Keras raises many types for a damaged archive.
            raise ModelLoadError(
                f"model file {entry.model_path} cannot be loaded ({type(error).__name__}: {error})"
            ) from error

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


def _write_atomic(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as out:
        out.write(text)
    os.replace(out.name, path)
