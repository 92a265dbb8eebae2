"""The load benchmark's core, small: three sessions drawing and one queuing, at the
websocket level, while a training runs, for about ten seconds; the drawing sessions keep
their drawings, and every Keep is in the class's set once.

Real browsers are left to bench/load.py itself and to the browser tests: here the server
must answer every session while it trains, whatever else this machine is doing.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest

from bench.browser import running_app
from bench.load import Settings, measure


@pytest.fixture(scope="module")
def models_dir(trained_models, tmp_path_factory):
    """A copy of the session's trained ANN and CNN: the measured run saves one more."""
    return shutil.copytree(trained_models, tmp_path_factory.mktemp("load") / "models")


def test_drawing_and_queuing_sessions_are_answered_while_a_run_trains(
    models_dir, mnist_reference, tmp_path
):
    settings = Settings(
        drawers=3,
        real=0,
        queuers=1,
        seconds=10,
        unloaded_seconds=3,
        warmup_seconds=1,
        think_seconds=0.5,
        queue_every=4,
        keep_timings=10,
        class_size=100,
    )
    drawings = tmp_path / "drawings"
    env = {"MNIST_DRAWINGS_DIR": str(drawings)}
    with running_app(str(models_dir), mnist_reference, env=env) as (url, server):
        report = asyncio.run(
            measure(url, server.pid, settings, say=lambda _: None, drawings_dir=str(drawings))
        )
    assert report.errors == 0, report.error_examples
    assert report.drawings_shown["websocket"] >= 3, report
    assert report.cnn_right_share is not None
    assert report.training_images_per_s["unloaded"], report
    assert report.training_images_per_s["loaded"], report
    observed = " ".join(report.queue_observations)
    assert "Waiting in the queue: number 1" in observed, report.queue_observations
    assert "you already have a training waiting" in observed, report.queue_observations
    assert 0 < report.server_rss_mb["peak"] < 4096 and report.worker_rss_mb["peak"] > 0
    kept = report.kept
    assert kept["sessions_keeping"] == 3 and kept["expected"] >= 3, report.kept
    assert kept["lost"] == 0 and kept["duplicated"] == 0, report.kept_examples
    assert kept["found"] == kept["expected"], report.kept
    assert report.keep_server_ms["count"] == 10 and report.keep_server_ms["p95"] > 0
