"""Handwriting styles MNIST lacks, drawn into some of its training digits.

MNIST's writers were American: its 0s have no slash, its 1s are a bare stem, its 7s have no
bar. Much of Europe writes a slashed 0, a 1 with an up-stroke and a crossed 7, and a class
there would see the networks misread them (on real pen digits, slashed 0s were read as 8s
and flagged 1s as 7s). ``with_styles`` replaces a share of MNIST's 0s, 1s and 7s by the same
digits with that stroke added, at the digit's own stroke width, then fits each the MNIST
way again. It costs about a second before training and nothing per epoch; its effect,
measured on real writers, is in docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .data import IMAGE_SIZE
from .preprocessing import DIGIT_BOX

_ROWS, _COLUMNS = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32)
Point = np.ndarray  # (row, column)


def with_styles(
    x: np.ndarray, y: np.ndarray, share: float, seed: int = 0, digits=(0, 1, 7)
) -> np.ndarray:
    """A copy of the uint8 (N, 28, 28) digits ``x`` (labels ``y``) in which ``share`` of the
    0s, 1s and 7s are written in their European style: slashed, with an up-stroke, crossed."""
    x = x.copy()
    if share <= 0:
        return x
    rng = np.random.default_rng(seed)
    for digit in digits:
        chosen = np.flatnonzero(y == digit)
        for index in rng.choice(chosen, round(share * len(chosen)), replace=False):
            styled = STYLES[digit](x[index] / np.float32(255), rng)
            x[index] = np.round(styled * 255).astype(np.uint8)
    return x


def slashed_zero(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A slash through the loop, lower left to upper right, past it a little."""
    rows, columns, height = _ink(image)
    centre = np.array([rows.mean(), columns.mean()]) + rng.uniform(-1, 1, 2)
    angle = np.radians(rng.uniform(40, 70))
    up_right = np.array([-np.sin(angle), np.cos(angle)])
    offsets = np.stack([rows, columns], 1) - centre
    along = offsets @ up_right
    near = np.abs(offsets @ np.array([up_right[1], -up_right[0]])) < 1.5  # ink on the line
    top = (along[near].max() if near.any() else height / 2) + rng.uniform(0, 0.2) * height
    bottom = (along[near].min() if near.any() else -height / 2) - rng.uniform(0.05, 0.3) * height
    return _with_stroke(image, centre + bottom * up_right, centre + top * up_right, rng)


def flagged_one(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An up-stroke from the top of the stem, down to the left, 20-60 degrees from upright
    and a fifth to two fifths of the digit's height: longer or flatter, it reads as a 7."""
    rows, columns, height = _ink(image)
    top = np.array([rows.min() + 0.5, columns[rows <= rows.min() + 1].mean()])
    down_y, down_x = np.linalg.eigh(np.cov(np.stack([rows, columns]).astype(float)))[1][:, -1]
    if down_y < 0:
        down_y, down_x = -down_y, -down_x
    stem = np.arctan2(down_x, down_y)
    angle = np.clip(stem - np.radians(rng.uniform(25, 45)), np.radians(-60), np.radians(-20))
    end = top + rng.uniform(0.22, 0.4) * height * np.array([np.cos(angle), np.sin(angle)])
    return _with_stroke(image, top + rng.uniform(-0.5, 0.5, 2), end, rng)


def crossed_seven(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bar across the stem, about halfway down, nearly level."""
    rows, columns, height = _ink(image)
    row = int(round(rows.min() + rng.uniform(0.45, 0.62) * height))
    on_row = np.flatnonzero(image[row] > 0.3)
    if len(on_row) == 0:
        return _refit(image)
    tilt = np.radians(rng.uniform(-10, 6))
    direction = np.array([np.sin(tilt), np.cos(tilt)])
    middle = np.array([row + 0.5, on_row.mean()])
    left, right = rng.uniform(0.18, 0.35) * height, rng.uniform(0.15, 0.32) * height
    return _with_stroke(image, middle - left * direction, middle + right * direction, rng)


STYLES: dict[int, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    0: slashed_zero,
    1: flagged_one,
    7: crossed_seven,
}


def _ink(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    rows, columns = np.nonzero(image > 0.3)
    return rows, columns, int(rows.max() - rows.min() + 1)


def _with_stroke(image: np.ndarray, start: Point, end: Point, rng) -> np.ndarray:
    """``image`` with an anti-aliased line from ``start`` to ``end`` at its own stroke
    width (varied a little), fitted the MNIST way again."""
    width = _stroke_width(image) * rng.uniform(0.85, 1.1)
    (row0, column0), (row1, column1) = start, end
    d_row, d_column = row1 - row0, column1 - column0
    along = ((_ROWS - row0) * d_row + (_COLUMNS - column0) * d_column) / max(
        d_row**2 + d_column**2, 1e-6
    )
    along = np.clip(along, 0, 1)
    distance = np.hypot(_ROWS - (row0 + along * d_row), _COLUMNS - (column0 + along * d_column))
    return _refit(np.maximum(image, np.clip(width / 2 + 0.5 - distance, 0, 1)))


def _stroke_width(image: np.ndarray) -> float:
    """Ink over half the outline's length: a stroke's width, in pixels."""
    ink = image > 0.5
    inside = ink.copy()
    inside[1:-1, 1:-1] = (
        ink[1:-1, 1:-1] & ink[:-2, 1:-1] & ink[2:, 1:-1] & ink[1:-1, :-2] & ink[1:-1, 2:]
    )
    outline = max(int((ink & ~inside).sum()), 1)
    return float(np.clip(2 * image.sum() / outline, 1.6, 3.4))


def _refit(image: np.ndarray) -> np.ndarray:
    """The MNIST recipe again: the longer side at most ``DIGIT_BOX`` pixels (shrunk
    bilinearly), the centre of mass in the middle."""
    rows = np.flatnonzero((image > 0.1).any(axis=1))
    columns = np.flatnonzero((image > 0.1).any(axis=0))
    crop = image[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    height, width = crop.shape
    if max(height, width) > DIGIT_BOX:
        scale = DIGIT_BOX / max(height, width)
        new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
        source_rows = np.clip((np.arange(new_h) + 0.5) / scale - 0.5, 0, height - 1)
        source_columns = np.clip((np.arange(new_w) + 0.5) / scale - 0.5, 0, width - 1)
        r0, c0 = np.floor(source_rows).astype(int), np.floor(source_columns).astype(int)
        r1, c1 = np.minimum(r0 + 1, height - 1), np.minimum(c0 + 1, width - 1)
        fr, fc = (source_rows - r0)[:, None], (source_columns - c0)[None, :]
        crop = (1 - fr) * ((1 - fc) * crop[r0][:, c0] + fc * crop[r0][:, c1]) + fr * (
            (1 - fc) * crop[r1][:, c0] + fc * crop[r1][:, c1]
        )
        height, width = crop.shape
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    top, left = (IMAGE_SIZE - height) // 2, (IMAGE_SIZE - width) // 2
    out[top : top + height, left : left + width] = crop
    total = out.sum()
    middle = IMAGE_SIZE // 2
    shift_rows = round(middle - (_ROWS * out).sum() / total)
    shift_columns = round(middle - (_COLUMNS * out).sum() / total)
    shift_rows = int(np.clip(shift_rows, -top, IMAGE_SIZE - top - height))
    shift_columns = int(np.clip(shift_columns, -left, IMAGE_SIZE - left - width))
    return np.roll(out, (shift_rows, shift_columns), axis=(0, 1))
