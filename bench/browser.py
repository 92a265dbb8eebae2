"""The app as a user meets it, for the benchmarks: a real server and Debian's Chromium."""

from __future__ import annotations

import importlib.util
import os
import re
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


def browser_missing() -> str | None:
    """Why the measures in a browser cannot run on this machine, or None if they can."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (Debian: apt install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "no Playwright (pip install -r requirements-test.txt)"
    return None


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
    box = canvas_of(page).bounding_box()
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


class RunWatcher:
    """Times, from the app's websocket, how long a drawing takes to come back predicted.

    A drawing of several strokes may start runs before its last stroke, whose
    predictions are already on the page: only the run started by the canvas update
    sent after the last mouse-up counts, until Streamlit says it has finished.
    """

    def __init__(self, page) -> None:
        self.events: list[tuple[float, str]] = []
        page.on("websocket", self._watch)

    def _watch(self, socket) -> None:
        socket.on("framesent", lambda _: self.events.append((time.perf_counter(), "sent")))
        socket.on("framereceived", self._received)

    def _received(self, payload) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        message = ForwardMsg()
        message.ParseFromString(payload)
        self.events.append((time.perf_counter(), message.WhichOneof("type")))

    def ms_until_run_finished(self, page, since: float, timeout_s: float = 30) -> float:
        """Milliseconds from ``since`` until the first run started by a message sent after it ends."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            after = [(t, kind) for t, kind in self.events if t > since]
            kinds = [kind for _, kind in after]
            if "sent" in kinds and "new_session" in kinds[kinds.index("sent"):]:
                started = kinds.index("new_session", kinds.index("sent"))
                if "script_finished" in kinds[started:]:
                    return (after[kinds.index("script_finished", started)][0] - since) * 1000
            page.wait_for_timeout(5)
        raise TimeoutError("the drawing's run did not finish")


def train_on_page(page, url: str, kind: str) -> tuple[float, float, float]:
    """Train the default ``kind`` from the Train page as a user would.

    Returns what the page reports when the model is saved (test accuracy, training
    seconds) and the seconds from pressing Start until it says so.
    """
    page.goto(f"{url}/train")
    start = page.get_by_role("button", name="Start training")
    start.wait_for(timeout=60_000)
    if kind == "ann":
        page.get_by_text("ANN (dense)").click()
    settle(page)
    started = time.perf_counter()
    start.click()
    result = page.get_by_text(f"{kind.upper()} saved as")
    while not result.count():  # a look every half second: Playwright's own wait checks
        page.wait_for_timeout(500)  # at every frame, taking CPU from the training it times
        if time.perf_counter() - started > 600:
            raise TimeoutError(f"no {kind.upper()} saved 10 minutes after Start")
    seconds_to_result = time.perf_counter() - started
    shown = re.search(r"test accuracy ([\d.]+)% after .* in (\d+) s", result.inner_text())
    return float(shown[1]) / 100, float(shown[2]), seconds_to_result


def canvas_of(page, key: str = "canvas-"):
    """The canvas the page shows now (after Clear, the old one lingers a moment)."""
    canvas = page.locator(f"[class*=st-key-{key}] canvas.upper-canvas")
    canvas.last.wait_for(state="visible", timeout=60_000)
    while page.locator(CANVAS).count() != 1:
        page.wait_for_timeout(50)
    return canvas


def settle(page) -> None:
    """Wait until the script has finished running and the canvas has had a moment to mount."""
    page.locator("[data-testid=stStatusWidget]").wait_for(state="detached", timeout=60_000)
    page.wait_for_timeout(500)


def clear(page) -> None:
    """Press Clear and wait for the new, empty canvas (its key counts up)."""
    key = re.search(r"st-key-canvas-(\d+)", page.locator("[class*=st-key-canvas-]").get_attribute("class"))
    page.get_by_role("button", name="Clear").click()
    page.get_by_text("Draw a digit on the black square").wait_for(timeout=20_000)
    canvas_of(page, f"canvas-{int(key[1]) + 1}")
    settle(page)
