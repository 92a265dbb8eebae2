import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.synthetic_digits import DIGITS, TEMPLATES, make_set, random_digit, render

ROOT = Path(__file__).resolve().parents[1]
SIZE = 336
TOOLBAR = (1 - 141 / SIZE, 30 / SIZE)  # left edge and bottom of the canvas's hover toolbar


def ink_rows_cols(rgba, level=128):
    drawn = rgba[..., 0] >= level
    return np.flatnonzero(drawn.any(axis=1)), np.flatnonzero(drawn.any(axis=0))


def test_digits_has_one_clean_template_per_digit_clear_of_the_toolbar():
    assert sorted(DIGITS) == list(range(10))
    for digit, strokes in DIGITS.items():
        assert strokes is TEMPLATES[digit][0]
        for stroke in strokes:
            assert all(0 <= x <= 1 and 0 <= y <= 1 for x, y in stroke)
            x, y = stroke[0]
            assert not (x > TOOLBAR[0] and y < TOOLBAR[1]), (digit, stroke[0])


def test_render_draws_like_the_canvas():
    rgba = render([[(0.25, 168.5 / SIZE), (0.75, 168.5 / SIZE)]], SIZE, 20)  # edges mid-pixel
    assert rgba.shape == (SIZE, SIZE, 4) and rgba.dtype == np.uint8
    assert (rgba[..., 3] == 255).all()
    assert (rgba[..., 0] == rgba[..., 1]).all() and (rgba[..., 0] == rgba[..., 2]).all()
    across = rgba[:, SIZE // 2, 0] / 255
    assert across.sum() == pytest.approx(20, abs=0.5)  # the brush's width
    assert ((across > 0) & (across < 1)).sum() == 2  # anti-aliased edges
    _, cols = ink_rows_cols(rgba)  # round caps: half the brush beyond each end
    assert cols[0] == pytest.approx(84 - 10, abs=1) and cols[-1] == pytest.approx(252 + 10, abs=1)
    assert rgba[5, 5, 0] == 0


def test_render_smooths_corners_as_fabric_does():
    """fabric.js draws quadratic curves through the midpoints between mouse points, so the
    tip of a V drawn with three points is cut short: it reaches y = 0.35, not 0.2."""
    rgba = render([[(0.2, 0.8), (0.5, 0.2), (0.8, 0.8)]], SIZE, 10)
    rows, _ = ink_rows_cols(rgba)
    assert rows[0] == pytest.approx(0.35 * SIZE - 5, abs=2)


@pytest.mark.parametrize("brush", [10, 40])
def test_random_digits_vary_and_stay_on_the_canvas(brush):
    rng = np.random.default_rng(0)
    sizes, touching = [], 0
    for digit in list(range(10)) * 5:
        strokes = random_digit(rng, digit, brush)
        points = np.concatenate(strokes)
        margin = brush / 2 / SIZE
        assert points.min() >= margin - 1e-9 and points.max() <= 1 - margin + 1e-9
        rows, cols = ink_rows_cols(render(strokes, SIZE, brush))
        sizes.append(max(len(rows), len(cols)) / SIZE)
        touching += rows[0] == 0 or cols[0] == 0 or rows[-1] == SIZE - 1 or cols[-1] == SIZE - 1
    smallest = max(0.35, 4 * brush / SIZE)  # of the canvas, and at least four brush widths
    assert smallest - 0.05 < min(sizes) < smallest + 0.1 and 0.85 < max(sizes) <= 1.0
    assert 0.1 < touching / len(sizes) < 0.5  # about one in five touches an edge


def test_make_set_is_balanced_and_repeatable():
    images, labels = make_set(2, brush=16, seed=3)
    assert images.shape == (20, SIZE, SIZE, 4) and images.dtype == np.uint8
    assert (np.bincount(labels) == 2).all()
    again, _ = make_set(2, brush=16, seed=3)
    other, _ = make_set(2, brush=16, seed=4)
    assert (images == again).all() and not (images == other).all()


def test_the_benchmark_runs(tmp_path, mnist_reference):
    env = {**os.environ, "MNIST_DATA": mnist_reference}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.pen_strokes",
            "--smoke",
            "--models-dir",
            str(tmp_path / "models"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    rows = [line.split() for line in lines if line[:5].strip().isdigit()]
    assert [row[0] for row in rows] == ["10", "40"] and all(len(row) == 5 for row in rows)
    assert any(line.startswith("preprocess_canvas + both models") for line in lines)
