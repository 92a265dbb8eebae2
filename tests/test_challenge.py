"""The class challenge: the teacher's alone to open and close, its held-back writers hidden
from students and from training, models scored within its window and caps, ranked."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from mnist_core.challenge import (
    Caps,
    Score,
    close_challenge,
    current,
    hidden_writers,
    open_challenge,
    ranked,
)
from mnist_core.class_drawings import ClassSet, KeepRefused
from mnist_core.drawings import DrawingsFolder
from mnist_core.jobs import default_job
from mnist_core.registry import ModelEntry
from mnist_core.training import class_digits
from mnist_core.training_queue import Requester
from tests.test_class_drawings import IMAGE, strokes

TEACHER, STUDENT = Requester("t" * 16, teacher=True), Requester("s" * 16)
WRITERS = ("ana", "ben", "chloé", "dan", "eve", "fred")


@pytest.fixture
def folder(tmp_path) -> DrawingsFolder:
    folder = DrawingsFolder(tmp_path / "drawings")
    chosen = ClassSet(folder)
    for writer in WRITERS:
        for digit in range(10):
            chosen.keep(digit, strokes(digit), IMAGE, TEACHER, writer=writer)
    return folder


def entry(created: float, **meta) -> ModelEntry:
    saved = datetime.fromtimestamp(created, UTC).isoformat()
    base = {"kind": "ann", "config": {}, "created": saved, "test_accuracy": 0.98, "params": 100}
    return ModelEntry("m", Path("m.keras"), base | meta)


def test_only_the_teacher_opens_and_closes(folder):
    with pytest.raises(KeepRefused, match="Only the teacher may open"):
        open_challenge(folder, "class", ["ana"], Caps(), STUDENT)
    open_challenge(folder, "class", ["ana"], Caps(), TEACHER, now=10.0)
    with pytest.raises(KeepRefused, match="is open: close it first"):
        open_challenge(folder, "class", ["ben"], Caps(), TEACHER)
    with pytest.raises(KeepRefused, match="Only the teacher may close"):
        close_challenge(folder, [], STUDENT)
    board = [Score("m", "Léa", "cnn", 0.99, 0.993, 1000, 50.0, rank=1)]
    closed = close_challenge(folder, board, TEACHER, now=20.0)
    assert not closed.is_open and current(folder).final == tuple(board)  # the result stays


@pytest.mark.parametrize(
    ("held_back", "reason"),
    [
        ([], "Hold back at least one writer"),
        (["zoe"], "No drawings by zoe"),
        (list(WRITERS), "every writer is held back"),
    ],
)
def test_a_challenge_needs_writers_to_test_on_and_to_learn_from(folder, held_back, reason):
    with pytest.raises(KeepRefused, match=reason):
        open_challenge(folder, "class", held_back, Caps(), TEACHER)
    assert current(folder) is None


def test_students_and_training_never_see_the_held_back_writers(folder):
    open_challenge(folder, "class", ["ana", "ben"], Caps(), TEACHER)
    assert hidden_writers(folder, "class", STUDENT) == {"ana", "ben"}
    assert hidden_writers(folder, "class", TEACHER) == set()
    assert hidden_writers(folder, "other", STUDENT) == set()
    job = default_job("ann", drawings="class", drawings_dir=str(folder.root))
    learned = class_digits(job, mnist_images=1000)
    held_out = learned.held_out  # a quarter of the four writers left: one
    assert learned.learned + len(held_out.labels) == 40
    assert not set(held_out.writers) & {"ana", "ben"}
    close_challenge(folder, [], TEACHER)
    assert hidden_writers(folder, "class", STUDENT) == set()  # closed: all the set again


def test_models_compete_only_when_trained_here_while_it_was_open_and_within_caps(folder):
    caps = Caps(max_params=1000, max_seconds=30, max_train_images=5000)
    challenge = open_challenge(folder, "class", ["ana"], caps, TEACHER, now=100.0)
    assert challenge.counts(entry(150.0))
    assert not challenge.counts(entry(50.0))  # before it opened
    uploaded = entry(150.0)
    del uploaded.meta["config"]
    assert not challenge.counts(uploaded)
    assert caps.broken_by(entry(150.0, params=5000)) == "5,000 parameters, over the cap of 1,000"
    assert "over the cap of 30 s" in caps.broken_by(entry(150.0, train_seconds=45))
    assert "over the cap of 5,000" in caps.broken_by(entry(150.0, data={"train_images": 9000}))
    assert caps.broken_by(entry(150.0, train_seconds=30.4, data={"train_images": 5000})) is None
    closed = close_challenge(folder, [], TEACHER, now=200.0)
    assert not closed.counts(entry(250.0))  # after it closed


def test_the_board_ranks_accuracy_then_the_smaller_then_the_faster():
    scores = [
        Score("big", "a", "cnn", 0.99, 0.99, 9000, 50.0),
        Score("small", "b", "cnn", 0.99, 0.99, 1000, 50.0),
        Score("best", "c", "ann", 0.995, 0.98, 100000, 90.0),
    ]
    assert [(s.rank, s.name) for s in ranked(scores)] == [(1, "best"), (2, "small"), (3, "big")]
    assert np.isclose(ranked([replace(scores[0], accuracy=0.5)])[0].accuracy, 0.5)
