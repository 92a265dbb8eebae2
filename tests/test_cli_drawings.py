"""The command line's drawings sets as a user runs them: ``drawings list / import / export``,
``train --drawings``, ``finetune`` and ``evaluate --drawings`` on a class's set, through
``mnist_core.cli.main`` in this process (TensorFlow is imported once for all of them).

The set here, "hands", has five writers who each wrote two digits of their own twice
(writer k: 2k and 2k+1) in the bench's pen strokes, each at their own size: small, and
with enough writers for a held-out writer, and a digit tells whose it is, so an export's
train and test halves can be checked for a writer on both sides.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal

import numpy as np
import pytest

from bench.synthetic_digits import DIGITS
from mnist_core.class_drawings import ClassSet
from mnist_core.cli import main
from mnist_core.drawings import DrawingsFolder, read_drawings
from mnist_core.registry import ModelRegistry
from mnist_core.training_queue import Requester

WRITERS = ("ana", "ben", "chloé", "dan", "eve")
PER_DIGIT = [2] * 10
TEACHER = Requester("c" * 16, teacher=True)
KEPT_IMAGE = np.eye(28, dtype=np.uint8)


def strokes(digit: int, scale: float) -> list:
    return [[[x * scale, y * scale] for x, y in stroke] for stroke in DIGITS[digit]]


def hands_lines() -> list[str]:
    return [
        json.dumps({"digit": digit, "writer": writer, "strokes": strokes(digit, 120 + 40 * k)})
        for k, writer in enumerate(WRITERS)
        for digit in (2 * k, 2 * k + 1)
        for _ in range(2)
    ]


@pytest.fixture(autouse=True)
def sigint_restored():
    """``train`` and ``finetune`` take over Ctrl-C (stop after this batch): give it back."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


@pytest.fixture(scope="session")
def small_data(tmp_path_factory, small_mnist) -> str:
    """``small_mnist`` (1,500 training digits, 300 test) as a file for ``--data``: read in
    no time, where the offline sample is parsed from text (3 s) at every command."""
    path = tmp_path_factory.mktemp("small-mnist") / "mnist.npz"
    d = small_mnist
    np.savez(path, x_train=d.x_train, y_train=d.y_train, x_test=d.x_test, y_test=d.y_test)
    return str(path)


@pytest.fixture
def hands(tmp_path):
    """A drawings file of the set "hands" (20 digits, 5 writers), outside any folder."""
    path = tmp_path / "hands.jsonl"
    path.write_text("\n".join(hands_lines()) + "\n")
    return path


@pytest.fixture
def folder(tmp_path, hands):
    """A drawings folder holding "hands" as a file."""
    root = tmp_path / "drawings-folder"
    root.mkdir()
    shutil.copy(hands, root / "hands.jsonl")
    return root


@pytest.fixture
def models(trained_models, tmp_path):
    """A models folder of its own holding the session's ANN (copied: never changed there)."""
    directory = tmp_path / "models"
    directory.mkdir()
    ann = next(trained_models.glob("ann-*.json")).stem
    for suffix in (".json", ".keras"):
        shutil.copy(trained_models / f"{ann}{suffix}", directory)
    return directory, ann


def run(capsys, *args) -> tuple[int, dict | None, str]:
    """``python -m mnist_core ARGS``: its exit code, its last stdout line read as JSON (or
    ``None``) and its stderr's last line."""
    capsys.readouterr()
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    result = json.loads(lines[-1]) if code == 0 and lines else None
    return code, result, (err.strip().splitlines() or [""])[-1]


def test_list_says_each_set_s_digits_writers_and_per_digit_and_import_adds_to_it(
    capsys, tmp_path, hands
):
    root = tmp_path / "empty"
    assert run(capsys, "drawings", "list", "--drawings-dir", root)[:2] == (0, {"sets": []})
    code, imported, _ = run(
        capsys, "drawings", "import", hands, "--set", "class-3b", "--drawings-dir", root
    )
    assert code == 0 and imported == {"set": "class-3b", "added": 20, "count": 20}
    shutil.copy(hands, root / "hands.jsonl")  # a set as a file beside the class's folder
    code, listed, _ = run(capsys, "drawings", "list", "--drawings-dir", root)
    assert code == 0
    assert listed == {
        "sets": [
            {"name": name, "count": 20, "writers": 5, "per_digit": PER_DIGIT}
            for name in ("class-3b", "hands")
        ]
    }


@pytest.mark.parametrize(
    ("file", "text", "message"),
    [
        (
            "bad.jsonl",
            hands_lines()[0] + '\n{"digit": 11, "writer": "zoe", "strokes": [[[0, 0], [5, 5]]]}',
            "error: bad.jsonl: line 2: digit must be a whole number 0-9, got 11. "
            "Nothing of it was used.",
        ),
        ("table.csv", "digit,writer\n3,ana\n", "error: table.csv: line 1: not JSON"),
    ],
)
def test_a_bad_import_exits_2_naming_the_file_and_line_and_adds_nothing(
    capsys, tmp_path, hands, file, text, message
):
    root = tmp_path / "drawings-folder"
    assert (
        run(capsys, "drawings", "import", hands, "--set", "class", "--drawings-dir", root)[0] == 0
    )
    files = sorted((root / "class").iterdir())
    (tmp_path / file).write_text(text)
    code, _, error = run(
        capsys, "drawings", "import", tmp_path / file, "--set", "class", "--drawings-dir", root
    )
    assert code == 2 and error.startswith(message), error
    assert sorted((root / "class").iterdir()) == files
    assert DrawingsFolder(root).load("class").summary().count == 20


def test_a_set_name_with_a_path_separator_is_refused(capsys, tmp_path, hands):
    root = tmp_path / "drawings-folder"
    code, _, error = run(
        capsys, "drawings", "import", hands, "--set", "../up", "--drawings-dir", root
    )
    assert code == 2 and error.startswith("error: A set's name is 1-40 letters"), error
    assert not (tmp_path / "up").exists() and not root.exists()


def test_export_as_strokes_reads_back_and_never_overwrites(capsys, tmp_path, folder):
    target = tmp_path / "out.jsonl"
    code, exported, _ = run(capsys, "drawings", "export", "hands", target, "--drawings-dir", folder)
    assert code == 0 and exported == {"set": "hands", "file": str(target), "count": 20}
    again = read_drawings(target)
    assert again.summary().per_digit == tuple(PER_DIGIT)
    assert again.writers == read_drawings(folder / "hands.jsonl").writers
    written = target.read_bytes()
    code, _, error = run(capsys, "drawings", "export", "hands", target, "--drawings-dir", folder)
    assert code == 2 and error == f"error: {target} exists already: choose a new file name"
    assert target.read_bytes() == written


def test_export_as_npz_is_keras_s_layout_with_no_writer_on_both_sides(capsys, tmp_path, folder):
    target = tmp_path / "hands.npz"
    assert run(capsys, "drawings", "export", "hands", target, "--drawings-dir", folder)[0] == 0
    arrays = np.load(target, allow_pickle=False)
    assert sorted(arrays.files) == ["x_test", "x_train", "y_test", "y_train"]
    for x, y in (("x_train", "y_train"), ("x_test", "y_test")):
        assert arrays[x].dtype == arrays[y].dtype == np.uint8
        assert arrays[x].shape == (len(arrays[y]), 28, 28)
        assert (arrays[x].reshape(len(arrays[y]), -1).max(axis=1) > 100).all()  # each a digit
    assert len(arrays["y_train"]) + len(arrays["y_test"]) == 20
    writer = {digit: digit // 2 for digit in range(10)}  # each digit has one writer here
    test_writers = {writer[d] for d in arrays["y_test"].tolist()}
    train_writers = {writer[d] for d in arrays["y_train"].tolist()}
    assert len(test_writers) == 1 and len(train_writers) == 4  # a fifth of the writers
    assert not test_writers & train_writers


def test_train_with_drawings_learns_most_writers_and_measures_the_others(
    capsys, tmp_path, folder, small_data
):
    code, result, error = run(
        capsys, "train", "--model", "ann", "--epochs", "1", "--train-size", "500",
        "--data", small_data, "--models-dir", tmp_path / "models", "--name", "mixed",
        "--drawings", "hands", "--drawings-weight", "0.3", "--drawings-dir", folder,
    )  # fmt: skip
    assert code == 0, error
    assert result["name"] == "mixed" and result["drawings"] == "hands"
    # A quarter of five writers held out (one: 4 digits); the other 16 drawn 8 times each.
    assert result["drawings_learned"] == 16 and result["held_out_writers"] == 1
    assert 0 <= result["held_out_accuracy"] <= 1
    assert result["train_images"] == 500 + 16 * 8
    meta = ModelRegistry(tmp_path / "models").get("mixed").meta
    drawn = meta["drawings"]
    assert (drawn["set"], drawn["weight"], drawn["learned"], drawn["learned_writers"]) == (
        "hands",
        0.3,
        16,
        4,
    )
    assert (drawn["held_out"], drawn["held_out_writers"]) == (4, 1)
    assert drawn["held_out_accuracy"] == pytest.approx(result["held_out_accuracy"], abs=1e-4)
    assert meta["training"]["drawings"] == "hands" and meta["parent"] is None


def digests(directory) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


def test_finetune_saves_a_new_model_that_names_its_parent_and_the_set(
    capsys, models, folder, small_data
):
    directory, ann = models
    before = digests(directory)
    code, result, error = run(
        capsys, "finetune", ann, "--drawings", "hands", "--epochs", "1",
        "--data", small_data, "--models-dir", directory, "--drawings-dir", folder,
    )  # fmt: skip
    assert code == 0, error
    assert result["name"] == f"{ann}-hands" and result["kind"] == "ann"
    assert (result["parent"], result["drawings"], result["epochs"]) == (ann, "hands", 1)
    assert result["drawings_learned"] == 16 and result["held_out_writers"] == 1
    # Fine-tuning takes up to 12,000 MNIST digits: a smaller MNIST gives all it has (1,350
    # once 150 are held out for validation), not a refusal of a size nobody asked for.
    assert result["train_images"] == 1350 + 16 * 8
    meta = ModelRegistry(directory).get(f"{ann}-hands").meta
    assert meta["parent"] == ann and meta["drawings"]["set"] == "hands"
    assert meta["test_accuracy"] > 0.5  # it still reads MNIST
    assert {name: digests(directory)[name] for name in before} == before  # the parent untouched


@pytest.mark.parametrize(
    ("model", "drawings", "message"),
    [
        ("nobody", "hands", "error: no model named 'nobody'"),
        (None, "nobody", "error: No drawings set or file named 'nobody': the sets in "),
    ],
)
def test_finetune_of_an_unknown_model_or_set_says_so(
    capsys, models, folder, small_data, model, drawings, message
):
    directory, ann = models
    before = digests(directory)
    code, _, error = run(
        capsys, "finetune", model or ann, "--drawings", drawings, "--data", small_data,
        "--models-dir", directory, "--drawings-dir", folder,
    )  # fmt: skip
    assert code == 2 and error.startswith(message), error
    assert digests(directory) == before


@pytest.fixture
def class_folder(tmp_path):
    """A drawings folder holding the class's set "class" as the Draw page keeps it (one file
    per digit, with the 28x28 the networks saw: here a diagonal line), ana's and ben's."""
    root = tmp_path / "class-folder"
    kept = ClassSet(DrawingsFolder(root))
    for k, writer in enumerate(("ana", "ben")):
        for digit in range(10):
            kept.keep(digit, strokes(digit, 150 + 100 * k), KEPT_IMAGE, TEACHER, writer=writer)
    return root


def test_export_of_a_kept_set_as_npz_holds_what_the_networks_saw(capsys, tmp_path, class_folder):
    target = tmp_path / "class.npz"
    assert (
        run(capsys, "drawings", "export", "class", target, "--drawings-dir", class_folder)[0] == 0
    )
    arrays = np.load(target, allow_pickle=False)
    images = np.concatenate([arrays["x_train"], arrays["x_test"]])
    assert len(images) == 20 and (images == KEPT_IMAGE * 255).all()  # as the page exports it


def test_evaluate_on_a_class_s_set_folder_reads_each_writer(capsys, class_folder, trained_models):
    root = class_folder
    cnn = next(trained_models.glob("cnn-*.json")).stem
    code, result, error = run(
        capsys, "evaluate", cnn, "--models-dir", trained_models, "--drawings", "class",
        "--drawings-dir", root,
    )  # fmt: skip
    assert code == 0, error
    assert result["n"] == 20 and result["data"] == "drawings:class"
    assert list(result["per_writer"]) == ["ana", "ben"] and result["unread"] == 0
    assert np.array(result["confusion"]).sum() == 20
    assert result["test_accuracy"] >= 0.7  # the bench's own strokes: a sanity check only
