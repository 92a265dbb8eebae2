"""Trained models on disk: ``NAME.keras`` plus ``NAME.json`` metadata beside it.

The JSON is written last, so an entry exists only once its model is complete; both
are written to a temporary file and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import re
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
