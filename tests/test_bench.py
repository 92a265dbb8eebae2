"""The benchmark's smoke mode: tiny data, one seed, every measurement taken once."""

import os
import subprocess
import sys
from pathlib import Path

from bench import browser

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_smoke_mode_prints_every_row(tmp_path, mnist_reference):
    result = subprocess.run(
        [sys.executable, "-m", "bench.benchmark", "--smoke", "--out", str(tmp_path / "table.md")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            **os.environ,
            "MNIST_DATA": mnist_reference,
            "MNIST_MODELS_DIR": str(tmp_path / "models"),
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for row in (
        "Ratio CNN / keras-io convnet",
        "Default ANN: test accuracy",
        "App training path / plain fit",
        "Inference, preprocessing + both models",
        "Peak RSS: training worker",
        "Cold start",
    ):
        assert row in result.stdout, result.stdout
    ann_on_page = next(
        line for line in result.stdout.splitlines() if "ANN from the Train page" in line
    )
    missing = browser.browser_missing()
    shown = f"skipped: {missing}" if missing else "s from Start to the result"  # on the sample
    assert shown in ann_on_page, ann_on_page
    assert "machine:" in result.stdout and "data:" in result.stdout
    assert not (tmp_path / "table.md").exists()  # smoke runs do not overwrite the real table


def test_browser_measures_say_why_they_cannot_run(monkeypatch):
    monkeypatch.setattr(browser, "CHROMIUM", "/nowhere/chromium")
    assert (
        browser.browser_missing()
        == "no Chromium at /nowhere/chromium (Debian: apt install chromium)"
    )


def test_a_new_table_keeps_the_notes_written_by_hand(tmp_path):
    from bench import benchmark

    out = tmp_path / "docs" / "benchmarks.md"
    benchmark.write_report(out, "# Benchmarks\n\n| first |\n")
    assert out.read_text() == "# Benchmarks\n\n| first |\n"
    out.write_text(out.read_text() + "\n## Notes\n\n- measured by hand\n")
    benchmark.write_report(out, "# Benchmarks\n\n| second |\n")
    assert out.read_text() == "# Benchmarks\n\n| second |\n\n## Notes\n\n- measured by hand\n"


def test_the_race_compares_mean_times_and_shows_each_seeds_ratio():
    from bench import benchmark

    runs = [
        {"seed": 0, "to_target": 20.0, "published": 100.0},
        {"seed": 1, "to_target": 30.0, "published": 80.0},
        {"seed": 2, "to_target": 25.0, "published": None},
    ]
    assert benchmark.ratio(runs[:2], "published") == "0.28 (seeds 0.20-0.38)"
    assert benchmark.ratio(runs[:1], "published") == "0.20"
    assert benchmark.ratio(runs, "published") == "n/a"
    assert benchmark.spread(runs[:2], "to_target") == "25 (min 20, max 30)"
    assert benchmark.spread(runs, "published") == "not reached (seed 2)"


def test_the_handwriting_benchmark_s_smoke_mode_reads_held_out_writers(tmp_path, mnist_reference):
    from tests.test_drawings import line

    drawings = tmp_path / "pens.jsonl"
    writers = [(f"w{n}", 80 + 40 * n, "lyon" if n % 2 else "oslo") for n in range(4)]
    lines = [line(d, w, scale, source=src) for w, scale, src in writers for d in range(10)]
    drawings.write_text("\n".join(lines))
    args = ["--smoke", "--drawings", str(drawings), "--models-dir", str(tmp_path / "models")]
    result = subprocess.run(
        [sys.executable, "-m", "bench.handwriting", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MNIST_DATA": mnist_reference},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "held-out writers (2), accuracy:" in result.stdout, result.stdout
    rows = [row for row in result.stdout.splitlines() if row.startswith(("default", "quick"))]
    assert [row[:11] for row in rows[:4]] == [
        "default ANN",
        "default CNN",
        "quick ANN  ",
        "quick CNN  ",
    ]
    assert "lyon" in result.stdout and "oslo" in result.stdout
