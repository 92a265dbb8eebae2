"""Evaluating a saved model on the test set: the core, checked against Keras, and the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_core import evaluation
from mnist_core.evaluation import Evaluation, evaluate
from mnist_core.jobs import TrainingConfig, TrainingJob
from mnist_core.models import AnnConfig
from mnist_core.registry import ModelRegistry
from mnist_core.training import train

ROOT = Path(__file__).resolve().parents[1]


def test_figures_follow_from_the_probabilities():
    labels = np.array([0, 0, 1, 2])
    probabilities = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])
    probabilities = np.pad(probabilities, ((0, 0), (0, 7)))  # ten digits, the rest never said
    result = Evaluation(labels, probabilities)
    assert list(result.predicted) == [0, 1, 1, 0]  # a tie goes to the lower digit
    assert result.accuracy == 0.5
    expected_loss = -np.mean(np.log([0.9, 0.2, 1.0 - 1e-7, 0.5]))
    assert result.loss == pytest.approx(expected_loss)
    assert result.confusion[0].tolist()[:3] == [1, 1, 0] and result.confusion[2, 0] == 1
    assert result.confusion.sum() == 4
    accuracy = result.per_class_accuracy
    assert accuracy[:3].tolist() == [0.5, 1.0, 0.0] and np.isnan(accuracy[3:]).all()
    assert result.confidence.tolist() == [0.9, 0.7, 1.0, 0.5]


@pytest.fixture(scope="module")
def saved_model(small_mnist, tmp_path_factory):
    models_dir = tmp_path_factory.mktemp("models")
    job = TrainingJob(
        AnnConfig(hidden_units=(32,)),
        TrainingConfig(epochs=1),
        name="tiny",
        models_dir=str(models_dir),
    )
    return train(job, small_mnist), models_dir


def test_the_evaluation_agrees_with_keras(saved_model, small_mnist, monkeypatch):
    entry, models_dir = saved_model
    monkeypatch.setattr(evaluation, "BATCH", 64)
    done = []
    result = evaluate(ModelRegistry(models_dir).load(entry), small_mnist, done.append)
    assert done == sorted(done) and done[-1] == 1.0 and len(done) == -(-300 // 64)
    # training.train's last step is Keras's own model.evaluate on the same test set
    assert result.accuracy == pytest.approx(entry.meta["test_accuracy"], abs=1e-6)
    assert result.loss == pytest.approx(entry.meta["test_loss"], rel=1e-4)
    assert (result.confusion.sum(axis=1) == np.bincount(small_mnist.y_test, minlength=10)).all()


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "mnist_core", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_evaluate_prints_json_as_its_last_line(tmp_path):
    trained = cli(
        "train",
        "--model",
        "ann",
        "--epochs",
        "1",
        "--train-size",
        "500",
        "--data",
        "sample",
        "--models-dir",
        str(tmp_path),
        "--name",
        "quick",
    )
    assert trained.returncode == 0, trained.stderr
    result = cli("evaluate", "quick", "--models-dir", str(tmp_path), "--data", "sample")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["name"] == "quick"
    confusion = np.array(summary["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == summary["test_images"] == 1000
    assert summary["test_accuracy"] == pytest.approx(np.trace(confusion) / 1000)
    assert len(summary["per_class_accuracy"]) == 10 and summary["test_loss"] > 0
    saved = json.loads(trained.stdout.strip().splitlines()[-1])
    assert summary["test_accuracy"] == pytest.approx(saved["test_accuracy"], abs=1e-4)
    assert "100% of the test set" in result.stderr


@pytest.mark.parametrize(
    "name, setup, reason",
    [
        ("nobody", None, "no model named 'nobody' in"),
        ("broken", "broken", "broken.keras cannot be loaded"),
    ],
)
def test_cli_evaluate_says_what_is_wrong_in_one_line(tmp_path, name, setup, reason):
    if setup:
        (tmp_path / f"{setup}.keras").write_bytes(b"not a keras archive")
        meta = {"kind": "ann", "config": {}, "test_accuracy": 0.5, "created": "2026-01-01"}
        (tmp_path / f"{setup}.json").write_text(json.dumps(meta))
    result = cli("evaluate", name, "--models-dir", str(tmp_path), "--data", "sample")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and reason in errors[0], result.stderr  # (TensorFlow logs too)
    assert result.stderr.strip().splitlines()[-1] == errors[0]


def test_mistakes_most_confident_first_and_filtered():
    labels = np.array([3, 3, 5, 5, 8])
    predicted = [5, 3, 3, 8, 3]
    confidence = [0.6, 0.9, 0.95, 0.7, 0.5]
    probabilities = np.zeros((5, 10))
    probabilities[np.arange(5), predicted] = confidence
    result = Evaluation(labels, probabilities)
    assert evaluation.mistakes(result).tolist() == [2, 3, 0, 4]
    assert evaluation.mistakes(result, true=5).tolist() == [2, 3]
    assert evaluation.mistakes(result, predicted=3).tolist() == [2, 4]
    assert evaluation.mistakes(result, true=3, predicted=3).tolist() == []


def test_disagreements_name_the_digits_only_one_model_reads():
    labels = np.array([1, 2, 3, 4])
    one = Evaluation(labels, np.eye(10)[[1, 2, 0, 0]])  # right on the first two
    other = Evaluation(labels, np.eye(10)[[1, 0, 3, 0]])  # right on the first and third
    only_one, only_other = evaluation.disagreements(one, other)
    assert only_one.tolist() == [1] and only_other.tolist() == [2]
