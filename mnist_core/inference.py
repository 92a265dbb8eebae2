"""Predict a drawn digit fast enough for every stroke.

``model.predict`` builds a dataset and a loop for each call (about 70 ms here), and
calling the model eagerly runs every layer through Python (4-7 ms);
``predict_on_batch`` reuses one compiled function (under 1 ms).
"""

from __future__ import annotations

import numpy as np

from .data import NUM_CLASSES
from .models import INPUT_SHAPE


def predict(model, image: np.ndarray) -> np.ndarray:
    """The ten digits' probabilities for one 28x28 image in [0, 1]."""
    batch = np.asarray(image, dtype=np.float32).reshape(1, *INPUT_SHAPE)
    return as_probabilities(np.asarray(model.predict_on_batch(batch)))[0]


def as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Each row of network outputs as shares summing to 1.

    Softmax outputs already are; a sigmoid or tanh output layer (Experiments) gives ten
    independent scores, tanh's below zero: negative scores count as 0, and a row of
    zeros as "no idea" (a tenth each). Pages and the evaluation then read every model alike.
    """
    scores = np.clip(np.asarray(outputs, dtype=np.float64), 0.0, None)
    totals = scores.sum(axis=-1, keepdims=True)
    return np.where(totals > 0, scores / np.maximum(totals, 1e-12), 1.0 / NUM_CLASSES)


def top_k(probabilities: np.ndarray, k: int = 3) -> list[tuple[int, float]]:
    """The ``k`` most likely digits with their probabilities, most likely first."""
    order = np.argsort(probabilities)[::-1][:k]
    return [(int(d), float(probabilities[d])) for d in order]
