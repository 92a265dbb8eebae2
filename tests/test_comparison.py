"""Saved models side by side (mnist_core.comparison), renaming and deleting them
(registry), and the Compare and Models pages through AppTest."""

import csv
import io
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import streamlit as st

from mnist_core import registry as registry_module
from mnist_core.charts import COLORS, model_curves, training_curves
from mnist_core.comparison import (
    history_csv,
    layer_sizes,
    settings_text,
    short_number,
    summarize,
    summary_table,
)
from mnist_core.jobs import DEFAULT_TRAINING
from mnist_core.models import AnnConfig, CnnConfig, config_to_dict
from mnist_core.registry import ModelEntry, ModelNotFound, ModelRegistry
from mnist_core.text import as_read
from mnist_core.training_queue import Requester
from tests.apptest import open_page, texts


@pytest.fixture
def models(trained_models, tmp_path) -> Path:
    """A copy of the session's trained ANN and CNN, free to change."""
    return Path(shutil.copytree(trained_models, tmp_path / "models-copy"))


def files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


# --- summaries, settings, table, CSV -------------------------------------------------------


def test_default_settings_read_as_people_write_them():
    ann = settings_text(config_to_dict(AnnConfig()), asdict(DEFAULT_TRAINING["ann"]))
    assert ann == "2x512 relu, dropout 0.2, adam 4e-3, European styles 15%, batch 256"
    cnn = settings_text(config_to_dict(CnnConfig()), asdict(DEFAULT_TRAINING["cnn"]))
    assert cnn == (
        "conv 16-48-96 (3x3), max pool, batch norm, dropout 0.4, adam 5e-3, "
        "European styles 15%, batch 128"
    )


def test_settings_show_what_experiments_change():
    config = {
        **config_to_dict(AnnConfig(hidden_units=(256, 64), schedule="constant", augment=True)),
        "output_activation": "sigmoid",
        "loss": "mse",
    }
    text = settings_text(config, {"batch_size": 64, "time_budget": 30.0})
    assert text == (
        "256-64 relu, dropout 0.2, adam 4e-3, constant rate, sigmoid output, mse loss, "
        "augmented, batch 64, 30 s budget"
    )
    assert settings_text({}, {}) == ""  # an old entry without settings


@pytest.mark.parametrize(
    ("value", "written"), [(0.004, "4e-3"), (0.0015, "1.5e-3"), (0.1, "1e-1"), (1e-4, "1e-4")]
)
def test_learning_rates_are_short(value, written):
    assert short_number(value) == written


def test_layer_sizes():
    assert [layer_sizes(s) for s in ([512, 512], [16, 48, 96], [128])] == [
        "2x512",
        "16-48-96",
        "128",
    ]


def test_a_summary_is_the_metadata(trained_models):
    for entry in ModelRegistry(trained_models).entries():
        summary, meta = summarize(entry), entry.meta
        assert (summary.name, summary.kind) == (entry.name, meta["kind"])
        assert summary.test_accuracy == meta["test_accuracy"]
        assert summary.test_loss == meta["test_loss"] and summary.params == meta["params"]
        assert summary.train_seconds == meta["train_seconds"] and summary.epochs == 3
        assert summary.train_images == meta["data"]["train_images"]
        assert summary.images_per_second == pytest.approx(
            meta["data"]["train_images"] * 3 / meta["train_seconds"]
        )
        assert summary.stopped_by is None and summary.experiment is None
        assert f"batch {meta['training']['batch_size']}" in summary.settings


def old_entry(tmp_path, **meta) -> ModelEntry:
    """An entry as an early version of the app saved it: only the required fields."""
    required = {"kind": "ann", "config": {}, "test_accuracy": 0.9, "created": "2025-01-01T00:00"}
    return ModelEntry("old", tmp_path / "old.keras", {**required, **meta})


def test_old_metadata_gives_empty_cells_not_errors(tmp_path):
    summary = summarize(old_entry(tmp_path, stopped=True))
    assert summary.test_loss is None and summary.images_per_second is None
    assert summary.stopped_by == "early" and summary.settings == ""
    table = summary_table([summary])
    assert "Experiment" not in table.headings  # no model has one
    row = next(csv.DictReader(io.StringIO(table.csv())))
    assert row["Model"] == "old" and row["Test accuracy"] == "0.9" and row["Test loss"] == ""
    assert history_csv(old_entry(tmp_path)) == (
        "point,epoch,step,epochs_seen,progress,elapsed,images_per_s,loss,accuracy,"
        "val_loss,val_accuracy\n"
    )


def test_the_table_and_its_csv_hold_every_model_in_order(trained_models, tmp_path):
    entries = ModelRegistry(trained_models).entries()
    tagged = old_entry(tmp_path, experiment="mse vs crossentropy")
    table = summary_table([summarize(entry) for entry in [*entries, tagged]])
    assert table.headings == [
        "Model",
        "Kind",
        "Experiment",
        "Test accuracy",
        "Test loss",
        "Parameters",
        "Training seconds",
        "Epochs",
        "Images per second",
        "Training images",
        "Settings",
    ]
    rows = list(csv.DictReader(io.StringIO(table.csv())))
    assert [row["Model"] for row in rows] == [entry.name for entry in entries] + ["old"]
    assert [row["Experiment"] for row in rows] == ["", "", "mse vs crossentropy"]
    for row, entry in zip(rows, entries, strict=False):
        assert float(row["Test accuracy"]) == entry.meta["test_accuracy"]
        assert int(row["Parameters"]) == entry.meta["params"]
        assert row["Kind"] == entry.kind.upper()


def test_history_csv_is_the_saved_curve_in_training_order(trained_models):
    entry = ModelRegistry(trained_models).newest("cnn")
    rows = list(csv.DictReader(io.StringIO(history_csv(entry))))
    history = entry.meta["history"]
    assert len(rows) == len(history["batch"]) + len(history["epoch"])
    assert [int(r["step"]) for r in rows] == sorted(int(r["step"]) for r in rows)
    epoch_ends = [r for r in rows if r["point"] == "epoch"]
    assert [float(r["val_accuracy"]) for r in epoch_ends] == [
        p["val_accuracy"] for p in history["epoch"]
    ]
    assert all(r["val_loss"] == "" for r in rows if r["point"] == "batch")


def test_overlaid_curves_a_colour_per_model_against_epochs_or_seconds(trained_models):
    entries = ModelRegistry(trained_models).entries()
    ann = next(e for e in entries if e.kind == "ann")
    curves = [model_curves(e) for e in [*entries, ann]]  # the ANN twice: a second colour
    figure = training_curves(curves, "loss", x_axis="seconds")
    assert len(figure.data) == 6  # training and validation of each
    assert figure.layout.xaxis.title.text == "seconds of training"
    colors = [trace.line.color for trace in figure.data[::2]]
    assert colors[:2] == [COLORS[e.kind] for e in entries] and len(set(colors)) == 3
    validation = figure.data[-1]
    assert list(validation.x) == [p.elapsed for p in ann.validation_curve]
    assert figure.data[0].line.dash is None and validation.line.dash == "dot"
    epochs = training_curves(curves, "accuracy")
    assert epochs.layout.xaxis.title.text == "epochs"
    assert list(epochs.data[1].x) == [p.epochs_seen for p in entries[0].validation_curve]


# --- renaming and deleting ------------------------------------------------------------------


def test_rename_moves_the_model_and_its_metadata(models):
    registry = ModelRegistry(models)
    old = registry.newest("ann")
    renamed = registry.rename(old.name, "my best ANN!")
    assert renamed.name == "my-best-ANN"
    assert files(models) == sorted(
        ["my-best-ANN.json", "my-best-ANN.keras", *(f.name for f in models.glob("cnn-*"))]
    )
    meta = json.loads((models / "my-best-ANN.json").read_text())
    assert meta == {**old.meta, "name": "my-best-ANN"}  # created kept: the order too
    entry = registry.get("my-best-ANN")
    assert registry.load(entry).count_params() == old.meta["params"]
    assert [e.name for e in registry.entries()][-1] == "my-best-ANN"  # the older of the two
    with pytest.raises(ModelNotFound):
        registry.get(old.name)


def test_rename_keeps_names_inside_the_models_folder(models):
    registry = ModelRegistry(models)
    renamed = registry.rename(registry.newest("ann").name, "../x")
    assert renamed.name == "x" and renamed.model_path == models / "x.keras"
    assert not (models.parent / "x.keras").exists()


@pytest.mark.parametrize("bad", ["", "..", "///"])
def test_rename_refuses_a_name_without_usable_characters(models, bad):
    registry = ModelRegistry(models)
    before = files(models)
    with pytest.raises(ValueError, match="no usable characters"):
        registry.rename(registry.newest("ann").name, bad)
    assert files(models) == before


def test_rename_refuses_a_name_taken(models):
    registry = ModelRegistry(models)
    ann, cnn = registry.newest("ann"), registry.newest("cnn")
    before = files(models)
    with pytest.raises(ValueError, match=f"a model named '{cnn.name}' already exists"):
        registry.rename(ann.name, cnn.name)
    (models / "orphan.keras").write_bytes(b"left by a crash")  # no metadata: still taken
    with pytest.raises(ValueError, match="already exists"):
        registry.rename(ann.name, "orphan")
    assert files(models) == sorted([*before, "orphan.keras"])
    assert registry.rename(ann.name, ann.name) == ann  # its own name: nothing to do


def test_unknown_models_cannot_be_renamed_or_deleted(models):
    registry = ModelRegistry(models)
    with pytest.raises(ModelNotFound):
        registry.rename("nobody", "somebody")
    with pytest.raises(ModelNotFound):
        registry.delete("nobody")


def test_a_crash_while_renaming_leaves_the_model_listed_and_whole(models, monkeypatch):
    registry = ModelRegistry(models)
    ann = registry.newest("ann")

    def crash(path, text, sync=True):
        raise OSError("disk full")

    monkeypatch.setattr(registry_module, "write_whole", crash)
    with pytest.raises(OSError, match="disk full"):
        registry.rename(ann.name, "new")
    listed = {entry.name: entry for entry in registry.entries()}
    assert ann.name in listed and registry.load(listed[ann.name]) is not None


def test_rename_copies_where_the_disk_cannot_link(models, monkeypatch):
    registry = ModelRegistry(models)
    ann = registry.newest("ann")
    size = ann.model_path.stat().st_size

    def no_links(source, target):
        raise OSError("links not supported")

    monkeypatch.setattr(os, "link", no_links)
    renamed = registry.rename(ann.name, "copied")
    assert renamed.model_path.stat().st_size == size and not ann.model_path.exists()
    assert not [name for name in files(models) if "tmp" in name]


def test_rename_refuses_a_name_saved_meanwhile(models, monkeypatch):
    registry = ModelRegistry(models)
    ann = registry.newest("ann")

    def taken_meanwhile(source, target):
        raise FileExistsError(target)

    monkeypatch.setattr(os, "link", taken_meanwhile)
    with pytest.raises(ValueError, match="a model named 'new' already exists"):
        registry.rename(ann.name, "new")
    assert registry.get(ann.name).model_path.exists()


def test_delete_removes_the_metadata_first_then_the_model(models, monkeypatch):
    registry = ModelRegistry(models)
    ann = registry.newest("ann")
    removed = []
    unlink = Path.unlink
    monkeypatch.setattr(
        Path, "unlink", lambda path, **kw: removed.append(path.name) or unlink(path)
    )
    registry.delete(ann.name)
    assert removed == [f"{ann.name}.json", f"{ann.name}.keras"]
    assert [e.kind for e in registry.entries()] == ["cnn"]


# --- the pages --------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def module_caches():
    """The server's resources, fresh for this module and shared by its tests: one training
    worker to start, not one per test."""
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture(autouse=True)
def sample_data(monkeypatch):
    monkeypatch.setenv("MNIST_DATA", "sample")  # what the Draw page loads, if it loads data


@pytest.mark.parametrize("page", ["pages/compare.py", "pages/models.py"])
def test_pages_without_models_say_to_train_first(page):
    app = open_page(page)
    assert "No saved model yet: train one on the Train page." in texts(app)
    assert [link.proto.page for link in app.get("page_link")] == ["train"]


def test_compare_page_shows_the_newest_ann_and_cnn(models, monkeypatch):
    monkeypatch.setenv("MNIST_MODELS_DIR", str(models))
    entries = ModelRegistry(models).entries()
    app = open_page("pages/compare.py")
    names = app.multiselect[0].value
    assert sorted(names) == sorted(e.name for e in entries)
    table = app.table[0].value
    for row, name in zip(table.itertuples(index=False), names, strict=True):
        meta = ModelRegistry(models).get(name).meta
        assert (row[0], row[1]) == (name, meta["kind"].upper())
        assert row[2:9] == (
            meta["test_accuracy"],
            meta["test_loss"],
            meta["params"],
            meta["train_seconds"],
            meta["epochs"],
            pytest.approx(meta["data"]["train_images"] * meta["epochs"] / meta["train_seconds"]),
            meta["data"]["train_images"],
        )
    assert [b.label for b in app.get("download_button")] == ["Download the table (CSV)"]
    charts = [json.loads(c.proto.spec) for c in app.get("plotly_chart")]
    assert [c["layout"]["title"]["text"][:4] for c in charts] == ["Loss", "Accu"]
    assert len(charts[0]["data"]) == 4  # each model: training and validation
    app.radio(key="compare_x_axis").set_value("seconds").run()
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["xaxis"]["title"]["text"] == "seconds of training"
    app.multiselect[0].set_value(names[:1]).run()
    assert "Pick two or more models above to compare them" in texts(app)
    assert len(app.table[0].value) == 1 and len(app.get("plotly_chart")) == 2


def test_models_page_renames_and_deletes(models, monkeypatch):
    monkeypatch.setenv("MNIST_MODELS_DIR", str(models))
    registry = ModelRegistry(models)
    ann, cnn = registry.newest("ann"), registry.newest("cnn")
    app = open_page("pages/models.py")
    assert list(map(as_read, app.table[0].value["Model"])) == [e.name for e in registry.entries()]
    assert "Only the browser that trained this model, or the teacher" in texts(app)
    assert next(b for b in app.button if b.label == "Delete this model...").disabled
    # The teacher: the sidebar's passphrase is tested in a browser (tests/test_classroom.py),
    # since AppTest runs app.py, and so the sidebar, only on a session's first run.
    from classroom import who  # after open_page: AppTest has put the project on the path

    monkeypatch.setattr(who, "requester", lambda: Requester("teacher", teacher=True))
    app.selectbox[0].set_value(ann.name).run()
    assert f"{ann.meta['test_accuracy']:.2%}" in [m.value for m in app.metric]

    app.text_input(key=f"new-name-{ann.name}").set_value(cnn.name).run()
    rename = next(b for b in app.button if b.label == "Rename")
    rename.click().run()
    assert f"Cannot rename: a model named '{cnn.name}' already exists" in texts(app)

    app.text_input(key=f"new-name-{ann.name}").set_value("...").run()
    assert "Cannot use this name: model name '...' has no usable characters" in texts(app)
    assert next(b for b in app.button if b.label == "Rename").disabled

    app.text_input(key=f"new-name-{ann.name}").set_value("ANN for class 3").run()
    assert "Saved as **ANN-for-class-3**" in texts(app)
    next(b for b in app.button if b.label == "Rename").click().run()
    assert not app.exception, app.exception
    assert f"Renamed {ann.name} to ANN-for-class-3." in texts(app)
    assert app.selectbox[0].value == "ANN-for-class-3"
    assert "ANN-for-class-3" in map(as_read, app.table[0].value["Model"])
    assert (models / "ANN-for-class-3.keras").exists() and not ann.model_path.exists()

    next(b for b in app.button if b.label == "Delete this model...").click().run()
    assert "Delete **ANN-for-class-3** for good?" in texts(app)
    next(b for b in app.button if b.label == "Cancel").click().run()
    assert (models / "ANN-for-class-3.json").exists() and "for good?" not in texts(app)
    next(b for b in app.button if b.label == "Delete this model...").click().run()
    next(b for b in app.button if as_read(b.label) == "Yes, delete ANN-for-class-3").click().run()
    assert not app.exception, app.exception
    assert "Deleted ANN-for-class-3." in texts(app)
    assert list(map(as_read, app.table[0].value["Model"])) == [cnn.name]
    assert files(models) == [f"{cnn.name}.json", f"{cnn.name}.keras"]


def test_draw_page_serves_a_renamed_model(models, monkeypatch):
    """Pages cache loaded models by (name, file time): a new name loads the renamed file,
    and a deleted model is no longer offered."""
    monkeypatch.setenv("MNIST_MODELS_DIR", str(models))
    registry = ModelRegistry(models)
    app = open_page("pages/draw.py")
    assert "ANN: waiting for a drawing" in [s.value for s in app.subheader]
    registry.rename(registry.newest("ann").name, "renamed-ann")
    registry.delete(registry.newest("cnn").name)
    app.run()
    assert not app.exception, app.exception
    assert app.selectbox[0].value.startswith("renamed-ann (")
    headers = [s.value for s in app.subheader]
    assert "ANN: waiting for a drawing" in headers and "CNN: no model yet" in headers


def test_two_writers_saving_one_name_at_once_get_two_names(models, monkeypatch):
    """As two workers on one shared folder: each saw the name free (a stale listing)."""
    registry = ModelRegistry(models)
    entry = registry.newest("ann")
    model = registry.load(entry)
    monkeypatch.setattr(ModelRegistry, "unique_name", lambda self, wanted: wanted)
    meta = {key: value for key, value in entry.meta.items() if key not in ("name", "created")}
    first = registry.save(model, "twice", {**meta, "test_accuracy": 0.9})
    second = registry.save(model, "twice", {**meta, "test_accuracy": 0.8})
    assert (first.name, second.name) == ("twice", "twice-2")
    listed = {e.name: e.test_accuracy for e in registry.entries()}
    assert listed["twice"] == 0.9 and listed["twice-2"] == 0.8
    assert not [path.name for path in models.iterdir() if "tmp" in path.name]
