"""Experiments: presets, the page's table of jobs, other losses and output layers, `sweep`."""

import json
from dataclasses import replace

import numpy as np
import pytest

from mnist_core.experiments import PRESETS, jobs_of, prepared, table_of
from mnist_core.inference import as_probabilities
from mnist_core.jobs import default_job
from mnist_core.models import AnnConfig, CnnConfig, build_model
from mnist_core.registry import ModelRegistry
from mnist_core.training import train
from tests.test_cli import cli


def test_presets_reproduce_the_source_experiments():
    neurons = PRESETS["neurons"].jobs
    assert [job.model.hidden_units for job in neurons] == [(32,), (64,), (128,), (256,), (512,)]
    hidden = {job.model.activation for job in PRESETS["activations"].jobs}
    outputs = {job.model.output_activation for job in PRESETS["activations"].jobs}
    assert hidden == {"relu", "sigmoid", "tanh"} and outputs == {"softmax", "sigmoid", "tanh"}
    optimizers = {
        (j.model.optimizer, j.model.dropout > 0, j.model.loss) for j in PRESETS["optimizers"].jobs
    }
    assert {("sgd", False, "crossentropy"), ("adam", True, "crossentropy")} <= optimizers
    assert {("sgd", True, "mse"), ("adam", True, "mse")} <= optimizers
    assert [job.kind for job in PRESETS["ann-vs-cnn"].jobs] == ["ann", "cnn"]
    for preset in PRESETS.values():
        names = [job.name for job in preset.jobs]
        assert len(set(names)) == len(names), preset.name
        for job in preset.jobs:
            job.check()  # every preset job is a sound one


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_the_table_holds_every_setting_it_shows(preset):
    jobs = list(PRESETS[preset].jobs)
    assert jobs_of(table_of(jobs)) == jobs


def test_an_edited_table_gives_the_edited_jobs():
    table = table_of([default_job("ann", name="a"), default_job("cnn", name="c")])
    table.loc[0, ["layers", "activation", "loss", "output", "seconds"]] = [
        "64, 32",
        "tanh",
        "mse",
        "sigmoid",
        30,
    ]
    table.loc[1, ["layers", "images", "optimizer"]] = ["8, 16", 2000, "SGD"]
    ann, cnn = jobs_of(table)
    assert ann.model == AnnConfig(
        hidden_units=(64, 32), activation="tanh", loss="mse", output_activation="sigmoid"
    )
    assert ann.training.time_budget == 30
    assert cnn.model.filters == (8, 16) and cnn.model.optimizer == "sgd"
    assert cnn.training.train_size == 2000


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("layers", "64, lots", "row 2 \\(b\\): layer sizes must be whole numbers"),
        ("layers", "", "row 2 \\(b\\): give at least one layer size"),
        ("epochs", None, "row 2 \\(b\\): epochs is empty"),
        ("epochs", 0, "row 2 \\(b\\): epochs must be 1-1000"),
        ("kind", "rnn", "row 2 \\(b\\): kind must be one of"),
        ("output", "tanh", "row 2 \\(b\\): a tanh output goes negative"),
        ("images", 5, "row 2 \\(b\\): training-set size must be at least 100"),
    ],
)
def test_a_bad_row_is_named_with_its_fault(column, value, message):
    table = table_of([default_job("ann", name="a"), default_job("ann", name="b")])
    table[column] = table[column].astype(object)
    table.loc[1, column] = value
    with pytest.raises(ValueError, match=message):
        jobs_of(table)


def test_prepared_jobs_carry_the_tag_and_overrides():
    jobs = prepared(list(PRESETS["neurons"].jobs), "neurons-1", epochs=2, train_size=500)
    assert {job.experiment for job in jobs} == {"neurons-1"}
    assert {(job.training.epochs, job.training.train_size) for job in jobs} == {(2, 500)}
    with pytest.raises(ValueError, match="neurons-32: epochs must be"):
        prepared(list(PRESETS["neurons"].jobs), "x", epochs=0)


def test_as_probabilities_reads_any_output_layer_as_shares():
    softmax = np.array([[0.1, 0.9]])
    np.testing.assert_allclose(as_probabilities(softmax), softmax)
    np.testing.assert_allclose(as_probabilities([[-0.5, 0.5, 0.5]]), [[0, 0.5, 0.5]])
    np.testing.assert_allclose(as_probabilities([[-1.0] * 10]), [[0.1] * 10])


@pytest.mark.parametrize(
    "config",
    [
        AnnConfig(hidden_units=(32,), output_activation="sigmoid"),
        AnnConfig(hidden_units=(32,), output_activation="tanh", loss="mse"),
        CnnConfig(filters=(8,), loss="mse"),
    ],
)
def test_other_losses_and_output_layers_learn(config, small_mnist, tmp_path):
    job = default_job(config.kind, epochs=3, batch_size=64, models_dir=str(tmp_path))
    entry = train(replace(job, model=config, experiment="losses-1"), small_mnist)
    assert entry.meta["experiment"] == "losses-1"
    assert entry.meta["config"]["loss"] == config.loss
    assert entry.test_accuracy > 0.5  # chance is 0.1
    model = ModelRegistry(tmp_path).load(entry)
    assert model.layers[-1].activation.__name__ == config.output_activation


def test_output_layer_activation_is_built():
    model = build_model(AnnConfig(hidden_units=(8,), output_activation="tanh", loss="mse"))
    outputs = np.asarray(model(np.random.rand(2, 28, 28, 1).astype("float32")))
    assert outputs.min() >= -1 and outputs.max() <= 1


def test_sweep_saves_every_model_and_prints_its_results(tmp_path):
    result = cli(
        "sweep", "ann-vs-cnn", "--epochs", "1", "--train-size", "300",
        "--data", "sample", "--models-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["preset"] == "ann-vs-cnn"
    assert [r["kind"] for r in report["results"]] == ["ann", "cnn"]
    saved = {entry.name: entry for entry in ModelRegistry(tmp_path).entries()}
    for row in report["results"]:
        entry = saved[row["name"]]
        assert entry.meta["experiment"].startswith("ann-vs-cnn-")
        assert row["test_accuracy"] == round(entry.test_accuracy, 4)
        assert row["config"] == entry.meta["config"] and row["epochs"] == 1
        assert set(row) == {
            "name", "kind", "config", "test_accuracy", "test_loss", "train_seconds", "epochs"
        }  # fmt: skip
    assert "[2/2] cnn" in result.stderr


def test_sweep_refuses_impossible_settings_before_training(tmp_path):
    result = cli("sweep", "neurons", "--train-size", "5", "--models-dir", str(tmp_path))
    assert result.returncode == 2
    assert "neurons-32: training-set size must be at least 100" in result.stderr
    assert not list(tmp_path.iterdir())
