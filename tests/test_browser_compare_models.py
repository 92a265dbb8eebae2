"""The Compare and Models pages in a real browser: the table, the curves, the CSV download,
a model's notebook download, renaming and deleting a model, and the Draw page serving what
is left."""

from __future__ import annotations

import csv
import json
import re
import shutil

import nbformat
import pytest

from bench.browser import (
    browser_missing,
    draw,
    new_page,
    open_draw_page,
    open_expander,
    predictions,
    settle,
    unlock_teacher,
)
from bench.synthetic_digits import DIGITS
from mnist_core.registry import ZIP_MAGIC, ModelRegistry

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))


@pytest.fixture(scope="module")
def models_dir(trained_models, tmp_path_factory):
    """A copy of the session's trained ANN and CNN: these tests rename and delete."""
    return shutil.copytree(trained_models, tmp_path_factory.mktemp("browser") / "models")


def choice(page, label: str):
    """A selectbox, by its label."""
    return page.get_by_role("combobox", name=label)


def shown(name: str) -> re.Pattern:
    """How a selectbox shows the model ``name``: its name, then its accuracy."""
    return re.compile(rf"^{re.escape(name)} \(")


def test_compare_page_shows_the_table_the_curves_and_downloads_the_csv(
    app_server, page, models_dir
):
    entries = ModelRegistry(models_dir).entries()
    page.goto(f"{app_server}/compare")
    table = page.get_by_test_id("stTable")
    expect(table).to_be_visible(timeout=60_000)
    for entry in entries:
        expect(table).to_contain_text(entry.name)
        expect(table).to_contain_text(f"{entry.test_accuracy:.2%}")
        expect(table).to_contain_text(f"{entry.meta['params']:,}")
    charts = page.get_by_test_id("stPlotlyChart")
    expect(charts).to_have_count(2)
    expect(charts.locator(".gtitle")).to_have_text(
        ["Loss (lower is better)", "Accuracy (higher is better)"]
    )
    expect(charts.first.locator(".xtitle")).to_have_text("epochs")

    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download the table (CSV)").click()
    download = downloading.value
    assert download.suggested_filename == "model-comparison.csv"
    with open(download.path(), newline="") as saved:
        rows = list(csv.DictReader(saved))
    assert [row["Kind"] for row in rows] == ["ANN", "CNN"]  # the newest of each, by default
    by_name = {entry.name: entry for entry in entries}
    assert sorted(row["Model"] for row in rows) == sorted(by_name)
    for row in rows:
        entry = by_name[row["Model"]]
        assert float(row["Test accuracy"]) == entry.meta["test_accuracy"]
        assert float(row["Test loss"]) == entry.meta["test_loss"]
        assert int(row["Training images"]) == entry.meta["data"]["train_images"]

    page.get_by_test_id("stRadio").get_by_text("seconds", exact=True).click()
    expect(charts.first.locator(".xtitle")).to_have_text("seconds of training")


@pytest.fixture
def student(browser):
    """A second browser, drawing on its own while ``page`` changes the models."""
    with new_page(browser) as page:
        yield page


def test_models_page_renames_and_deletes_and_draw_serves_what_is_left(
    app_server, page, student, models_dir, teacher_passphrase
):
    registry = ModelRegistry(models_dir)
    ann, cnn = registry.newest("ann"), registry.newest("cnn")
    page.goto(f"{app_server}/models")
    table = page.get_by_test_id("stTable")
    expect(table).to_contain_text(cnn.name, timeout=60_000)
    expect(choice(page, "Model")).to_have_value(shown(cnn.name))  # the newest
    settle(page)  # an expander clicked while the page still runs can be drawn again closed
    code = open_expander(page, "The Keras code of this network", holding="stCode")
    download = code.get_by_role("button", name="Download as a notebook (.ipynb)")
    with page.expect_download() as downloading:
        download.click()
    assert downloading.value.suggested_filename == f"{cnn.name}.ipynb"
    notebook = nbformat.read(downloading.value.path(), as_version=4)
    nbformat.validate(notebook)
    assert f'NAME = "{cnn.name}"' in notebook.cells[2].source
    expect(page.get_by_role("button", name="Rename")).to_be_disabled()  # not this browser's
    unlock_teacher(page, teacher_passphrase)
    expect(page.get_by_text("Teacher controls on.")).to_be_visible(timeout=60_000)

    new_name = page.get_by_label("New name")
    new_name.fill("CNN for class 3")
    new_name.press("Enter")
    expect(page.get_by_text("Saved as CNN-for-class-3")).to_be_visible()
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_text(f"Renamed {cnn.name} to CNN-for-class-3.")).to_be_visible()
    expect(table).to_contain_text("CNN-for-class-3")
    expect(table).not_to_contain_text(cnn.name)
    expect(choice(page, "Model")).to_have_value(shown("CNN-for-class-3"))
    assert (models_dir / "CNN-for-class-3.keras").exists() and not cnn.model_path.exists()

    open_draw_page(student, app_server)  # the renamed model is served
    expect(choice(student, "CNN model")).to_have_value(shown("CNN-for-class-3"))
    draw(student, DIGITS[7])
    assert predictions(student, "a 7, after the rename")["CNN"] == 7

    page.goto(f"{app_server}/models")
    expect(choice(page, "Model")).to_have_value(shown("CNN-for-class-3"), timeout=60_000)
    page.get_by_role("button", name="Delete this model...").click()
    expect(page.get_by_text("Delete CNN-for-class-3 for good?")).to_be_visible()
    page.get_by_role("button", name="Yes, delete CNN-for-class-3").click()
    expect(page.get_by_text("Deleted CNN-for-class-3.")).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text(ann.name)
    expect(choice(page, "Model")).to_have_value(shown(ann.name))
    assert sorted(path.name for path in models_dir.iterdir()) == [
        f"{ann.name}.json",
        f"{ann.name}.keras",
    ]

    draw(student, [[(0.2, 0.9), (0.5, 0.9)]])  # one more stroke, on a model deleted since
    expect(student.get_by_text("CNN CNN-for-class-3 was deleted or renamed")).to_be_visible()
    expect(student.get_by_text(re.compile(r"^ANN predicts \d$"))).to_be_visible()
    expect(student.get_by_test_id("stException")).to_have_count(0)

    page.goto(f"{app_server}/draw")
    expect(page.get_by_text("ANN: waiting for a drawing")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("No CNN model yet.")).to_be_visible()


def test_a_model_file_over_10_mb_gets_the_page_s_own_answer(app_server, page, tmp_path):
    """Uploads above the photos' 10 MB reach the Models page (up to its 100 MB)."""
    upload = tmp_path / "big.keras"
    upload.write_bytes(ZIP_MAGIC + bytes(12 * 2**20))
    page.goto(f"{app_server}/models")
    page.locator("input[type=file]").set_input_files(upload)
    page.get_by_role("button", name="Add this model").click()
    expect(page.get_by_text("Cannot add this file: this .keras file cannot be")).to_be_visible(
        timeout=60_000
    )
    expect(page.get_by_text("AxiosError")).to_have_count(0)


def test_a_long_name_and_a_missing_value_keep_every_column_in_sight(app_server, page, models_dir):
    """80 letters and underscores (no space to wrap at) and an uploaded model, which has no
    training images: the table still fits the page, every column whole, whole numbers whole."""
    ann = ModelRegistry(models_dir).newest("ann")
    name = "a_model_named_by_a_student_who_likes_long_names_" + "x" * 31
    meta = {**ann.meta, "name": name, "experiment": "neurons-20261202-101010"}
    del meta["data"]
    (models_dir / f"{name}.keras").write_bytes(ann.model_path.read_bytes())
    (models_dir / f"{name}.json").write_text(json.dumps(meta))
    page.goto(f"{app_server}/models")
    table = page.get_by_test_id("stTable")
    expect(table).to_contain_text(ann.meta["config"]["optimizer"], timeout=60_000)
    edge = table.bounding_box()
    for heading in table.locator("th").all():
        box = heading.bounding_box()
        assert box["x"] + box["width"] <= edge["x"] + edge["width"] + 1, heading.inner_text()
    assert f"{ann.meta['data']['train_images']:,}" in table.inner_text()
    assert not re.search(r"\d,\d{3}\.0\b", table.inner_text()), table.inner_text()
