"""The real thing: `streamlit run app.py`, headless Chromium, mouse strokes on the canvas.

The app, the browser and the pages come from conftest.py's fixtures (app_server, browser,
page), the drawing from bench/browser.py: the benchmarks draw alike.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from bench.browser import (
    browser_missing,
    canvas_of,
    clear,
    clear_of_toolbar,
    draw,
    open_draw_page,
    predictions,
    stroke_points,
)
from bench.synthetic_digits import DIGITS, random_digit
from mnist_core.jobs import default_job
from mnist_core.preprocessing import BRUSH_SIZE

playwright = pytest.importorskip("playwright.sync_api")
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "tests" / "screenshots"))

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))


@pytest.fixture(scope="module")
def models_dir(trained_models, tmp_path_factory):
    """A copy of the session's trained ANN and CNN: a test here trains one more."""
    return shutil.copytree(trained_models, tmp_path_factory.mktemp("browser") / "models")


def test_drawing_every_digit_shows_both_predictions(app_server, page):
    open_draw_page(page, app_server)
    # A fresh server's first visit is this URL: it must still go through app.py's navigation.
    navigation = page.get_by_test_id("stSidebarNav").inner_text().split()
    assert {"Home", "Train", "Draw"} <= set(navigation) and "app" not in navigation, navigation
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    read = {}
    for digit, strokes in DIGITS.items():
        draw(page, strokes)
        read[digit] = predictions(page, f"digit {digit}, after reading {read}")
        if digit == 7:
            page.get_by_text("centred in 28×28").wait_for(timeout=10_000)  # the strip is drawn
            page.wait_for_timeout(500)
            page.screenshot(path=str(SCREENSHOTS / "draw.png"), full_page=True)
        clear(page)
    cnn_right = sum(read[d]["CNN"] == d for d in DIGITS)
    ann_right = sum(read[d]["ANN"] == d for d in DIGITS)
    assert cnn_right >= 8 and ann_right >= 6, read


def test_random_pen_stroke_digits_drawn_with_the_mouse(app_server, page):
    """Digits of any size, place and slant, as the pen-stroke benchmark makes them."""
    open_draw_page(page, app_server)
    rng = np.random.default_rng(7)
    read = {}
    for digit in rng.permutation(10)[:6]:
        draw(page, clear_of_toolbar(random_digit(rng, int(digit), brush=BRUSH_SIZE)))
        read[int(digit)] = predictions(page, f"digit {digit}, after reading {read}")
        clear(page)
    assert sum(read[d]["CNN"] == d for d in read) >= 5, read


def test_drawing_with_a_finger(app_server, browser):
    """Touch: a phone-sized page, a stroke made of touch events, both predictions."""
    context = browser.new_context(
        has_touch=True,
        is_mobile=True,
        device_scale_factor=2,
        viewport={"width": 412, "height": 900},
    )
    page = context.new_page()
    open_draw_page(page, app_server)
    canvas = canvas_of(page)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    touch = context.new_cdp_session(page)
    points = stroke_points(box, DIGITS[7][0])
    touch.send(
        "Input.dispatchTouchEvent",
        {"type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1], "id": 1}]},
    )
    for x, y in points[1:]:
        touch.send(
            "Input.dispatchTouchEvent",
            {"type": "touchMove", "touchPoints": [{"x": x, "y": y, "id": 1}]},
        )
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    assert predictions(page, "touch stroke")["CNN"] == 7
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "draw-phone.png"), full_page=True)
    context.close()


def test_blank_canvas_gives_no_prediction_and_a_hint(app_server, page):
    page.goto(f"{app_server}/draw")
    page.get_by_text("CNN: waiting for a drawing").wait_for(timeout=60_000)
    page.get_by_text("Draw a digit on the black square").wait_for(timeout=10_000)
    assert page.get_by_text(re.compile(r"(ANN|CNN) predicts")).count() == 0


PAGES = {  # the sidebar's label -> the page's url path and title
    "Home": ("", "MNIST live: dense net vs convnet"),
    "Train": ("train", "Train a network"),
    "Draw": ("draw", "Draw a digit"),
    "Compare": ("compare", "Compare models"),
    "Evaluate": ("evaluate", "Evaluate a model"),
    "Robustness": ("robustness", "Robustness: moved, turned, blurred digits"),
    "Inspect": ("inspect", "Inspect the networks"),
    "Class drawings": ("drawings", "The class's drawings"),
    "Fooled the networks": ("fooled", "They fooled the networks"),
    "Class challenge": ("leaderboard", "Leaderboard"),
    "Experiments": ("experiments", "Experiments"),
    "Data": ("data", "The data: MNIST"),
    "Models": ("models", "Saved models"),
}


def test_every_page_opens_from_its_url_and_from_the_sidebar(app_server, page):
    expect = playwright.expect
    title = page.get_by_role("heading", level=1)
    links = page.get_by_test_id("stSidebarNav").get_by_role("link")
    for path, heading in PAGES.values():
        page.goto(f"{app_server}/{path}")
        expect(title).to_have_text(heading, timeout=60_000)
        expect(links).to_have_count(len(PAGES))
        assert page.get_by_test_id("stException").count() == 0, path
    for label, (path, heading) in PAGES.items():  # one session, page to page, as in a class
        links.filter(has_text=re.compile(f"{re.escape(label)}$")).click()  # not "Class drawings"
        expect(title).to_have_text(heading, timeout=60_000)
        expect(page).to_have_url(f"{app_server}/{path}")
        assert page.get_by_test_id("stException").count() == 0, path


def test_a_class_gets_no_developer_menu(app_server, page):
    page.goto(f"{app_server}/train")
    page.get_by_role("button", name="Start training").wait_for(timeout=60_000)
    assert page.get_by_role("button", name="Deploy").count() == 0
    page.get_by_test_id("stMainMenu").click()
    menu = page.get_by_test_id("stMainMenuList")
    playwright.expect(menu).to_contain_text("Print", timeout=10_000)  # the menu is open
    assert "Clear cache" not in menu.inner_text()  # it would drop the training worker


def _only_value(locator) -> str | None:
    """The value of the one matching input, or None while a rerun still shows its stale twin."""
    try:
        return locator.input_value(timeout=1_000) if locator.count() == 1 else None
    except playwright.Error:  # the twin appeared between count() and input_value()
        return None


def test_training_in_the_browser_live_and_stop(app_server, page):
    page.goto(f"{app_server}/train")
    page.get_by_role("button", name="Start training").wait_for(timeout=60_000)
    page.get_by_text("ANN (dense)").click()
    epochs = page.get_by_label("Epochs")
    deadline = time.monotonic() + 30
    while _only_value(epochs) != str(default_job("ann").training.epochs):
        assert time.monotonic() < deadline, "the ANN form did not replace the CNN one"
        page.wait_for_timeout(100)
    epochs.fill("50")
    page.get_by_role("button", name="Start training").click()
    elapsed = page.get_by_test_id("stMetricValue").first
    elapsed.wait_for(timeout=60_000)
    seen = set()
    deadline = time.monotonic() + 30
    while len(seen) < 4 and time.monotonic() < deadline:  # the numbers move on their own
        seen.add(elapsed.inner_text())
        page.wait_for_timeout(300)
    assert len(seen) >= 4, f"elapsed time did not update live: {seen}"
    page.screenshot(path=str(SCREENSHOTS / "train.png"), full_page=True)
    page.get_by_test_id("stMain").get_by_role(
        "button", name="Stop"
    ).click()  # not the header's Stop
    page.get_by_text("stopped early").wait_for(timeout=60_000)
    assert "test accuracy" in page.get_by_text("stopped early").inner_text()


def test_evaluate_page_shows_where_each_model_goes_wrong(app_server, page):
    page.goto(f"{app_server}/evaluate")
    page.get_by_role("tab", name="Confusions").wait_for(timeout=120_000)
    expect = playwright.expect
    charts = page.locator("[data-testid=stPlotlyChart]")  # two confusion matrices, the bars
    expect(charts).to_have_count(3, timeout=60_000)
    expect(page.get_by_text(re.compile(r"^(ann|cnn)-.*% right, loss"))).to_have_count(2)
    page.get_by_role("tab", name="Mistakes").click()
    mistakes = page.get_by_text(re.compile(r"mistakes, most confident first"))
    expect(mistakes).to_have_count(2)
    expect(page.get_by_text(re.compile(r"^\d read as \d \(\d+%\)$")).first).to_be_visible()
    page.get_by_role("tab", name="Where they disagree").click()
    expect(page.get_by_text(re.compile(r" right, .* wrong: \d+ digits"))).to_have_count(2)
    page.screenshot(path=str(SCREENSHOTS / "evaluate.png"), full_page=True)
