"""Drawings sets: real people's pen digits read from JSON lines, checked line by line, and seen
as the Draw page sees a drawing."""

from __future__ import annotations

import gzip
import json
import re

import numpy as np
import pytest

from bench.synthetic_digits import DIGITS
from mnist_core.drawings import (
    DrawingsError,
    DrawingsFolder,
    parse_drawing,
    read_drawings,
    seen_by_networks,
    writer_split,
)
from mnist_core.preprocessing import preprocess_canvas
from mnist_core.strokes import placed, render


def line(digit: int, writer: str = "ana", scale: float = 250.0, **extra) -> str:
    """A digit of the bench's pen strokes as a tablet would give it: its own units, y down."""
    strokes = [[[x * scale, y * scale] for x, y in stroke] for stroke in DIGITS[digit]]
    return json.dumps({"digit": digit, "writer": writer, "strokes": strokes, **extra})


@pytest.fixture
def drawings_file(tmp_path):
    path = tmp_path / "class-3b.jsonl"
    lines = [line(d, writer) for writer in ("ana", "ben", "chloé") for d in range(10)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_set_is_read_with_its_digits_and_writers(drawings_file):
    drawings = read_drawings(drawings_file)
    assert drawings.name == "class-3b"
    summary = drawings.summary()
    assert (summary.count, summary.writers, summary.per_digit) == (30, 3, (3,) * 10)
    assert drawings.drawings[0].strokes[0].shape[1] == 2


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "a JSON object was expected, not list"),
        ('{"digit": 3, "writer": "a"}', "no 'strokes'"),
        (line(3).replace('"digit": 3', '"digit": 12'), "digit must be a whole number 0-9, got 12"),
        (line(3).replace('"digit": 3', '"digit": true'), "digit must be a whole number 0-9"),
        (line(3, writer=""), "writer must be a name of 1-100 characters"),
        (line(3, writer="x" * 101), "writer must be a name of 1-100 characters"),
        ('{"digit": 3, "writer": "a", "strokes": []}', "no strokes"),
        ('{"digit": 3, "writer": "a", "strokes": [[[1, 2], [3]]]}', "stroke 1 has a point that"),
        ('{"digit": 3, "writer": "a", "strokes": [[[1, NaN], [3, 4]]]}', "NaN is not a coord"),
        ('{"digit": 3, "writer": "a", "strokes": [[[1, -2], [3, 4]]]}', "negative coordinate"),
        ('{"digit": 3, "writer": "a", "strokes": [[[5, 5], [5, 5]]]}', "a dot is not a digit"),
        (
            '{"digit": 3, "writer": "a", "strokes": [' + ",".join(["[[0, 0], [1, 1]]"] * 51) + "]}",
            "51 strokes; a digit has at most 50",
        ),  # fmt: skip
        (
            '{"digit": 3, "writer": "a", "strokes": [[' + ",".join(["[1, 1]"] * 5001) + "]]}",
            "5,001 points; a digit has at most 5,000",
        ),  # fmt: skip
    ],
)
def test_each_bad_line_says_its_fault(text, fault):
    with pytest.raises(ValueError, match=None) as raised:
        parse_drawing(text)
    assert fault in str(raised.value)


def test_a_file_with_bad_lines_names_them_and_nothing_of_it_is_used(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [line(1), "{oops", line(2), *["[]"] * 7, line(3, writer="")]
    path.write_text("\n".join(lines))
    with pytest.raises(DrawingsError) as raised:
        read_drawings(path)
    message = str(raised.value)
    assert message.startswith("mixed.jsonl: line 2: not JSON")
    assert "line 4: a JSON object was expected" in message
    assert "(and 4 more bad lines). Nothing of it was used." in message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "has no digits in it"),
        (b"\xff\xfe\x00bad", "is not text (JSON lines in UTF-8)"),
    ],
)
def test_an_empty_or_binary_file_is_refused_by_name(tmp_path, content, message):
    path = tmp_path / "odd.jsonl"
    path.write_bytes(content)
    with pytest.raises(DrawingsError, match=re.escape(message)):
        read_drawings(path)


def test_the_folder_lists_its_sets_and_the_environment_moves_it(tmp_path, monkeypatch):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "mine.jsonl").write_text(line(7))
    with gzip.open(folder / "theirs.jsonl.gz", "wt") as out:
        out.write(line(1, writer="x") + "\n" + line(4, writer="y"))
    (folder / "broken.jsonl").write_text("nope")
    (folder / "notes.txt").write_text("not a set")
    monkeypatch.setenv("MNIST_DRAWINGS_DIR", str(folder))
    drawings = DrawingsFolder()
    assert drawings.names() == ["broken", "mine", "theirs"]
    summaries, problems = drawings.summaries()
    assert [(s.name, s.count, s.writers) for s in summaries] == [("mine", 1, 1), ("theirs", 2, 2)]
    assert problems == ["broken.jsonl: line 1: not JSON (Expecting value at column 1). "
                        "Nothing of it was used."]  # fmt: skip
    assert drawings.load("theirs").labels.tolist() == [1, 4]
    assert drawings.load(folder / "mine.jsonl").name == "mine"  # a file, by its path
    with pytest.raises(DrawingsError, match="the sets in .* are: broken, mine, theirs"):
        drawings.load("nobody")
    assert DrawingsFolder(tmp_path / "none").names() == []


def test_drawings_are_seen_through_the_draw_page_s_own_preprocessing(drawings_file):
    drawings = read_drawings(drawings_file).drawings[:6]
    seen = seen_by_networks(drawings, seed=3)
    assert seen.images.shape == (6, 28, 28) and not seen.unread.any()
    again = seen_by_networks(drawings, seed=3)
    np.testing.assert_array_equal(seen.images, again.images)  # the same set reads the same
    rng = np.random.default_rng((3, 4))  # the fifth digit, as seen_by_networks places it
    page = preprocess_canvas(render(placed(drawings[4].strokes, rng)))
    np.testing.assert_array_equal(seen.images[4], page.image)


def test_digits_are_placed_as_people_draw_them_not_always_centred_or_large(drawings_file):
    strokes = read_drawings(drawings_file).drawings[8].strokes
    rng = np.random.default_rng(0)
    boxes = []
    for _ in range(200):
        points = np.concatenate(placed(strokes, rng))
        boxes.append((*points.min(axis=0), *points.max(axis=0)))
    low_x, low_y, high_x, high_y = np.array(boxes).T
    heights = high_y - low_y
    assert heights.min() < 0.5 * heights.max()  # small and large
    assert (low_x < 20).any() and (high_x > 316).any()  # against either edge, sometimes
    assert low_x.min() >= 11 and high_x.max() <= 325  # the brush never leaves the canvas


def test_a_writer_split_keeps_each_writer_on_one_side(drawings_file):
    drawings = read_drawings(drawings_file).drawings
    inside, outside = writer_split(drawings, 0.34, seed=1)
    assert len(inside) == 10 and len(outside) == 20
    writers = [{drawings[i].writer for i in side} for side in (inside, outside)]
    assert not writers[0] & writers[1]
