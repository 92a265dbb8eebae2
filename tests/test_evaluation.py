"""Evaluating a saved model on the test set: the core, checked against Keras, and the CLI."""

import numpy as np
import pytest

from mnist_core import evaluation
from mnist_core.evaluation import Evaluation, evaluate
from mnist_core.jobs import TrainingConfig, TrainingJob
from mnist_core.models import AnnConfig
from mnist_core.registry import ModelRegistry
from mnist_core.training import train


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
