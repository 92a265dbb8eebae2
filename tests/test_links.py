"""Settings carried by links: a job as query parameters and back, bad parameters named and
skipped, the Train page starting from its URL (AppTest, then a real browser)."""

from __future__ import annotations

import json
import uuid
from functools import partial
from urllib.parse import parse_qs, urlsplit

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from bench.browser import browser_missing
from mnist_core.jobs import default_job
from mnist_core.links import PARAMETERS, job_from_query, job_settings, link, query_from_job
from mnist_core.models import KINDS
from mnist_core.text import as_read
from tests.apptest import open_page, texts

NON_DEFAULT = {
    "ann": default_job(
        "ann",
        hidden_units=(64, 32),
        activation="tanh",
        dropout=0.35,
        optimizer="sgd",
        learning_rate=3e-5,
        schedule="constant",
        augment=True,
        output_activation="sigmoid",
        loss="mse",
        epochs=2,
        batch_size=100,
        train_size=1500,
        time_budget=12.5,
        validation_size=400,
        seed=7,
        styles=0.3,
        drawings="class-3b",
        drawings_weight=0.4,
        name="exercise 1",
        experiment="hidden units",
    ),
    "cnn": default_job(
        "cnn",
        filters=(8, 16, 32, 64),
        kernel_size=5,
        pooling="average",
        batch_norm=False,
        dense_units=64,
        dropout=0.0,
        optimizer="rmsprop",
        learning_rate=0.01,
        epochs=1,
        time_budget=60,
    ),
}


@pytest.mark.parametrize("kind", KINDS)
def test_a_default_job_is_just_its_kind(kind):
    assert query_from_job(default_job(kind)) == {"kind": kind}
    assert job_from_query({"kind": kind}) == (default_job(kind), [])


@pytest.mark.parametrize("kind", KINDS)
def test_settings_go_through_a_link_and_back(kind):
    job = NON_DEFAULT[kind]
    url = link("http://localhost:8501/train", job)
    query = {name: values for name, values in parse_qs(urlsplit(url).query).items()}
    assert job_from_query(query) == (job, [])
    assert "," in url and "%2C" not in url  # layer sizes stay readable: hidden=64,32


def test_every_setting_of_the_ann_travels():
    """A new field of the configs is a new parameter: this fails until it gets a non-default
    value above, so that its reading from a URL is tested too."""
    travelled = set(query_from_job(NON_DEFAULT["ann"])) - {"kind"}
    ann_parameters = {name for name, p in PARAMETERS.items() if "ann" in p.kinds}
    assert travelled == ann_parameters


def test_short_readable_names():
    url = link("/train", default_job("ann", hidden_units=(32,), epochs=2, learning_rate=0.01))
    assert url == "/train?kind=ann&hidden=32&lr=0.01&epochs=2"


def test_the_server_folders_never_travel():
    job = default_job("ann", data_path="/srv/mnist.npz", models_dir="/srv/models")
    assert query_from_job(job) == {"kind": "ann"}
    assert "models_dir" in job_from_query({"models_dir": "/tmp"})[1][0]
    assert "data_path" not in job_settings(job)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"kind": "rnn"}, "kind='rnn' ignored: must be one of ann, cnn"),
        ({"epochs": "two"}, "epochs='two' ignored: must be a whole number"),
        ({"epochs": "0"}, "epochs='0' ignored: epochs must be 1-1000, got 0"),
        ({"epochs": "2.5"}, "epochs='2.5' ignored: must be a whole number"),
        ({"lr": "fast"}, "lr='fast' ignored: must be a number"),
        ({"lr": "nan"}, "lr='nan' ignored: must be a finite number"),
        ({"lr": "2000"}, "lr='2000' ignored: learning rate must be in (0, 1000], got 2000.0"),
        ({"dropout": "1"}, "dropout='1' ignored: dropout must be in [0, 1), got 1.0"),
        ({"filters": "8,lots"}, "filters='8,lots' ignored: layer sizes must be whole numbers"),
        ({"filters": "8,8,8,8,8"}, "filters='8,8,8,8,8' ignored: at most 4 conv blocks"),
        ({"hidden": "32"}, "hidden='32' ignored: a setting of the ANN, not the CNN"),
        ({"kernel": "4"}, "kernel='4' ignored: kernel size must be 3, 5 or 7, got 4"),
        ({"optimizer": "adagrad"}, "optimizer='adagrad' ignored: optimizer must be one of"),
        ({"batch_norm": "maybe"}, "batch_norm='maybe' ignored: must be true or false"),
        ({"train_size": "50"}, "train_size='50' ignored: training-set size must be at least 100"),
        ({"seconds": "-5"}, "seconds='-5' ignored: time budget must be positive seconds"),
        ({"output": "tanh"}, "output='tanh' ignored: a tanh output goes negative"),
        ({"colour": "red"}, "colour='red' ignored: not a setting (hidden, activation,"),
    ],
)
def test_a_bad_parameter_is_named_and_the_rest_applies(query, message):
    job, problems = job_from_query({**query, "epochs": "3", "dropout": "0.1"} | query)
    assert len(problems) == 1 and problems[0].startswith(message), problems
    if "epochs" not in query:
        assert job.training.epochs == 3
    if "dropout" not in query:
        assert job.model.dropout == 0.1


def test_too_many_training_images_for_this_data():
    job, problems = job_from_query({"train_size": "60000", "epochs": "2"}, available=3600)
    assert problems == [
        "train_size='60000' ignored: training-set size must be at least 100 and at most "
        "3,600 images, got 60,000"
    ]
    assert job == default_job("cnn", epochs=2)


def test_settings_that_need_each_other_apply_in_any_order():
    for query in ({"output": "tanh", "loss": "mse"}, {"loss": "mse", "output": "tanh"}):
        job, problems = job_from_query({"kind": "ann", **query})
        assert problems == [] and (job.model.output_activation, job.model.loss) == ("tanh", "mse")


def test_a_page_reads_its_own_parameters_and_starts_from_its_own_job():
    preset = default_job("ann", hidden_units=(16,), experiment="neurons")
    job, problems = job_from_query(
        {"preset": "neurons", "epochs": "2", "kind": "cnn"}, preset, other_parameters={"preset"}
    )
    assert job == default_job("ann", hidden_units=(16,), experiment="neurons", epochs=2)
    assert problems == ["kind='cnn' ignored: these settings are for the ANN"]
    assert query_from_job(job, base=preset) == {"kind": "ann", "epochs": "2"}


def test_a_repeated_parameter_takes_its_last_value():
    assert job_from_query({"epochs": ["2", "3"]})[0].training.epochs == 3


# --- the Train page -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_resources(mnist_reference):
    """The server's resources (data, training worker) made once for these tests' apps."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MNIST_DATA", mnist_reference)
        st.cache_resource.clear()
        yield
        st.cache_resource.clear()


@pytest.fixture
def train_page(app_resources, monkeypatch, mnist_reference):
    monkeypatch.setenv("MNIST_DATA", mnist_reference)
    return partial(open_page, "pages/train.py")


def form_values(app: AppTest) -> dict[str, object]:
    widgets = [*app.text_input, *app.number_input, *app.slider, *app.select_slider]
    return {w.label: w.value for w in [*widgets, *app.selectbox, *app.checkbox]}


def test_train_page_starts_from_the_links_settings(train_page):
    app = train_page(kind="ann", hidden="32,16", epochs="2", lr="0.01", batch="100", seconds="30")
    assert app.segmented_control[0].value == "ann"
    values = form_values(app)
    assert values["Hidden layers (units, comma-separated)"] == "32, 16"
    assert (values["Epochs"], values["Learning rate"], values["Batch size"]) == (2, 0.01, 100)
    assert values["Time budget in seconds (0: no limit)"] == 30
    assert not [w for w in app.warning if "ignored" in w.value]
    assert app.code[0].value == "/train?kind=ann&hidden=32,16&lr=0.01&epochs=2&batch=100&seconds=30"


def test_train_page_names_each_bad_parameter_and_keeps_the_rest(train_page):
    app = train_page(kind="cnn", filters="8,x", kernel="5", epochs="0")
    (warning,) = [as_read(w.value) for w in app.warning if "ignored" in w.value]
    assert "filters='8,x' ignored: layer sizes must be whole numbers" in warning
    assert "epochs='0' ignored: epochs must be 1-1000, got 0" in warning
    values = form_values(app)
    assert values["Kernel size"] == 5 and values["Epochs"] == default_job("cnn").training.epochs
    assert app.code[0].value == "/train?kind=cnn&kernel=5"


def test_train_page_link_follows_the_users_edits(train_page):
    app = train_page(kind="ann", epochs="2")
    next(n for n in app.number_input if n.label == "Epochs").set_value(7).run()
    assert app.code[0].value == "/train?kind=ann&epochs=7"
    assert "Cannot start" not in texts(app) and "saved as" not in texts(app)  # nothing started
    app.run()  # a later run keeps the user's settings and their link
    assert app.code[0].value == "/train?kind=ann&epochs=7"
    assert next(n for n in app.number_input if n.label == "Epochs").value == 7


# --- in a real browser ----------------------------------------------------------------------


@pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
def test_a_link_opens_the_train_page_with_its_settings_and_trains_them(
    app_server, page, models_dir, mnist
):
    from playwright.sync_api import expect

    name = f"linked-{uuid.uuid4().hex[:8]}"  # this run's model, not one an earlier run left
    query = f"kind=ann&hidden=32&epochs=2&train_size=1000&name={name}"
    page.goto(f"{app_server}/train?{query}")
    expect(page.get_by_label("Hidden layers (units, comma-separated)")).to_have_value(
        "32", timeout=60_000
    )
    expect(page.get_by_label("Epochs")).to_have_value("2", timeout=30_000)
    expect(page.get_by_role("radio", name="ANN (dense)")).to_be_checked(timeout=30_000)
    link = page.get_by_test_id("stCode").filter(has_text="/train?")
    expect(link).to_contain_text(f"{app_server}/train?{query}", timeout=30_000)
    page.get_by_text("The Keras code of this network").click()  # the network the link describes
    code = page.get_by_test_id("stCode").filter(has_text="keras.Sequential")
    expect(code).to_contain_text('layers.Dense(32, activation="relu")', timeout=30_000)
    expect(code).to_contain_text("EPOCHS = 2")
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_text(f"ANN saved as {name}")).to_be_visible(timeout=120_000)
    meta = json.loads((models_dir / f"{name}.json").read_text())
    assert meta["config"]["hidden_units"] == [32] and meta["kind"] == "ann"
    assert meta["training"]["epochs"] == 2 and meta["data"]["train_images"] == 1000
