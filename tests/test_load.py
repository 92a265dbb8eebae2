"""The load benchmark's core, small: two drawing sessions (one real Chromium, one at the
websocket level) and one queuing session while a training runs, for about 10 s."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from bench.browser import browser_missing, running_app
from bench.load import Settings, measure

pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))


@pytest.fixture(scope="module")
def models_dir(trained_models, tmp_path_factory):
    """A copy of the session's trained ANN and CNN: the measured run saves one more."""
    return shutil.copytree(trained_models, tmp_path_factory.mktemp("load") / "models")


def test_both_kinds_of_session_see_predictions_while_a_run_trains(models_dir, mnist_reference):
    settings = Settings(
        drawers=2, real=1, queuers=1, seconds=10, unloaded_seconds=2, warmup_seconds=1
    )
    with running_app(str(models_dir), mnist_reference) as (url, server):
        report = asyncio.run(measure(url, server.pid, settings, say=lambda _: None))
    assert report.errors == 0, report.error_examples
    assert report.drawings_shown["browser"] >= 1 and report.drawings_shown["websocket"] >= 1
    assert report.training_images_per_s["unloaded"], report
    assert report.queue_observations, "the queuing session pressed Start and saw nothing"
    assert 0 < report.server_rss_mb["peak"] < 4096 and report.worker_rss_mb["peak"] > 0
