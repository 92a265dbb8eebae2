"""The class's own drawings: kept from the Draw page one file each, deleted by their owner or
the teacher, locked, imported and exported, with every refusal a clear message."""

from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest

from bench.synthetic_digits import DIGITS
from mnist_core import class_drawings
from mnist_core.class_drawings import (
    KEPT_PER_MINUTE,
    ClassSet,
    KeepRefused,
    check_set_name,
    export_jsonl,
    export_npz,
)
from mnist_core.drawings import DrawingsError, DrawingsFolder, read_drawings
from mnist_core.strokes import canvas_strokes
from mnist_core.training_queue import Requester

ANA, BEN = Requester("a" * 16), Requester("b" * 16)
TEACHER = Requester("c" * 16, teacher=True)
IMAGE = np.eye(28, dtype=np.float32)


def strokes(digit: int, scale: float = 200.0) -> list:
    return [[[x * scale, y * scale] for x, y in stroke] for stroke in DIGITS[digit]]


@pytest.fixture
def class_set(tmp_path) -> ClassSet:
    return ClassSet(DrawingsFolder(tmp_path / "drawings"))


def test_a_kept_drawing_is_listed_with_its_label_writer_owner_and_image(class_set):
    kept = class_set.keep(7, strokes(7), IMAGE, ANA, writer="Ana", now=1000.0)
    (drawing,) = class_set.read().drawings
    assert (drawing.digit, drawing.writer, drawing.owner, drawing.kept_at) == (
        7,
        "Ana",
        ANA.owner,
        1000.0,
    )
    assert drawing.key == kept.key
    assert np.array_equal(drawing.image, (IMAGE * 255).astype(np.uint8))
    assert [s.shape[1] for s in drawing.strokes] == [2] * len(DIGITS[7])
    assert class_set.counts().per_digit[7] == 1
    # A set the drawings folder lists, as evaluate --drawings and training read it.
    assert DrawingsFolder(class_set.path.parent).load("class").summary().count == 1


def test_a_writer_without_a_name_is_filed_under_the_browser(class_set):
    class_set.keep(1, strokes(1), IMAGE, ANA)
    class_set.keep(2, strokes(2), IMAGE, ANA)
    assert class_set.counts().per_writer == {f"student-{ANA.owner[:6]}": 2}


@pytest.mark.parametrize(
    ("digit", "drawn", "image", "writer", "reason"),
    [
        (None, strokes(3), IMAGE, None, "Say which digit you meant"),
        (10, strokes(3), IMAGE, None, "Say which digit you meant"),
        (True, strokes(3), IMAGE, None, "Say which digit you meant"),
        (3, [], np.zeros((28, 28)), None, "the canvas is blank"),
        (3, [[[5, 5]]], IMAGE, None, "a dot is not a digit"),
        (3, strokes(3), IMAGE, "x" * 300, "at most 40 characters; this one has 300"),
        (3, strokes(3), IMAGE, "ana\nbob", "line breaks"),
    ],
)
def test_what_is_not_kept_is_refused_with_why(class_set, digit, drawn, image, writer, reason):
    with pytest.raises(KeepRefused, match=reason):
        class_set.keep(digit, drawn, image, ANA, writer=writer)
    assert class_set.read().drawings == ()


def test_a_writer_name_with_html_or_markdown_is_kept_as_written(class_set):
    name = "<b>Zoé</b> **x**"
    class_set.keep(4, strokes(4), IMAGE, ANA, writer=name)
    assert class_set.read().drawings[0].writer == name


@pytest.mark.parametrize("name", ["../up", "a/b", "a\\b", ".hidden", "", "x" * 41, "a.b"])
def test_a_set_name_with_path_separators_is_refused(name):
    with pytest.raises(KeepRefused, match="A set's name is 1-40 letters"):
        check_set_name(name)


def test_a_browser_is_rate_limited_and_the_teacher_is_not(class_set):
    for second in range(KEPT_PER_MINUTE):
        class_set.keep(5, strokes(5), IMAGE, ANA, now=2000.0 + second)
    with pytest.raises(KeepRefused, match="kept in the last minute"):
        class_set.keep(5, strokes(5), IMAGE, ANA, now=2000.0 + KEPT_PER_MINUTE)
    class_set.keep(5, strokes(5), IMAGE, BEN, now=2000.0 + KEPT_PER_MINUTE)  # another browser
    class_set.keep(5, strokes(5), IMAGE, ANA, now=2000.0 + 61 + KEPT_PER_MINUTE)  # a minute on
    assert class_set.counts().total == KEPT_PER_MINUTE + 2


def test_a_browser_and_a_set_are_capped(class_set, monkeypatch):
    monkeypatch.setattr(class_drawings, "KEPT_PER_BROWSER", 3)
    monkeypatch.setattr(class_drawings, "MAX_SET_SIZE", 5)
    for hour in range(3):  # never too fast: an hour apart
        class_set.keep(5, strokes(5), IMAGE, ANA, now=3600.0 * (hour + 1))
    with pytest.raises(KeepRefused, match="This browser has kept 3 drawings in 'class', the most"):
        class_set.keep(5, strokes(5), IMAGE, ANA, now=3600.0 * 5)
    class_set.keep(5, strokes(5), IMAGE, BEN, now=3600.0 * 5)
    class_set.keep(5, strokes(5), IMAGE, TEACHER, now=3600.0 * 5)  # the teacher has no cap
    with pytest.raises(KeepRefused, match="The set 'class' is full \\(5 drawings\\)"):
        class_set.keep(5, strokes(5), IMAGE, TEACHER, now=3600.0 * 6)  # nor anyone past it
    assert class_set.counts().total == 5


def test_the_owner_or_the_teacher_deletes_and_nobody_else(class_set):
    mine = class_set.keep(6, strokes(6), IMAGE, ANA)
    theirs = class_set.keep(8, strokes(8), IMAGE, BEN)
    with pytest.raises(KeepRefused, match="Only the student who kept a drawing, or the teacher"):
        class_set.delete(theirs.key, ANA)
    class_set.delete(mine.key, ANA)
    class_set.delete(theirs.key, TEACHER)
    assert class_set.read().drawings == ()
    with pytest.raises(KeepRefused, match="no longer in the set"):
        class_set.delete(mine.key, ANA)


def test_a_locked_set_keeps_nothing_more_and_only_the_teacher_locks(class_set):
    kept = class_set.keep(6, strokes(6), IMAGE, ANA)
    with pytest.raises(KeepRefused, match="Only the teacher may lock"):
        class_set.set_locked(True, ANA)
    class_set.set_locked(True, TEACHER)
    with pytest.raises(KeepRefused, match="locked this set"):
        class_set.keep(6, strokes(6), IMAGE, ANA)
    with pytest.raises(KeepRefused, match="locked this set"):
        class_set.delete(kept.key, ANA)
    class_set.set_locked(False, TEACHER)
    class_set.keep(6, strokes(6), IMAGE, ANA)
    assert class_set.counts().total == 2


def test_thirty_students_keeping_at_once_lose_nothing(class_set):
    students = [Requester(f"{n:016x}") for n in range(30)]

    def keep_five(student):
        for digit in range(5):
            class_set.keep(digit, strokes(digit), IMAGE, student, writer=student.owner)

    threads = [threading.Thread(target=keep_five, args=(s,)) for s in students]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = class_set.counts()
    assert counts.total == 150
    assert set(counts.per_writer.values()) == {5}
    assert not [p for p in class_set.path.iterdir() if p.name.startswith(".")]  # no temporaries


def test_keeping_is_fast(class_set):
    for digit in range(10):
        class_set.keep(digit, strokes(digit), IMAGE, TEACHER)
    started = time.perf_counter()
    class_set.keep(3, strokes(3), IMAGE, ANA)
    assert time.perf_counter() - started < 0.5  # the target (50 ms) is bench/load.py's


def test_import_adds_a_checked_file_whole_or_not_at_all(class_set, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(
        "\n".join(
            json.dumps({"digit": d, "writer": w, "strokes": strokes(d)})
            for w in "xy"
            for d in range(10)
        )
    )
    assert class_set.import_file(good) == 20
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text() + '\n{"digit": 11, "writer": "z", "strokes": []}\n')
    with pytest.raises(DrawingsError, match="bad.jsonl: line 21: digit must be a whole number"):
        class_set.import_file(bad)
    not_lines = tmp_path / "table.csv"
    not_lines.write_text("digit,writer\n3,ana\n")
    with pytest.raises(DrawingsError, match="table.csv: line 1: not JSON"):
        class_set.import_file(not_lines)
    assert class_set.counts().total == 20
    # The teacher deletes one imported drawing: the rest of its file stays.
    class_set.delete(class_set.read().drawings[3].key, TEACHER)
    assert class_set.counts().total == 19


def test_export_as_strokes_reads_back_and_as_npz_in_the_keras_layout(class_set):
    for writer in ("ana", "ben", "chloé", "dan", "eve"):
        for digit in range(10):
            class_set.keep(digit, strokes(digit), IMAGE, TEACHER, writer=writer)
    drawings = class_set.read()
    lines = export_jsonl(drawings).decode().splitlines()
    assert len(lines) == 50 and "owner" not in json.loads(lines[0])
    path = class_set.path.parent / "again.jsonl"
    path.write_text("\n".join(lines))
    assert read_drawings(path).summary().per_digit == (5,) * 10
    arrays = np.load(io.BytesIO(export_npz(drawings, np.stack([IMAGE] * 50))))
    assert arrays["x_train"].dtype == np.uint8 and arrays["x_train"].shape[1:] == (28, 28)
    assert len(arrays["y_train"]) + len(arrays["y_test"]) == 50
    assert len(arrays["y_test"]) == 10  # one writer of five, never in both halves


def test_a_drawings_file_of_the_same_name_is_not_taken_for_a_class_set(tmp_path):
    folder = DrawingsFolder(tmp_path)
    (tmp_path / "class.jsonl").write_text("")
    with pytest.raises(KeepRefused, match="is a drawings file, not a class's set"):
        ClassSet(folder, "class")


def test_the_canvas_json_gives_back_the_points_the_pointer_reported():
    path = [["M", 9.9, 10], ["Q", 10, 10, 15, 15], ["Q", 20, 20, 25, 25], ["L", 30.1, 30]]
    shapes = {"objects": [{"type": "Path", "path": path}, {"type": "Rect"}]}
    (stroke,) = canvas_strokes(shapes)
    assert stroke.tolist() == [[10, 10], [20, 20], [30.1, 30]]
    assert canvas_strokes(None) == []
