"""The app as a user meets it, for the benchmarks: a real server and Debian's Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
CANVAS = "[class*=st-key-canvas-] canvas.upper-canvas"


@contextmanager
def running_app(models_dir: str, data_reference: str):
    """``streamlit run app.py`` on a free port; yields (url, server process) once healthy."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MNIST_MODELS_DIR": models_dir, "MNIST_DATA": data_reference}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port)], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError("streamlit exited before it served the app")
                time.sleep(0.1)
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def chromium_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser.new_page(viewport={"width": 1400, "height": 1000})
        browser.close()


def draw(page, strokes) -> None:
    """Mouse strokes (canvas fractions) on the Draw page's canvas."""
    while page.locator(CANVAS).count() != 1:  # after a rerun, the old canvas lingers a moment
        page.wait_for_timeout(50)
    box = page.locator(CANVAS).bounding_box()
    for stroke in strokes:
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=3)
        page.mouse.up()


def wait_for_predictions(page, timeout_ms: int = 120_000) -> None:
    page.get_by_text("ANN predicts").wait_for(timeout=timeout_ms)
    page.get_by_text("CNN predicts").wait_for(timeout=timeout_ms)


def watch_mouse_up(page) -> None:
    """Have the page note the time of every mouse-up, so latencies are measured in the page."""
    page.evaluate("document.addEventListener('mouseup',"
                  " () => { window.lastMouseUp = performance.now(); }, true)")


def ms_from_mouse_up_to_predictions(page, timeout_ms: int = 30_000) -> float:
    """Milliseconds from the page's last mouse-up until both predictions are on it.

    Checked at every animation frame in the page: Playwright's own waits poll with
    back-off (up to 500 ms apart), too coarse for this.
    """
    return page.wait_for_function(
        """() => {
            const text = document.querySelector('[data-testid=stMain]').textContent;
            return text.includes('ANN predicts') && text.includes('CNN predicts')
                && performance.now() - window.lastMouseUp;
        }""", polling="raf", timeout=timeout_ms).json_value()


def clear(page) -> None:
    """Press Clear and wait for the hint that replaces the predictions."""
    page.get_by_role("button", name="Clear").click()
    page.get_by_text("Draw a digit on the black square").wait_for(timeout=30_000)
    page.wait_for_timeout(500)
