"""How a saved model does on test digits (MNIST's, or a drawings set as the Draw page sees
it): accuracy, loss, confusions, each digit's reading, each writer's.

Predicted in batches, with a callback after each, so that a page can show a bar and a long
evaluation never holds the server in one call. The loss is sparse categorical
cross-entropy computed from the probabilities, as Keras computes it (clipped at 1e-7),
for every model, also one trained on mean squared error: one scale to compare them on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data import NUM_CLASSES, MnistData
from .inference import as_probabilities
from .models import to_input

BATCH = 1000  # test digits per prediction call: ~10 progress steps over MNIST's 10,000
EPSILON = 1e-7  # Keras clips probabilities to [EPSILON, 1 - EPSILON] in its cross-entropy


@dataclass(frozen=True)
class Evaluation:
    """A model's reading of every test digit, and what follows from it."""

    labels: np.ndarray  # (N,) the true digits
    probabilities: np.ndarray  # (N, NUM_CLASSES) the model's output for each test digit

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        """The probability the model gave its own answer."""
        return self.probabilities.max(axis=1)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predicted == self.labels))

    @property
    def loss(self) -> float:
        right = self.probabilities[np.arange(len(self.labels)), self.labels]
        return float(-np.mean(np.log(np.clip(right, EPSILON, 1 - EPSILON))))

    @property
    def confusion(self) -> np.ndarray:
        """Counts, row = true digit, column = predicted digit."""
        counts = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
        np.add.at(counts, (self.labels, self.predicted), 1)
        return counts

    @property
    def per_class_accuracy(self) -> np.ndarray:
        """For each digit, the share of its test images read right (NaN if it has none)."""
        confusion = self.confusion
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(confusion) / confusion.sum(axis=1)

    def accuracy_by(self, groups: Sequence[str]) -> dict[str, float]:
        """The accuracy over the digits of each group (a writer, say), for ``groups`` given
        digit by digit; in the order the groups first appear."""
        right = self.predicted == self.labels
        names = np.asarray(groups)
        return {name: float(right[names == name].mean()) for name in dict.fromkeys(groups)}


@dataclass(frozen=True)
class TestDigits:
    """Digits models are graded on: MNIST's test set, or a drawings set as the Draw page
    sees it, with who wrote each (drawings only)."""

    name: str  # what pages call them
    version: str  # changes when the digits do: measurements are kept per version
    images: np.ndarray  # (N, 28, 28) float32 in [0, 1], as the networks see them
    labels: np.ndarray  # (N,)
    writers: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None  # where each was collected (drawings only)

    @classmethod
    def of_mnist(cls, data: MnistData) -> TestDigits:
        images = to_input(data.x_test)[..., 0]
        return cls("MNIST's test set", f"mnist:{data.location}", images, data.y_test)


def evaluate_digits(
    model, digits: TestDigits, on_progress: Callable[[float], None] = lambda done: None
) -> Evaluation:
    """``model``'s probabilities for each of ``digits``."""
    return evaluate_inputs(model, digits.images[..., None], digits.labels, on_progress)


def evaluate(
    model, data: MnistData, on_progress: Callable[[float], None] = lambda done: None
) -> Evaluation:
    """``model``'s probabilities for every test digit of ``data``; ``on_progress(share done)``
    after each batch."""
    return evaluate_inputs(model, to_input(data.x_test), data.y_test, on_progress)


def evaluate_inputs(
    model,
    inputs: np.ndarray,
    labels: np.ndarray,
    on_progress: Callable[[float], None] = lambda done: None,
) -> Evaluation:
    """``model``'s probabilities for ``inputs`` as the networks take them ((N, 28, 28, 1)
    floats in [0, 1]: MNIST's test digits, or drawings as the Draw page sees them)."""
    outputs = []
    for start in range(0, len(inputs), BATCH):
        outputs.append(as_probabilities(model.predict_on_batch(inputs[start : start + BATCH])))
        on_progress(min(start + BATCH, len(inputs)) / len(inputs))
    return Evaluation(
        labels=np.asarray(labels, dtype=np.int64), probabilities=np.concatenate(outputs)
    )


def mistakes(
    result: Evaluation, true: int | None = None, predicted: int | None = None
) -> np.ndarray:
    """Indices of the test digits read wrong (of one true or predicted digit, if given),
    the most confident mistakes first."""
    wrong = result.predicted != result.labels
    if true is not None:
        wrong &= result.labels == true
    if predicted is not None:
        wrong &= result.predicted == predicted
    found = np.flatnonzero(wrong)
    return found[np.argsort(-result.confidence[found], kind="stable")]


def disagreements(first: Evaluation, second: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the test digits ``first`` reads right and ``second`` wrong, and the
    reverse; in each, the wrong model's most confident mistakes first."""
    first_right = first.predicted == first.labels
    second_right = second.predicted == second.labels
    only_first = np.flatnonzero(first_right & ~second_right)
    only_second = np.flatnonzero(second_right & ~first_right)
    return (
        only_first[np.argsort(-second.confidence[only_first], kind="stable")],
        only_second[np.argsort(-first.confidence[only_second], kind="stable")],
    )


def writer_table(digits: TestDigits, results: dict[str, Evaluation]) -> pd.DataFrame:
    """One row per writer of ``digits``: how many digits, and each model's accuracy on them
    (``results`` by model name), the writer the first model reads worst first."""
    counts = Counter(digits.writers or ())
    table = pd.DataFrame({"Writer": list(counts), "Digits": list(counts.values())})
    for name, result in results.items():
        table[name] = table["Writer"].map(result.accuracy_by(digits.writers or ()))
    return table.sort_values([*results][:1] + ["Writer"], kind="stable").reset_index(drop=True)
