"""Page logic through Streamlit's AppTest (the canvas itself is tested in a real browser)."""

import ast
import gc
import io
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from bench.synthetic_digits import DIGITS, render
from mnist_core.jobs import TrainingConfig, TrainingJob
from mnist_core.models import AnnConfig, CnnConfig
from mnist_core.text import as_read
from mnist_core.training import train
from tests.apptest import APP, open_page, texts, wait_for


def lines(app) -> list[str]:
    return texts(app).splitlines()


ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("apptest_env")


def test_home_says_where_the_data_came_from():
    app = open_page()
    assert app.title[0].value.startswith("MNIST live")
    assert "offline MNIST sample" in app.warning[0].value
    assert texts(app).count("4,000 training and 1,000 test digits") == 1  # said once, not twice
    assert "MNIST_DATA" in app.warning[0].value  # how to get the full set


def start_button(app):
    return next(b for b in app.button if b.label == "Start training")


@pytest.mark.parametrize(
    ("label", "value", "message"),
    [
        ("Conv filters per block (comma-separated)", "32, lots", "layer sizes must be whole"),
        ("Conv filters per block (comma-separated)", "9" * 400, "got [9999999999999"),
        ("Epochs", 0, "epochs must be 1-1000, got 0"),
        ("Epochs", 1e9, "epochs must be 1-1000, got 1000000000"),  # not read as 1
        ("Epochs", 2.5, "epochs must be a whole number, got 2.5"),
        ("Time budget in seconds (0: no limit)", -1, "time budget must be 0 (no limit) or more"),
        ("Dense units before the output (0: none)", 99_999, "dense units must be 0-4096"),
    ],
)
def test_the_train_page_says_what_is_wrong_beside_start_until_it_is_fixed(label, value, message):
    app = open_page("pages/train.py")
    field = next(w for w in [*app.text_input, *app.number_input] if w.label == label)
    before = field.value
    field.set_value(value).run()
    error = next(e.value for e in app.error if "Cannot start" in e.value)
    assert message in as_read(error) and len(error) < 300, error
    assert start_button(app).disabled
    next(w for w in [*app.text_input, *app.number_input] if w.label == label).set_value(before)
    app.run()
    assert "Cannot start" not in texts(app) and not start_button(app).disabled


def test_train_page_trains_and_shows_the_result():
    app = open_page("pages/train.py")
    app.segmented_control[0].set_value("ann").run()
    next(t for t in app.text_input if t.label.startswith("Hidden layers")).set_value("32")
    next(n for n in app.number_input if n.label == "Epochs").set_value(1)
    next(s for s in app.slider if s.label == "Training images").set_value(1000)
    start_button(app).click()
    app.run()
    wait_for(app, lambda: "saved as" in texts(app), 120)
    assert "ANN saved as" in texts(app) and "test accuracy" in texts(app)
    assert len(app.get("plotly_chart")) == 2


def test_the_train_page_says_what_is_true_before_a_browser_s_first_run(saved_models):
    app = open_page("pages/train.py")
    assert "No run of yours yet; 2 models are saved on this server" in texts(app)


def test_a_run_cut_short_by_a_restart_is_offered_to_resume_not_called_no_training(
    saved_models,
):
    import hashlib
    import json

    from mnist_core.jobs import default_job
    from mnist_core.training_queue import STATE_FILE

    token = "a-browser-token-of-24-chars"
    owner = hashlib.sha256(token.encode()).hexdigest()[:16]
    run = {"id": 1, "owner": owner, "submitted": 0, "first": 0}
    run["jobs"] = [default_job("ann", models_dir=str(saved_models)).to_dict()]
    (saved_models / STATE_FILE).write_text(json.dumps({"next_id": 2, "runs": [run]}))
    app = AppTest.from_file(APP, default_timeout=60)
    app.session_state["browser_token"] = token  # this browser's cookie
    app.run()
    app.switch_page("pages/train.py").run()
    said = texts(app)
    assert "was cut short when the server stopped" in said
    assert "Your run was cut short when the server stopped: resume it above" in said
    assert "No training yet" not in said and "No run of yours yet" not in said


def test_draw_page_without_models_offers_quick_training():
    app = open_page("pages/draw.py")
    assert "No ANN and CNN model yet" in texts(app)
    assert any(b.label == "Train quick ANN and CNN models" for b in app.button)


def test_draw_page_offers_quick_training_of_the_missing_kind_only(
    small_mnist_sample, tmp_path, monkeypatch
):
    job = TrainingJob(CnnConfig(filters=(8,)), TrainingConfig(epochs=1), models_dir=str(tmp_path))
    train(job, small_mnist_sample)
    monkeypatch.setenv("MNIST_MODELS_DIR", str(tmp_path))
    app = open_page("pages/draw.py")
    assert "No ANN model yet. Train quick default model here" in texts(app)
    assert [b.label for b in app.button if b.label.startswith("Train quick")] == [
        "Train quick ANN model"
    ]


@pytest.fixture
def saved_models(small_mnist_sample, tmp_path, monkeypatch):
    models_dir = tmp_path / "models"
    for config in (AnnConfig(hidden_units=(32,)), CnnConfig(filters=(8,), dense_units=16)):
        job = TrainingJob(config, TrainingConfig(epochs=1), models_dir=str(models_dir))
        train(job, small_mnist_sample)
    monkeypatch.setenv("MNIST_MODELS_DIR", str(models_dir))
    return models_dir


@pytest.fixture(scope="module")
def small_mnist_sample():
    from mnist_core.data import load_mnist

    return load_mnist("sample")


def test_draw_page_lists_models_and_waits_for_a_drawing(saved_models):
    app = open_page("pages/draw.py")
    labels = [s.label for s in app.selectbox]
    assert labels == ["ANN model", "CNN model"]
    assert app.selectbox[0].value.startswith("ann-") and app.selectbox[1].value.startswith("cnn-")
    assert "% test" in app.selectbox[0].value  # each model shows its test accuracy
    headers = " ".join(h.value for h in app.subheader)
    assert "ANN: waiting for a drawing" in headers and "CNN: waiting for a drawing" in headers
    assert "Draw a digit on the black square" in texts(app)


def test_draw_page_reports_a_corrupt_model_and_keeps_the_other(saved_models):
    cnn = next(saved_models.glob("cnn-*.keras"))
    cnn.write_bytes(b"not a keras archive")
    app = open_page("pages/draw.py")
    assert "This model cannot be used" in texts(app) and cnn.name in texts(app)
    assert "ANN: waiting for a drawing" in " ".join(h.value for h in app.subheader)


def test_a_model_deleted_after_it_was_listed_is_said_and_the_other_served(saved_models):
    """A stroke reruns only the Draw page's fragment, with the model list of the page's last
    full run: a model deleted or renamed since (another browser, the teacher) must be said,
    not raised as FileNotFoundError, and the other network still serve."""

    def models_listed_then_one_deleted() -> None:
        import streamlit as st

        import ui

        entries = ui.entries_by_kind()
        for kind in ("ann", "cnn"):
            entry = ui.entry_choice(kind, entries[kind])
            if entry is None:
                continue
            if kind == "ann":  # gone between the listing and the loading
                ui.registry().delete(entry.name)
            if ui.usable_model(entry) is not None:
                st.write(f"{kind} serves")

    ann = next(saved_models.glob("ann-*.keras")).stem
    app = AppTest.from_function(models_listed_then_one_deleted).run()
    assert not app.exception, app.exception
    assert f"ANN {ann} was deleted or renamed" in texts(app) and "choose another" in texts(app)
    assert "ANN: no model yet" in texts(app)  # the page read the models folder again
    assert "cnn serves" in texts(app)


def photo_of(digit: int) -> bytes:
    """A digit written in dark ink on light paper, as a PNG file."""
    ink = render(DIGITS[digit], width=20)[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(235 - (ink * 0.8).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_draw_page_reads_an_uploaded_photo(saved_models):
    app = open_page("pages/draw.py")
    app.segmented_control(key="source").set_value("Photo").run()
    app.file_uploader(key="photo").set_value(("seven.png", photo_of(7), "image/png")).run()
    assert not app.exception, app.exception
    said = texts(app)
    assert "ANN predicts" in said and "CNN predicts" in said
    *bars, steps = [e.proto.body for e in app.get("html")]  # each model's ten bars, the steps
    assert [b.count("<b ") for b in bars] == [10, 10] and "ANN probabilities" in bars[0], bars
    assert steps.count('src="data:image/png;base64,') == 4, steps[:300]
    assert "centred in 28×28: the input" in steps


def test_every_upload_limit_is_one_the_server_takes():
    """The server refuses any upload above its ``maxUploadSize`` (HTTP 413: a raw
    "AxiosError" in the widget), whatever the widget says: it is the largest limit a page
    gives, and each uploader gives its own."""
    from mnist_core.preprocessing import MAX_UPLOAD_BYTES
    from mnist_core.registry import MAX_MODEL_BYTES

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == MAX_MODEL_BYTES // 2**20
    draw = open_page("pages/draw.py")
    draw.segmented_control(key="source").set_value("Photo").run()
    assert draw.file_uploader(key="photo").proto.max_upload_size_mb == MAX_UPLOAD_BYTES // 2**20
    models = open_page("pages/models.py")
    uploader = models.file_uploader(key="model_upload")
    assert uploader.proto.max_upload_size_mb == MAX_MODEL_BYTES // 2**20


def test_draw_page_refuses_a_file_that_is_not_an_image(saved_models):
    app = open_page("pages/draw.py")
    app.segmented_control(key="source").set_value("Photo").run()
    app.file_uploader(key="photo").set_value(("digit.png", b"not a picture", "image/png")).run()
    assert not app.exception, app.exception
    assert "cannot be read as an image" in texts(app)
    assert "predicts" not in texts(app)


def test_runs_keep_served_models_fast(saved_models, monkeypatch):
    """Streamlit clears Keras's session after every run, unless told not to: a full garbage
    collection (~250 ms) and an emptied kernel cache, under other users' predictions too."""
    import keras

    cleared = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *args, **kwargs: cleared.append(1))
    gc.unfreeze()
    app = open_page("pages/draw.py")
    app.segmented_control(key="source").set_value("Photo").run()
    app.file_uploader(key="photo").set_value(("seven.png", photo_of(7), "image/png")).run()
    assert "CNN predicts" in texts(app)
    assert cleared == []
    assert gc.get_freeze_count() > 100_000  # the loaded models' objects, out of full collections


def test_every_page_follows_the_pattern():
    """Listed in app.py's navigation, and first of all sent through it (ui.py says why)."""
    navigation = (ROOT / "app.py").read_text()
    for page in sorted((ROOT / "pages").glob("*.py")):
        assert f'page("{page.stem}", ' in navigation, f"{page.name} is not in app.py"
        body = ast.parse(page.read_text()).body
        code = [
            statement
            for statement in body[1:]  # after the docstring
            if not isinstance(statement, ast.Import | ast.ImportFrom)
        ]
        first = ast.unparse(code[0])
        assert first == "ui.run_through_app_navigation()", f"{page.name} starts with {first!r}"


def test_a_streamlit_without_the_patched_name_fails_loudly(monkeypatch):
    from streamlit.runtime.scriptrunner import script_runner

    import ui

    monkeypatch.delattr(script_runner, "_clean_problem_modules")
    with pytest.raises(RuntimeError, match="no longer has script_runner._clean_problem_modules"):
        ui.keep_keras_state_between_runs()


def test_the_private_streamlit_names_ui_relies_on_are_there():
    """ui.py names both workarounds; this Streamlit must still have what they change, and
    still look the patched function up by name after each run (else the patch does nothing)."""
    import inspect

    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import script_runner

    assert hasattr(PagesManager, "uses_pages_directory")
    assert "_log_if_error(_clean_problem_modules)" in inspect.getsource(script_runner.ScriptRunner)


def test_evaluate_page_without_models_says_to_train_first():
    app = open_page("pages/evaluate.py")
    assert "No saved model yet: train one on the Train page." in texts(app)


def test_evaluate_page_compares_the_newest_ann_and_cnn(
    saved_models, small_mnist_sample, monkeypatch
):
    import keras

    import ui

    evaluations = []
    evaluate = ui.evaluate_digits
    monkeypatch.setattr(ui, "evaluate_digits", lambda *a: evaluations.append(1) or evaluate(*a))
    app = open_page("pages/evaluate.py")
    chosen = app.multiselect[0].value
    assert [label[:4] for label in chosen] == ["ann-", "cnn-"]
    assert len(app.get("plotly_chart")) == 3  # two confusion matrices, the per-digit bars
    # The mistakes counted by the page, against Keras's own predictions from the model files.
    x_test, y_test = small_mnist_sample.x_test[..., None] / 255, small_mnist_sample.y_test
    for path in sorted(saved_models.glob("*.keras")):  # ann-..., then cnn-...
        wrong = keras.saving.load_model(path).predict(x_test, verbose=0).argmax(1) != y_test
        assert f"{path.stem}: {wrong.sum():,} mistakes, most confident first" in lines(app)
    assert any(" right, " in line and " wrong: " in line for line in lines(app))
    app.toggle[0].set_value(True).run()  # another run: the evaluations are kept
    app.selectbox[0].set_value(7).run()  # mistakes on true 7s only
    assert not app.exception, app.exception
    assert evaluations == [1, 1]  # once per model file
    ann = next(line for line in lines(app) if line.startswith("ann-"))
    assert (
        ann.endswith("mistakes, most confident first")
        and int(ann.split(": ")[1].split()[0]) <= (y_test == 7).sum()
    )


@pytest.fixture
def drawings_dir(drawings_folder, monkeypatch):
    """conftest's drawings folder, as the app's."""
    monkeypatch.setenv("MNIST_DRAWINGS_DIR", str(drawings_folder))
    return drawings_folder


def test_evaluate_page_grades_models_on_a_drawings_set_writer_by_writer(saved_models, drawings_dir):
    app = open_page("pages/evaluate.py")
    app.selectbox(key="evaluate_digits").set_value("class-3b").run()
    assert not app.exception, app.exception
    assert "20 digits by 2 writers" in texts(app)
    assert len(app.get("plotly_chart")) == 3
    (writers,) = app.dataframe
    assert writers.value["Writer"].tolist() != [] and set(writers.value["Writer"]) == {"ana", "ben"}
    assert writers.value["Digits"].tolist() == [10, 10]
    mistakes = [line for line in lines(app) if "mistakes, most confident first" in line]
    assert len(mistakes) == 2 and all(int(m.split(": ")[1].split()[0]) <= 20 for m in mistakes)


def test_data_page_browses_a_drawings_set_by_digit_and_writer(drawings_dir):
    app = open_page("pages/data.py")
    app.selectbox(key="data_set").set_value("class-3b").run()
    app.selectbox(key="data_writer").set_value("ben").run()
    assert not app.exception, app.exception
    assert len(image_captions(app)) == 10
    assert all(c.endswith(", ben") for c in image_captions(app)), image_captions(app)
    app.selectbox(key="data_digit").set_value(7).run()
    assert image_captions(app)[0] == "#17: 7, ben"


def image_captions(app) -> list[str]:
    """The captions of the digits browsed ("#index: label, writer")."""
    captions = [as_read(image.proto.imgs[0].caption) for image in app.get("image")]  # as shown
    return [caption for caption in captions if caption.startswith("#")]
