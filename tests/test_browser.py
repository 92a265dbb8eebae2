"""The real thing: `streamlit run app.py`, headless Chromium, mouse strokes on the canvas."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA, ROOT

sys.path.insert(0, str(ROOT / "bench"))
from browser import CHROMIUM, CHROMIUM_ARGS, canvas_of, clear, draw, settle  # noqa: E402  (the benchmarks draw alike)
from mnist_core.jobs import default_job
from mnist_core.pen_strokes import random_digit
from strokes import DIGITS

playwright = pytest.importorskip("playwright.sync_api")
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "tests" / "screenshots"))

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, mnist):
    """A decent ANN and CNN, trained quickly on real digits, as a user would have."""
    from mnist_core.jobs import default_job
    from mnist_core.training import train

    directory = tmp_path_factory.mktemp("models")
    size = min(10_000, len(mnist.y_train) - len(mnist.y_train) // 10)
    for kind in ("ann", "cnn"):
        train(default_job(kind, epochs=3, train_size=size, models_dir=str(directory)), mnist)
    return directory


@pytest.fixture(scope="module")
def server(models_dir, mnist):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MNIST_MODELS_DIR": str(models_dir),
           "MNIST_DATA": DATA}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("streamlit did not start within 60 s")
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield page
    page.close()


def predictions(page, context: str = "", timeout=20) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = page.locator("[data-testid=stMain]").inner_text()
        found = dict(re.findall(r"\b(ANN|CNN) predicts (\d)\b", text))
        if len(found) == 2:
            return {kind: int(digit) for kind, digit in found.items()}
        page.wait_for_timeout(100)
    raise AssertionError(f"no predictions shown ({context}); page says:\n{text[:2000]}")


def test_drawing_every_digit_shows_both_predictions(server, page):
    page.goto(f"{server}/draw")
    page.get_by_text("ANN: waiting for a drawing").wait_for(timeout=60_000)
    # A fresh server's first visit is this URL: it must still go through app.py's navigation.
    navigation = page.get_by_test_id("stSidebarNav").inner_text().split()
    assert {"Home", "Train", "Draw"} <= set(navigation) and "app" not in navigation, navigation
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    settle(page)
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


def test_random_pen_stroke_digits_drawn_with_the_mouse(server, page):
    """Digits of any size, place and slant, as the pen-stroke benchmark makes them."""
    page.goto(f"{server}/draw")
    page.get_by_text("ANN: waiting for a drawing").wait_for(timeout=60_000)
    settle(page)
    rng = np.random.default_rng(7)
    read = {}
    for digit in rng.permutation(10)[:6]:
        strokes = random_digit(rng, int(digit), brush=24)
        # Keep clear of the hidden toolbar's corner, where a press would hit a button.
        strokes = [[(x, max(y, 0.1)) for x, y in stroke] for stroke in strokes]
        draw(page, strokes)
        read[int(digit)] = predictions(page, f"digit {digit}, after reading {read}")
        clear(page)
    assert sum(read[d]["CNN"] == d for d in read) >= 5, read


def test_drawing_with_a_finger(server, browser):
    """Touch: a phone-sized page, a stroke made of touch events, both predictions."""
    context = browser.new_context(has_touch=True, is_mobile=True, device_scale_factor=2,
                                  viewport={"width": 412, "height": 900})
    page = context.new_page()
    page.goto(f"{server}/draw")
    page.get_by_text("ANN: waiting for a drawing").wait_for(timeout=60_000)
    settle(page)
    canvas = canvas_of(page)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    touch = context.new_cdp_session(page)
    points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in DIGITS[7][0]]
    touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [
        {"x": points[0][0], "y": points[0][1], "id": 1}]})
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        for step in range(1, 9):
            x, y = x0 + (x1 - x0) * step / 8, y0 + (y1 - y0) * step / 8
            touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [
                {"x": x, "y": y, "id": 1}]})
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    assert predictions(page, "touch stroke")["CNN"] == 7
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "draw-phone.png"), full_page=True)
    context.close()


def test_blank_canvas_gives_no_prediction_and_a_hint(server, page):
    page.goto(f"{server}/draw")
    page.get_by_text("CNN: waiting for a drawing").wait_for(timeout=60_000)
    page.get_by_text("Draw a digit on the black square").wait_for(timeout=10_000)
    assert page.get_by_text(re.compile(r"(ANN|CNN) predicts")).count() == 0


def test_a_class_gets_no_developer_menu(server, page):
    page.goto(f"{server}/train")
    page.get_by_role("button", name="Start training").wait_for(timeout=60_000)
    assert page.get_by_role("button", name="Deploy").count() == 0
    page.get_by_test_id("stMainMenu").click()
    page.get_by_text("Settings").wait_for(timeout=10_000)  # the menu is open
    assert page.get_by_text("Clear cache").count() == 0  # it would drop the training worker


def _only_value(locator) -> str | None:
    """The value of the one matching input, or None while a rerun still shows its stale twin."""
    try:
        return locator.input_value(timeout=1_000) if locator.count() == 1 else None
    except playwright.Error:  # the twin appeared between count() and input_value()
        return None


def test_training_in_the_browser_live_and_stop(server, page):
    page.goto(f"{server}/train")
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
    page.get_by_test_id("stMain").get_by_role("button", name="Stop").click()  # not the header's Stop
    page.get_by_text("stopped early").wait_for(timeout=60_000)
    assert "test accuracy" in page.get_by_text("stopped early").inner_text()
