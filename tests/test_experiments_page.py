"""The Experiments page: a preset from a link, run through the training worker, its results."""

import re
from functools import partial

import pytest

from bench.browser import browser_missing
from mnist_core.registry import ModelRegistry
from tests.apptest import open_page, texts, wait_for

SMALL = {"preset": "ann-vs-cnn", "epochs": "1", "train_size": "1000"}

pytestmark = pytest.mark.usefixtures("apptest_env")

open_experiments = partial(open_page, "pages/experiments.py")


def test_a_link_opens_its_preset_with_its_changes():
    app = open_experiments(preset="optimizers", epochs="2", dropout="2", colour="red")
    assert app.selectbox[0].value == "optimizers"
    table = app.dataframe[0].value  # the data editor
    assert list(table["name"])[0] == "sgd-no-dropout-crossentropy"
    assert set(table["epochs"]) == {2}
    assert "dropout='2' ignored: dropout must be in [0, 1)" in texts(app)
    assert "colour='red' ignored: not a setting" in texts(app)
    link = app.code[0].value
    assert link.endswith("/experiments?preset=optimizers&epochs=2"), link


def test_an_unknown_preset_is_named_and_the_first_one_shown():
    app = open_experiments(preset="colours")
    assert "preset='colours' ignored" in texts(app)
    assert app.selectbox[0].value == "neurons"
    assert "No experiment has finished a model yet" in texts(app)


def test_running_a_preset_trains_and_tags_every_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_MODELS_DIR", str(tmp_path))
    app = open_experiments(**SMALL)
    next(b for b in app.button if b.label == "Run these 2 models").click()
    app.run()
    wait_for(app, lambda: "finished: 2 models" in texts(app) and len(app.selectbox) == 2)
    saved = ModelRegistry(tmp_path).entries()
    assert sorted(e.name for e in saved) == ["ann", "cnn"]
    tags = {e.meta["experiment"] for e in saved}
    assert len(tags) == 1 and app.selectbox[1].value == tags.pop()
    results = app.dataframe[1].value  # after the data editor
    assert list(results["Model"]) == ["ann", "cnn"]
    assert {e.meta["training"]["epochs"] for e in saved} == {1}


playwright = pytest.importorskip("playwright.sync_api")


@pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
def test_a_teacher_hands_out_an_experiment_and_a_student_runs_it(app_server, page):
    expect = playwright.expect
    page.goto(f"{app_server}/experiments?preset=ann-vs-cnn&epochs=1&train_size=1000")
    expect(page.get_by_text(re.compile(r"/experiments\?preset=ann-vs-cnn&epochs=1"))).to_be_visible(
        timeout=60_000
    )
    page.get_by_role("button", name="Run these 2 models").click()
    expect(page.get_by_text(re.compile(r"^Model [12] of 2: (ann|cnn)")).first).to_be_visible(
        timeout=60_000
    )
    expect(
        page.get_by_text(re.compile(r"^Experiment ann-vs-cnn-\S+ finished: 2 models"))
    ).to_be_visible(timeout=180_000)
    # The run's end reruns the whole page, which then shows the results under the live curves.
    csv_button = page.get_by_role("button", name="Download the results (CSV)")
    expect(csv_button).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(4, timeout=60_000)
    with page.expect_download() as download:
        csv_button.click()
    rows = download.value.path().read_text().splitlines()
    assert rows[0].startswith("Model,Kind,Test accuracy") and len(rows) == 3
