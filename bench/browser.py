"""The app as a user meets it: a real server and Debian's Chromium, for the benchmarks and
the browser tests alike (tests/conftest.py wraps these in fixtures).

    with running_app(models_dir, data_reference) as (url, server), chromium_page() as page:
        open_draw_page(page, url)
        draw(page, DIGITS[7])
        predictions(page)  # {"ANN": 7, "CNN": 7}
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from weakref import WeakKeyDictionary

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}
CANVAS = "[class*=st-key-canvas-] canvas.upper-canvas"
MOVE_EVERY = 4  # pixels between mouse moves: the canvas smooths through every point it gets


class AppNotServing(RuntimeError):
    """``streamlit run app.py`` exited, or did not answer its health check in time."""


def browser_missing() -> str | None:
    """Why the measures in a browser cannot run on this machine, or None if they can."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (Debian: apt install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "no Playwright (pip install -r requirements-test.txt)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
            return answer.read() == b"ok"
    except OSError:
        return False


@contextmanager
def running_app(
    models_dir: str,
    data_reference: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    port: int | None = None,
):
    """``streamlit run app.py`` on ``port`` (default: a free one), with its models in
    ``models_dir`` and its MNIST from ``data_reference`` (a path or "sample"), plus any
    ``env``; yields (url, server process) once it answers its health check.

    Raises AppNotServing, with the end of the server's output, if it exits first or is
    not healthy within ``timeout`` seconds. The server's settings are .streamlit/config.toml's.
    """
    port = port or _free_port()
    env = {
        **os.environ,
        "MNIST_MODELS_DIR": str(models_dir),
        "MNIST_DATA": data_reference,
        **(env or {}),
    }
    with tempfile.TemporaryFile("w+") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.headless",
                "true",
                "--server.port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # as from a terminal of its own: not in this one's group
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while not _healthy(url):
                if server.poll() is not None:
                    problem = f"exited with code {server.returncode} before it served the app"
                elif time.monotonic() > deadline:
                    problem = f"was not healthy {timeout:g} s after it started"
                else:
                    time.sleep(0.1)
                    continue
                log.seek(0)
                raise AppNotServing(
                    f"streamlit run app.py (port {port}) {problem}; it said:\n{log.read()[-3000:]}"
                )
            yield url, server
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@contextmanager
def chromium():
    """Debian's Chromium, headless, driven by Playwright; yields the browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def new_page(browser):
    """A desktop-sized page of ``browser``, closed afterwards; ``draw`` can tell on it when
    the app has answered a drawing."""
    page = browser.new_page(viewport=VIEWPORT)
    _run_watchers[page] = RunWatcher(page)
    try:
        yield page
    finally:
        page.close()


@contextmanager
def chromium_page():
    """A page of a Chromium of its own."""
    with chromium() as browser, new_page(browser) as page:
        yield page


def open_draw_page(page, url: str, timeout_ms: int = 60_000) -> None:
    """Go to the Draw page and wait until it is ready for a drawing."""
    page.goto(f"{url}/draw")
    page.get_by_text("ANN: waiting for a drawing").wait_for(timeout=timeout_ms)
    settle(page)


def canvas_of(page, key: str = "canvas-"):
    """The canvas the page shows now (after Clear, the old one lingers a moment)."""
    canvas = page.locator(f"[class*=st-key-{key}] canvas.upper-canvas")
    canvas.last.wait_for(state="visible", timeout=60_000)
    while page.locator(CANVAS).count() != 1:
        page.wait_for_timeout(50)
    return canvas


def stroke_points(box: dict, stroke, every: float = MOVE_EVERY) -> list[tuple[float, float]]:
    """A stroke (canvas fractions) as page pixels inside ``box``, at most ``every`` pixels
    apart, as a hand moves: the canvas draws smooth curves through the points it gets,
    and misses the first move after a press."""
    corners = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
    points = corners[:1]
    for (x0, y0), (x1, y1) in pairwise(corners):
        steps = max(1, math.ceil(math.hypot(x1 - x0, y1 - y0) / every))
        points += [
            (x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps) for i in range(1, steps + 1)
        ]
    return points


def clear_of_toolbar(strokes):
    """The strokes kept below the top tenth of the canvas: a press in the hidden toolbar's
    corner would hit one of its buttons."""
    return [[(x, max(y, 0.1)) for x, y in stroke] for stroke in strokes]


def draw(page, strokes) -> float:
    """Mouse strokes (canvas fractions) on the Draw page's canvas of a ``new_page``.

    Returns once the app has run on the last stroke, so that the page shows what it made
    of the whole drawing, not of its first strokes; returns the milliseconds from the last
    mouse-up until that run finished.
    """
    box = canvas_of(page).bounding_box()
    for stroke in strokes:
        points = stroke_points(box, stroke)
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point)
        released = time.perf_counter()
        page.mouse.up()
    return _run_watchers[page].ms_until_run_finished(page, since=released)


def settle(page) -> None:
    """Wait until the script has finished running and the canvas has had a moment to mount."""
    page.locator("[data-testid=stStatusWidget]").wait_for(state="detached", timeout=60_000)
    page.wait_for_timeout(500)


def open_expander(within, label: str, holding: str | None = None):
    """Open the expander ``label`` (in a page, or in a part of one such as its sidebar) and
    return it once it shows the element with test id ``holding`` (if given) and has stopped
    growing.

    Streamlit grows an expander's height over half a second, its content clipped, and again
    when that content changes height (a code block drawn once its highlighter has loaded):
    a click aimed at a button inside while it grows lands on what is below.
    """
    page = getattr(within, "page", within)  # a locator's page, or the page itself
    title = page.get_by_text(label, exact=True)  # the filter below reads it inside each
    expander = within.get_by_test_id("stExpander").filter(has=title)
    expander.get_by_text(label, exact=True).click()
    if holding is not None:
        expander.get_by_test_id(holding).wait_for()
    page.wait_for_function(
        "details => details.open && !details.style.height && !details.getAnimations().length",
        arg=expander.locator("details").element_handle(),
    )
    return expander


def clear(page) -> None:
    """Press Clear and wait for the new, empty canvas (its key counts up)."""
    classes = page.locator("[class*=st-key-canvas-]").get_attribute("class")
    key = re.search(r"st-key-canvas-(\d+)", classes)
    page.get_by_role("button", name="Clear").click()
    page.get_by_text("Draw a digit on the black square").wait_for(timeout=20_000)
    canvas_of(page, f"canvas-{int(key[1]) + 1}")
    settle(page)


def shown_predictions(page) -> dict[str, int]:
    """The digits the Draw page says each model predicts now: {"ANN": 7, "CNN": 7}, or fewer."""
    text = page.locator("[data-testid=stMain]").inner_text()
    return {kind: int(digit) for kind, digit in re.findall(r"\b(ANN|CNN) predicts (\d)\b", text)}


def predictions(page, context: str = "", timeout: float = 20) -> dict[str, int]:
    """Both models' predictions, as soon as the page shows them; AssertionError (with
    ``context`` and the page's text) if it does not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = shown_predictions(page)
        if len(found) == 2:
            return found
        page.wait_for_timeout(100)
    text = page.locator("[data-testid=stMain]").inner_text()
    raise AssertionError(f"no predictions shown ({context}); page says:\n{text[:2000]}")


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
        """Milliseconds from ``since`` until the first run started by a message sent after it
        ends."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            after = [(t, kind) for t, kind in self.events if t > since]
            kinds = [kind for _, kind in after]
            if "sent" in kinds and "new_session" in kinds[kinds.index("sent") :]:
                started = kinds.index("new_session", kinds.index("sent"))
                if "script_finished" in kinds[started:]:
                    return (after[kinds.index("script_finished", started)][0] - since) * 1000
            page.wait_for_timeout(5)
        raise TimeoutError("the drawing's run did not finish")


_run_watchers: WeakKeyDictionary = WeakKeyDictionary()  # page -> its RunWatcher (new_page)


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


def unlock_teacher(page, passphrase: str) -> None:
    """Type ``passphrase`` into the sidebar's Teacher panel (opening it first), unlock, and
    return once the teacher's controls show."""
    sidebar = page.get_by_test_id("stSidebar")
    field = sidebar.get_by_label("Passphrase")
    if not field.is_visible():
        open_expander(sidebar, "Teacher")
    field.fill(passphrase)
    sidebar.get_by_role("button", name="Unlock").click()
