"""Saved models side by side: what each one is and did, as a table and as CSV.

Everything here is read from the registry's metadata, never from the model files, so a
table of many models costs nothing to build. Metadata written by older versions of the
app may lack fields: a missing value stays ``None`` (an empty cell) instead of failing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import astuple, dataclass, fields

from .models import CONFIGS, config_to_dict
from .protocol import CurvePoint
from .registry import ModelEntry


@dataclass(frozen=True)
class ModelSummary:
    """What the Compare and Models pages tell of one saved model."""

    name: str
    kind: str  # "ann" or "cnn"
    created: str  # ISO time of saving
    test_accuracy: float
    test_loss: float | None
    params: int | None
    train_seconds: float | None
    epochs: float | None  # fractional when stopped mid-epoch
    train_images: int | None
    settings: str  # the model's and the training's settings, in one short line
    experiment: str | None  # the tag of the experiment that trained it, if any
    stopped_by: str | None  # why it stopped before its last epoch ("user", ...), or None

    @property
    def images_per_second(self) -> float | None:
        """Training speed: images seen over the whole fit's seconds (validation included,
        so a little below the speed the Train page shows while the batches run)."""
        if not (self.train_images and self.epochs and self.train_seconds):
            return None
        return self.train_images * self.epochs / self.train_seconds


def summarize(entry: ModelEntry) -> ModelSummary:
    """``entry``'s summary from its metadata."""
    meta = entry.meta
    stopped_by = meta.get("stopped_by") or ("early" if meta.get("stopped") else None)
    return ModelSummary(
        name=entry.name,
        kind=entry.kind,
        created=meta["created"],
        test_accuracy=entry.test_accuracy,
        test_loss=meta.get("test_loss"),
        params=meta.get("params"),
        train_seconds=meta.get("train_seconds"),
        epochs=meta.get("epochs"),
        train_images=meta.get("data", {}).get("train_images"),
        settings=(f"fine-tuned from {meta['parent']}: " if meta.get("parent") else "")
        + settings_text(meta.get("config", {}), meta.get("training", {})),
        experiment=meta.get("experiment"),
        stopped_by=stopped_by,
    )


def settings_text(config: dict, training: dict) -> str:
    """A model's settings in one line a student can read, e.g. "2x512 relu, dropout 0.2,
    adam 4e-3, batch 256". Settings the metadata lacks are left out, and so are the output
    layer and loss when they are the usual ones (softmax, cross-entropy): said only when an
    experiment changed them, they stand out."""
    parts = []
    if units := config.get("hidden_units"):
        parts.append(" ".join(filter(None, [layer_sizes(units), config.get("activation")])))
    if filters := config.get("filters"):
        kernel = config.get("kernel_size")
        parts.append(f"conv {layer_sizes(filters)}" + (f" ({kernel}x{kernel})" if kernel else ""))
        if pooling := config.get("pooling"):
            parts.append(f"{pooling} pool")
        if config.get("batch_norm"):
            parts.append("batch norm")
        if dense := config.get("dense_units"):
            parts.append(f"dense {dense}")
    if "dropout" in config:
        parts.append(f"dropout {config['dropout']:g}")
    if optimizer := config.get("optimizer"):
        rate = config.get("learning_rate")
        parts.append(optimizer + (f" {short_number(rate)}" if rate else ""))
    if config.get("schedule") == "constant":
        parts.append("constant rate")
    usual = config_to_dict(CONFIGS[config["kind"]]()) if config.get("kind") in CONFIGS else {}
    for name, said_as in (("output_activation", "output"), ("loss", "loss")):
        if (value := config.get(name)) and value != usual.get(name):
            parts.append(f"{value} {said_as}")
    if config.get("augment"):
        parts.append("augmented")
    if styles := training.get("styles"):
        parts.append(f"European styles {styles:.0%}")
    if drawings := training.get("drawings"):
        parts.append(f"drawings {drawings} {training.get('drawings_weight', 0):.0%}")
    if batch := training.get("batch_size"):
        parts.append(f"batch {batch}")
    if budget := training.get("time_budget"):
        parts.append(f"{budget:g} s budget")
    return ", ".join(parts)


def layer_sizes(sizes: Sequence[int]) -> str:
    """``[512, 512]`` -> "2x512", ``[16, 48, 96]`` -> "16-48-96", ``[128]`` -> "128"."""
    if len(sizes) > 1 and len(set(sizes)) == 1:
        return f"{len(sizes)}x{sizes[0]}"
    return "-".join(str(size) for size in sizes)


def short_number(value: float) -> str:
    """A learning rate as people write it: 0.004 -> "4e-3", 0.0015 -> "1.5e-3"."""
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


@dataclass(frozen=True)
class Column:
    """One column of the summary table: its heading, its value, and how a page shows it."""

    heading: str
    value: Callable[[ModelSummary], object]
    format_spec: str = ""  # Python's format(), e.g. ".2%"; empty: as it is


COLUMNS = (
    Column("Model", lambda s: s.name),
    Column("Kind", lambda s: s.kind.upper()),
    Column("Experiment", lambda s: s.experiment),
    Column("Test accuracy", lambda s: s.test_accuracy, ".2%"),
    Column("Test loss", lambda s: s.test_loss, ".4f"),
    Column("Parameters", lambda s: s.params, ","),
    Column("Training seconds", lambda s: s.train_seconds, ".1f"),
    Column("Epochs", lambda s: s.epochs, "g"),
    Column("Images per second", lambda s: s.images_per_second, ",.0f"),
    Column("Training images", lambda s: s.train_images, ","),
    Column("Settings", lambda s: s.settings),
)
OPTIONAL_HEADINGS = {"Experiment"}  # shown only when some model has a value


@dataclass(frozen=True)
class SummaryTable:
    """Several models' summaries as a table: one row per model, in the order given."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[object, ...], ...]

    @property
    def headings(self) -> list[str]:
        return [column.heading for column in self.columns]

    def without(self, heading: str) -> SummaryTable:
        """The table less one column (e.g. "Experiment" when every row shares it)."""
        keep = [i for i, column in enumerate(self.columns) if column.heading != heading]
        return SummaryTable(
            tuple(self.columns[i] for i in keep),
            tuple(tuple(row[i] for i in keep) for row in self.rows),
        )

    def csv(self) -> str:
        """The table as CSV: plain numbers (accuracy as a share) for a spreadsheet to format."""
        return csv_text(self.headings, self.rows)


def summary_table(summaries: Sequence[ModelSummary]) -> SummaryTable:
    """The table of ``summaries``, without optional columns that every model leaves empty."""
    columns = tuple(
        column
        for column in COLUMNS
        if column.heading not in OPTIONAL_HEADINGS
        or any(column.value(summary) is not None for summary in summaries)
    )
    rows = tuple(tuple(column.value(summary) for column in columns) for summary in summaries)
    return SummaryTable(columns, rows)


def history_csv(entry: ModelEntry) -> str:
    """``entry``'s training history as CSV: a row every few batches ("batch", training
    metrics only) and at each epoch's end ("epoch", with validation), in training order."""
    points = [("batch", point) for point in entry.training_curve] + [
        ("epoch", point) for point in entry.validation_curve
    ]
    points.sort(key=lambda item: (item[1].step, item[0] == "epoch"))
    headings = ["point", *(field.name for field in fields(CurvePoint))]
    return csv_text(headings, [(name, *astuple(point)) for name, point in points])


def csv_text(headings: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headings)
    writer.writerows(rows)
    return out.getvalue()
