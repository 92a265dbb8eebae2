"""Every row of docs/bad-inputs.md: what a student can type, draw, upload or link that cannot
work, the message they get, and that nothing saved is lost on the way."""

from __future__ import annotations

import io
import math
import shutil
import socket
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from bench.synthetic_digits import DIGITS, render
from mnist_core import registry as registry_module
from mnist_core.data import DataError, load_mnist
from mnist_core.jobs import TrainingConfig, default_job
from mnist_core.links import job_from_query
from mnist_core.models import (
    MAX_PARAMETERS,
    AnnConfig,
    CnnConfig,
    build_model,
    parameter_count,
    validate,
)
from mnist_core.preprocessing import (
    CANVAS_SIZE,
    MAX_PIXELS,
    ImageError,
    preprocess_canvas,
    preprocess_photo,
)
from mnist_core.registry import ModelLoadError, ModelNotFound, ModelRegistry, sanitize_name
from mnist_core.text import as_read
from tests.apptest import open_page, texts
from tests.test_data import synthetic_arrays, write_idx_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def models(trained_models, tmp_path) -> Path:
    """A copy of the session's trained ANN and CNN, to change."""
    return Path(shutil.copytree(trained_models, tmp_path / "models"))


@pytest.fixture(scope="module")
def models_dir(trained_models):
    """The browser test's app serves the trained models (it only reads them)."""
    return trained_models


def listing(models: Path) -> list[str]:
    """The files of the models folder, hidden ones too: a refused action adds or removes none."""
    return sorted(p.name for p in models.iterdir())


def still_whole(models: Path, before: list[str]) -> None:
    """Nothing added or lost, and every model still listed and loadable."""
    assert listing(models) == before
    registry = ModelRegistry(models)
    assert {e.kind for e in registry.entries()} == {"ann", "cnn"}
    for entry in registry.entries():
        assert registry.load(entry).count_params() == entry.meta["params"]


# --- hyper-parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"epochs": 0}, "epochs must be 1-1000, got 0"),
        ({"epochs": -3}, "epochs must be 1-1000, got -3"),
        ({"epochs": 1001}, "epochs must be 1-1000, got 1001"),
        ({"train_size": 1}, "training-set size must be at least 100"),
        ({"batch_size": 512, "train_size": 300}, "batch size 512 is larger than the training set"),
        ({"time_budget": math.nan}, "time budget must be positive seconds, got nan"),
        ({"time_budget": math.inf}, "time budget must be positive seconds, got inf"),
    ],
)
def test_training_settings_past_their_limits_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**settings).check()


def test_a_batch_above_the_training_set_names_both_numbers():
    with pytest.raises(ValueError, match="batch size 8,192 is larger than the training set of "):
        TrainingConfig(batch_size=8192).check(available=3_600)  # the whole offline sample
    with pytest.raises(ValueError, match="of 300 images: choose a batch of at most 300"):
        TrainingConfig(batch_size=512, train_size=300).check(available=55_000)
    TrainingConfig(epochs=1000, batch_size=300, train_size=300).check(available=55_000)


@pytest.mark.parametrize(
    "config, message",
    [
        (AnnConfig(learning_rate=0), r"learning rate must be in \(0, 1000\], got 0"),
        (AnnConfig(learning_rate=-1), r"learning rate must be in \(0, 1000\], got -1"),
        (AnnConfig(learning_rate=math.nan), "learning rate must be in"),
        (CnnConfig(learning_rate=1001), r"learning rate must be in \(0, 1000\], got 1001"),
        (AnnConfig(hidden_units=(4097,)), "layer sizes must be 1-4096"),
        (AnnConfig(hidden_units=(4096, 4096)), "has 20,037,642 parameters; the limit is 8,000,000"),
        (AnnConfig(hidden_units=(2048,) * 4), "parameters; the limit is 8,000,000"),
        (CnnConfig(filters=(4096,) * 4, kernel_size=7), "has 2,466,574,346 parameters"),
        (CnnConfig(filters=(2048,)), "would take about 4.7 GB of memory; the limit is 2 GB"),
    ],
)
def test_impossible_or_oversized_networks_are_refused_before_training(config, message):
    with pytest.raises(ValueError, match=message):
        validate(config)


def test_a_far_too_high_learning_rate_reaches_training():
    """1000 passes the checks: the run then stops on a NaN loss and says so (test_training)."""
    validate(AnnConfig(learning_rate=1000))
    job, problems = job_from_query({"kind": "ann", "lr": "1000"})
    assert job.model.learning_rate == 1000 and not problems


def test_the_memory_check_scales_with_the_batch():
    validate(CnnConfig(), batch_size=4096)
    with pytest.raises(ValueError, match="batches of 8192 would take about 3.8 GB"):
        validate(CnnConfig(), batch_size=8192)


def test_the_parameter_count_is_keras_own():
    configs = [
        AnnConfig(hidden_units=(7, 3), augment=True),
        CnnConfig(filters=(4, 8, 16, 32), kernel_size=5, batch_norm=False, dense_units=33),
        CnnConfig(filters=(5,), kernel_size=7, dense_units=12),
    ]
    for config in configs:
        assert parameter_count(config) == build_model(config).count_params()
    biggest = AnnConfig(hidden_units=(4096, 1024, 512))  # the widest first layer, and more
    assert parameter_count(biggest) < MAX_PARAMETERS
    validate(biggest)


# --- the canvas --------------------------------------------------------------------------------


def canvas(strokes, width: int = 24) -> np.ndarray:
    return render(strokes, CANVAS_SIZE, width)


# Strokes stay inside the canvas's edges: a press on an edge may miss it.
FILLED = [[(0.02, y), (0.98, y)] for y in np.linspace(0.02, 0.98, 21)]  # every row painted
DENSE_SCRIBBLE = [[(x, 0.02 if i % 2 else 0.98) for i, x in enumerate(np.linspace(0.02, 0.98, 31))]]
LOOSE_SCRIBBLE = [[(0.05, 0.1), (0.9, 0.3), (0.1, 0.6), (0.95, 0.9), (0.5, 0.05)]]


def test_a_blank_canvas_waits_for_a_drawing():
    assert preprocess_canvas(np.zeros((CANVAS_SIZE, CANVAS_SIZE, 4), np.uint8)) is None


def test_one_dot_asks_for_a_bigger_digit():
    with pytest.raises(ImageError, match="That is too small to read: draw a bigger digit"):
        preprocess_canvas(canvas([[(0.5, 0.5), (0.505, 0.5)]]))


@pytest.mark.parametrize("strokes", [FILLED, DENSE_SCRIBBLE], ids=["all white", "scribble"])
def test_ink_over_most_of_the_canvas_asks_for_one_digit(strokes):
    with pytest.raises(ImageError, match="That fills most of the square: press Clear and draw"):
        preprocess_canvas(canvas(strokes))


def test_a_loose_scribble_and_a_fat_digit_are_read():
    assert preprocess_canvas(canvas(LOOSE_SCRIBBLE)).image.shape == (28, 28)
    for digit in (0, 8):  # the most ink a digit has, with the fattest brush
        assert preprocess_canvas(canvas(DIGITS[digit], width=40)) is not None


def test_the_draw_page_says_what_is_wrong_with_each_drawing(app_server, page):
    """The canvas rows in a real browser: a dot, then a scribble, Clear between (a canvas
    painted all over takes 21 strokes, each a rerun: its message is the dot's path,
    ``test_ink_over_most_of_the_canvas_asks_for_one_digit`` its rule)."""
    from playwright.sync_api import expect

    from bench.browser import clear, clear_of_toolbar, draw, open_draw_page, predictions

    open_draw_page(page, app_server)
    main = page.locator("[data-testid=stMain]")
    expect(main).to_contain_text("Draw a digit on the black square")  # blank
    draw(page, [[(0.5, 0.5), (0.51, 0.5)]])
    expect(main).to_contain_text("That is too small to read: draw a bigger digit")
    clear(page)
    draw(page, clear_of_toolbar(LOOSE_SCRIBBLE))
    assert set(predictions(page, "a loose scribble")) == {"ANN", "CNN"}
    expect(page.locator("[data-testid=stException]")).to_have_count(0)


# --- model names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wanted, saved",
    [
        ("../x", "x"),
        ("a/b", "a-b"),
        ("a\\b", "a-b"),
        ("n" * 300, "n" * 80),
        ("größe", "gr-e"),
        ("<script>alert(1)</script>", "script-alert-1-script"),
        ("**bold** [x](http://e)", "bold-x-http-e"),
    ],
)
def test_a_new_name_is_made_safe_and_stays_in_the_models_folder(models, wanted, saved):
    registry = ModelRegistry(models)
    ann = registry.newest("ann")
    renamed = registry.rename(ann.name, wanted)
    assert renamed.name == saved == sanitize_name(wanted)
    assert renamed.model_path == models / f"{saved}.keras"
    assert registry.load(registry.get(saved)).count_params() == ann.meta["params"]
    assert {e.kind for e in registry.entries()} == {"ann", "cnn"}


@pytest.mark.parametrize("wanted", ["", "ß数字", "../", "   "])
def test_a_name_without_usable_characters_is_refused(models, wanted):
    before = listing(models)
    with pytest.raises(ValueError, match="has no usable characters"):
        ModelRegistry(models).rename(ModelRegistry(models).newest("ann").name, wanted)
    still_whole(models, before)


def test_a_run_named_without_usable_characters_is_refused_before_training():
    with pytest.raises(ValueError, match="has no usable characters"):
        default_job("ann", name="ß数字").check()


def test_only_a_saved_name_finds_a_model(models):
    registry = ModelRegistry(models)
    ann = registry.newest("ann")
    registry.rename(ann.name, "x")
    with pytest.raises(ModelNotFound, match=r"no model named '\.\./x': saved names have only"):
        registry.get("../x")
    with pytest.raises(ModelNotFound, match="did you mean 'x'"):
        registry.get("x!")
    with pytest.raises(ModelNotFound, match="no model named ''"):
        registry.delete("")
    assert registry.get("x").name == "x"


def test_a_truncated_name_ends_in_a_letter_or_digit():
    assert sanitize_name("a" * 79 + ".keras") == "a" * 79


# --- uploads: photos ---------------------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A PNG of a few dozen bytes that declares ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(100)))
        + chunk(b"IEND", b"")
    )


def photo_bytes(size=(200, 200), fmt="PNG", line=True) -> bytes:
    image = Image.new("L", size, 235)
    if line:  # a dark "1" down the middle
        w, h = size
        ImageDraw.Draw(image).line([(w // 2, h // 5), (w // 2, 4 * h // 5)], 20, max(4, w // 40))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><text>7</text></svg>'


@pytest.mark.parametrize(
    "data, message",
    [
        (b"%PDF-1.4 a document", "This file cannot be read as an image: upload a PNG, JPEG"),
        (b"", "This file cannot be read as an image"),
        (photo_bytes()[:300], "This image cannot be read: the file is damaged or cut short"),
        (SVG, "That is an SVG drawing, not a photo"),
        (png_header(100_000, 100_000), r"decompression bomb\?\); the limit is 50 megapixels"),
        (png_header(8000, 6300), "The image is 8000x6300 pixels; the limit is 50 megapixels"),
        (photo_bytes(line=False), "No visible ink in the image"),
    ],
    ids=["not an image", "empty", "truncated", "svg", "bomb", "51 megapixels", "blank paper"],
)
def test_unusable_photos_are_refused_with_a_clear_message(data, message):
    with pytest.raises(ImageError, match=message):
        preprocess_photo(data)


def test_a_50_megapixel_photo_is_read():
    width = 8660
    data = photo_bytes((width, MAX_PIXELS // width), fmt="JPEG")
    assert preprocess_photo(data).image.shape == (28, 28)


def test_the_draw_page_shows_an_upload_refusal_and_goes_on(apptest_env, models, monkeypatch):
    monkeypatch.setenv("MNIST_MODELS_DIR", str(models))
    app = open_page("pages/draw.py")
    app.segmented_control(key="source").set_value("Photo").run()
    for name, data, message in [
        ("seven.svg.png", SVG, "That is an SVG drawing, not a photo"),
        ("bomb.png", png_header(100_000, 100_000), "decompression bomb"),
    ]:
        app.file_uploader(key="photo").set_value((name, data, "image/png")).run()
        assert not app.exception, app.exception
        assert message in " ".join(e.value for e in app.error) and "predicts" not in texts(app)
    app.file_uploader(key="photo").set_value(("one.png", photo_bytes(), "image/png")).run()
    assert "ANN predicts" in texts(app) and "CNN predicts" in texts(app)


# --- uploads: models ---------------------------------------------------------------------------


def keras_bytes(model, tmp_path: Path) -> bytes:
    path = tmp_path / "upload-source.keras"
    model.save(path)
    return path.read_bytes()


def zip_without_config() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "no model here")
    return out.getvalue()


def lambda_model():
    import keras

    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Lambda(lambda x: x * 2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def flat_input_model():
    import keras

    return keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda tmp: bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8)),
            "not a .keras",
        ),
        (lambda tmp: zip_without_config(), "this .keras file cannot be loaded"),
        (lambda tmp: keras_bytes(lambda_model(), tmp), "it holds Python code, e.g. a Lambda layer"),
        (lambda tmp: keras_bytes(flat_input_model(), tmp), r"reads \(784,\) inputs into \(10,\)"),
    ],
    ids=["random bytes", "zip without config", "lambda layer", "wrong input shape"],
)
def test_a_keras_file_that_is_not_a_usable_model_is_refused(
    models, small_mnist, tmp_path, make, message
):
    data = make(tmp_path)
    before = listing(models)
    with pytest.raises(ModelLoadError, match=message):
        ModelRegistry(models).import_model(data, "upload", small_mnist)
    still_whole(models, before)


def test_an_oversized_model_upload_is_refused_unread(models, small_mnist, monkeypatch):
    monkeypatch.setattr(registry_module, "MAX_MODEL_BYTES", 2**20)
    before = listing(models)
    with pytest.raises(ModelLoadError, match="the file is 2 MB; the limit is 1 MB"):
        ModelRegistry(models).import_model(bytes(2 * 2**20), "upload", small_mnist)
    with pytest.raises(ValueError, match="has no usable characters"):
        ModelRegistry(models).import_model(b"", "数字", small_mnist)
    still_whole(models, before)


def test_a_model_upload_is_measured_and_saved_beside_the_others(models, small_mnist):
    registry = ModelRegistry(models)
    cnn = registry.newest("cnn")
    entry = registry.import_model(
        cnn.model_path.read_bytes(), "<b>mine</b>", small_mnist, {"owner": "a session"}
    )
    assert entry.name == "b-mine-b" and entry.kind == "cnn" and entry.meta["imported"]
    assert entry.meta["owner"] == "a session" and 0.5 < entry.test_accuracy <= 1
    assert registry.get(entry.name).meta["params"] == cnn.meta["params"]
    assert len(registry.entries()) == 3 and not [p for p in listing(models) if "tmp" in p]


def test_a_saved_model_with_code_in_it_is_not_run(models, tmp_path):
    registry = ModelRegistry(models)
    ann = registry.newest("ann")
    ann.model_path.write_bytes(keras_bytes(lambda_model(), tmp_path))  # swapped on disk
    with pytest.raises(ModelLoadError, match="holds Python code"):
        registry.load(ann)
    assert registry.load(registry.newest("cnn")) is not None


# --- data files --------------------------------------------------------------------------------


def npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda p: p.write_bytes(npz(p, **synthetic_arrays()).read_bytes()[:500]) and p,
            r"bad\.npz: not a readable MNIST \.npz file",
        ),
        (lambda p: p.write_bytes(b"") and p or p, r"bad\.npz: not a readable MNIST \.npz file"),
        (
            lambda p: npz(p, **{**synthetic_arrays(), "x_test": np.zeros((5, 32, 32), np.uint8)}),
            r"bad\.npz: x_test should be uint8 \(N, 28, 28\), got uint8 \(5, 32, 32\)",
        ),
        (
            lambda p: npz(p, **{**synthetic_arrays(), "y_train": np.full(60, 12)}),
            r"bad\.npz: y_train labels outside 0-9 \(12\.\.12\)",
        ),
        (
            lambda p: npz(p, **{**synthetic_arrays(), "y_train": np.full(60, 3.7)}),
            "bad.npz: y_train labels should be whole numbers, got float64",
        ),
        (
            lambda p: npz(p, **{**synthetic_arrays(), "y_test": np.array([None] * 50)}),
            r"bad\.npz: not a readable MNIST \.npz file \(Object arrays cannot be loaded",
        ),
    ],
    ids=["truncated", "empty", "wrong shape", "labels out of range", "float labels", "pickle"],
)
def test_a_broken_data_file_names_the_file_and_the_fault(tmp_path, make, message):
    path = make(tmp_path / "bad.npz")
    with pytest.raises(DataError, match=message):
        load_mnist(path)


def test_a_folder_without_idx_files_says_which_is_missing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no train-images-idx3-ubyte"):
        load_mnist(tmp_path / "empty")
    write_idx_folder(tmp_path / "idx", synthetic_arrays())
    assert len(load_mnist(tmp_path / "idx").y_train) == 60


# --- URL parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, message",
    [
        ({"epochs": "0"}, "epochs='0' ignored: epochs must be 1-1000, got 0"),
        ({"epochs": "100000"}, "epochs='100000' ignored: epochs must be 1-1000"),
        ({"lr": "-1"}, r"lr='-1' ignored: learning rate must be in (0, 1000]"),
        ({"epochs": "abc"}, "epochs='abc' ignored: must be a whole number"),
        ({"hidden": "1,,x"}, "hidden='1,,x' ignored: layer sizes must be whole numbers"),
        ({"seconds": "nan"}, "seconds='nan' ignored: must be a finite number"),
        ({"seconds": "inf"}, "seconds='inf' ignored: must be a finite number"),
        ({"kind": "xyz"}, "kind='xyz' ignored: must be one of ann, cnn"),
        ({"colour": "red"}, "colour='red' ignored: not a setting (hidden,"),
        ({"batch": "4000", "train_size": "1000"}, "batch='4000' ignored: batch size 4,000 is"),
        ({"hidden": "4096,4096"}, "hidden='4096,4096' ignored: this network has 20,037,642"),
    ],
)
def test_a_bad_link_parameter_is_named_and_skipped(query, message):
    job, problems = job_from_query({"kind": "ann", **query}, available=3_600)
    assert [p for p in problems if p.startswith(message)], problems
    assert len(problems) == 1
    if "train_size" in query:  # the rest of the link still applies
        assert job.training.train_size == 1000


def test_a_10000_character_parameter_is_cut_short_in_its_message():
    job, problems = job_from_query({"epochs": "9" * 10_000, "x" * 10_000: "1", "hidden": "8"})
    assert job == default_job("cnn")
    assert problems[0].startswith(f"epochs='{'9' * 39}…' ignored: must be a whole number")
    assert problems[1].startswith(f"{'x' * 39}…='1' ignored: not a setting")
    assert all(len(p) < 300 for p in problems), [len(p) for p in problems]


def test_the_train_page_names_bad_link_parameters_and_keeps_working(apptest_env):
    app = open_page(
        "pages/train.py", kind="ann", epochs="0", lr="-1", hidden="64", note="x" * 10_000
    )
    warning = as_read(app.warning[-1].value)
    assert "epochs='0' ignored: epochs must be 1-1000" in warning
    assert "lr='-1' ignored: learning rate must be in (0, 1000]" in warning
    assert "note='xxxx" in warning and len(warning) < 1500
    layers = next(t for t in app.text_input if t.label.startswith("Hidden layers"))
    assert layers.value == "64"  # the good parameter applied
    assert next(n for n in app.number_input if n.label == "Epochs").value == 5


# --- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "0"], "error: epochs must be 1-1000, got 0"),
        (
            ["--batch-size", "2000", "--train-size", "1000"],
            "error: batch size 2,000 is larger than the training set of 1,000 images",
        ),
        (["--learning-rate", "0"], "error: learning rate must be in (0, 1000], got 0.0"),
    ],
)
def test_the_command_line_refuses_bad_settings_with_exit_code_2(tmp_path, args, message):
    result = subprocess.run(
        [sys.executable, "-m", "mnist_core", "train", "--model", "ann", "--data", "sample"]
        + ["--models-dir", str(tmp_path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stderr.startswith(message), result.stderr
    assert not list(tmp_path.iterdir())


# --- the school's queue (MNIST_QUEUE) ----------------------------------------------------------


def test_a_school_queue_set_wrong_is_said_on_every_page(apptest_env, monkeypatch):
    monkeypatch.setenv("MNIST_QUEUE", "http://127.0.0.1:6379/0")
    app = open_page("pages/draw.py")
    assert (
        "The training queue is set wrong: 'http://127.0.0.1:6379/0' is not a Redis URL (the scheme http://)"
        in texts(app)
    )


def test_a_school_queue_away_is_said_where_runs_start_and_drawing_goes_on(
    apptest_env, monkeypatch, models
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"  # nothing listens there
    monkeypatch.setenv("MNIST_QUEUE", url)
    monkeypatch.setenv("MNIST_MODELS_DIR", str(models))
    app = open_page("pages/train.py", kind="ann", epochs="1")
    assert f"the training queue's Redis at {url} does not answer" in texts(app)
    next(b for b in app.button if b.label == "Start training").click().run()
    assert f"Cannot start: the training queue's Redis at {url} does not answer" in texts(app)
    draw = open_page("pages/draw.py")
    assert "does not answer" not in texts(draw) and not draw.exception


def test_a_replica_with_another_teacher_passphrase_is_said(apptest_env, monkeypatch, redis_url):
    import redis

    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
        client.set("mnist:teacher", "the digest of another passphrase")
    monkeypatch.setenv("MNIST_QUEUE", redis_url)
    monkeypatch.setenv("MNIST_TEACHER_PASSPHRASE", "ours")
    app = open_page("pages/train.py")
    assert "this server's teacher passphrase is not the one the other servers" in texts(app)
