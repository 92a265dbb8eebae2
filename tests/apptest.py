"""What the tests that drive the app through Streamlit's AppTest share: opening a page as a
visitor reaches it, reading what the page says, waiting for a page that works in the background.

The fixture that gives these tests a clean server, ``apptest_env``, is in conftest.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from streamlit.testing.v1 import AppTest

from mnist_core.text import as_read

APP = str(Path(__file__).resolve().parents[1] / "app.py")

# The elements a page says something in: what texts() reads.
SAYING = ("markdown", "info", "warning", "error", "success", "caption", "subheader")


def open_page(page: str | None = None, timeout: float = 60, **query) -> AppTest:
    """app.py, opened with ``query`` as the URL's query parameters, then switched through its
    navigation to ``page`` ("pages/X.py"; the home page if None), as a link or a click does.
    ``timeout`` is each run's limit in seconds. The page must run without an exception."""
    app = AppTest.from_file(APP, default_timeout=timeout)
    app.query_params.update(query)
    app.run()
    if page:
        app.switch_page(page).run()
    assert not app.exception, app.exception
    return app


def texts(app: AppTest) -> str:
    """Everything the page says in words (see SAYING), one element a line, as read."""
    return as_read("\n".join(str(e.value) for kind in SAYING for e in getattr(app, kind)))


def wait_for(app: AppTest, condition: Callable[[], bool], seconds: float = 180) -> None:
    """Rerun ``app`` every second, as the page's own reruns would, until ``condition()`` holds;
    fail after ``seconds`` with what the page says."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(1)
        app.run()
    assert condition(), texts(app)
