"""Synthetic pen-stroke digits, drawn the way a person draws on the app's canvas.

Hand-made templates (strokes as polylines in canvas fractions, 0-1) get a random size,
position, slant, rotation and wobble, and are rendered like the canvas
(streamlit-drawable-canvas, fabric.js freedraw) renders them. They measure how well the
models read drawings, which MNIST's own test set cannot tell.
"""

from __future__ import annotations

import numpy as np

from mnist_core.preprocessing import BRUSH_SIZE, CANVAS_SIZE
from mnist_core.strokes import render as render_in_pixels

Stroke = list[tuple[float, float]]


def _arc(
    cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 14
) -> Stroke:
    """Points on an ellipse from ``start`` to ``end`` degrees (counter-clockwise, y down)."""
    angles = np.radians(np.linspace(start, end, n))
    return [(cx + rx * np.cos(a), cy - ry * np.sin(a)) for a in angles]


# Several ways people write each digit; the first is the clean one the browser test draws.
# No stroke of the first templates starts in the top 30 px x right 141 px of the canvas,
# where the canvas toolbar appears on hover and would swallow the click.
TEMPLATES: dict[int, list[list[Stroke]]] = {
    0: [
        [_arc(0.5, 0.5, 0.22, 0.33, 90, 450, 24)],
        [_arc(0.52, 0.5, 0.17, 0.34, 100, 470, 24)],  # narrow, closes past the start
    ],
    1: [
        [[(0.42, 0.25), (0.52, 0.15), (0.52, 0.85)]],  # with a flag
        [[(0.5, 0.15), (0.5, 0.85)]],  # a plain bar
        [[(0.4, 0.27), (0.53, 0.15), (0.53, 0.85)], [(0.4, 0.85), (0.66, 0.85)]],  # with a base
    ],
    2: [
        [_arc(0.5, 0.33, 0.2, 0.17, 160, -30, 10) + [(0.28, 0.85), (0.74, 0.85)]],
        [
            _arc(0.5, 0.32, 0.21, 0.17, 170, -20, 10)
            + _arc(0.36, 0.8, 0.07, 0.06, 70, 340, 8)
            + [(0.74, 0.83)]
        ],  # curly base
    ],
    3: [
        [_arc(0.48, 0.32, 0.2, 0.16, 150, -90, 10) + _arc(0.48, 0.67, 0.22, 0.19, 90, -150, 10)],
        [[(0.3, 0.16), (0.7, 0.16), (0.47, 0.44)] + _arc(0.48, 0.66, 0.22, 0.2, 80, -150, 12)],
    ],
    4: [
        [[(0.58, 0.15), (0.25, 0.62), (0.75, 0.62)], [(0.6, 0.38), (0.6, 0.86)]],  # closed
        [[(0.32, 0.15), (0.28, 0.56), (0.74, 0.56)], [(0.62, 0.15), (0.62, 0.86)]],  # open
    ],
    5: [
        [[(0.7, 0.16), (0.36, 0.16), (0.33, 0.46)] + _arc(0.5, 0.64, 0.2, 0.2, 130, -140, 12)],
        [
            [(0.36, 0.16), (0.33, 0.46)] + _arc(0.5, 0.64, 0.2, 0.2, 130, -140, 12),
            [(0.36, 0.16), (0.72, 0.16)],
        ],  # the bar drawn last, as a second stroke
    ],
    6: [
        [[(0.66, 0.15), (0.45, 0.3), (0.34, 0.5)] + _arc(0.5, 0.67, 0.17, 0.18, 180, -180, 18)],
        [[(0.6, 0.15), (0.36, 0.55)] + _arc(0.5, 0.68, 0.16, 0.17, 180, 540, 18)],
    ],
    7: [
        [[(0.26, 0.18), (0.74, 0.18), (0.44, 0.86)]],
        [[(0.26, 0.18), (0.74, 0.18), (0.44, 0.86)], [(0.4, 0.52), (0.72, 0.52)]],  # barred
        [[(0.28, 0.2), (0.74, 0.18), (0.6, 0.42), (0.52, 0.62), (0.49, 0.86)]],  # bent stem
    ],
    8: [
        [_arc(0.5, 0.32, 0.16, 0.16, 270, -90, 16) + _arc(0.5, 0.67, 0.2, 0.19, 90, 450, 18)],
        [_arc(0.5, 0.31, 0.17, 0.16, 90, 450, 18), _arc(0.5, 0.67, 0.2, 0.19, 90, 450, 18)],
    ],
    9: [
        [_arc(0.5, 0.34, 0.18, 0.17, 0, 360, 18) + [(0.68, 0.34), (0.63, 0.86)]],
        [
            _arc(0.5, 0.33, 0.18, 0.17, 0, 360, 18) + _arc(0.3, 0.34, 0.38, 0.52, 0, -80, 10)[1:]
        ],  # curved tail
    ],
}

DIGITS: dict[int, list[Stroke]] = {digit: shapes[0] for digit, shapes in TEMPLATES.items()}


def random_digit(
    rng: np.random.Generator, digit: int, brush: int = BRUSH_SIZE, size: int = CANVAS_SIZE
) -> list[Stroke]:
    """A randomly written ``digit``: strokes in canvas fractions, all ink on the canvas.

    Its ink (brush included) spans 35-95% of the canvas, and at least four brush widths
    (with a fat brush people draw bigger, or loops fill in). It sits anywhere it fits,
    flush against an edge one time in five, slanted up to 15 degrees, turned up to 8,
    squeezed or stretched up to 25%. Strokes stop short by up to 5% and shift a little,
    and every point wobbles smoothly, as a hand does.
    """
    shapes = TEMPLATES[digit]
    strokes = [
        _resample(stroke, *rng.uniform(0, 0.05, 2)) for stroke in shapes[rng.integers(len(shapes))]
    ]
    points = np.concatenate(strokes)
    extent = np.ptp(points, axis=0).max()
    strokes = [
        s + _wobble(rng, s / extent, 0.03 * extent) + rng.normal(0, 0.02 * extent, 2)
        for s in strokes
    ]
    slant, turn = np.tan(np.radians(rng.uniform(-15, 15))), np.radians(rng.uniform(-8, 8))
    squash = rng.uniform(0.75, 1.25)
    transform = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]]) @ np.array(
        [[squash, -slant], [0.0, 1.0]]
    )
    strokes = [s @ transform.T for s in strokes]
    points = np.concatenate(strokes)
    low, span = points.min(axis=0), np.ptp(points, axis=0)
    ink = rng.uniform(max(0.35, 4 * brush / size), 0.95) * size
    scale = max(ink - brush, 1.0) / span.max()
    room = size - brush - span * scale  # how far the digit can move and stay on the canvas
    offset = rng.uniform(0, 1, 2) * room + brush / 2
    if rng.random() < 0.2:  # flush against one edge
        axis = rng.integers(2)
        offset[axis] = brush / 2 if rng.random() < 0.5 else brush / 2 + room[axis]
    return [[(float(x), float(y)) for x, y in ((s - low) * scale + offset) / size] for s in strokes]


def make_set(
    n_per_digit: int, brush: int = BRUSH_SIZE, seed: int = 0, size: int = CANVAS_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """``n_per_digit`` random drawings of each digit as canvas RGBA images, and labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10, dtype=np.uint8), n_per_digit)
    images = np.stack([render(random_digit(rng, int(d), brush, size), size, brush) for d in labels])
    return images, labels


def render(strokes: list[Stroke], size: int = CANVAS_SIZE, width: int = BRUSH_SIZE) -> np.ndarray:
    """RGBA (size, size, 4) uint8 as the canvas returns it, from strokes in canvas fractions
    (``mnist_core.strokes.render`` draws them)."""
    return render_in_pixels([np.asarray(s, dtype=np.float64) * size for s in strokes], size, width)


def _resample(
    stroke: Stroke, cut_start: float = 0.0, cut_end: float = 0.0, spacing: float = 0.01
) -> np.ndarray:
    """The stroke's polyline with points every ``spacing``, as a mouse reports them,
    without the given shares of its length at either end (loops left open, short bars)."""
    points = np.asarray(stroke, dtype=np.float64)
    distance = _distance_along(points)
    start, end = cut_start * distance[-1], (1 - cut_end) * distance[-1]
    at = np.linspace(start, end, max(2, int((end - start) / spacing) + 1))
    return np.column_stack(
        [np.interp(at, distance, points[:, 0]), np.interp(at, distance, points[:, 1])]
    )


def _wobble(rng: np.random.Generator, points: np.ndarray, amplitude: float) -> np.ndarray:
    """Smooth random offsets for the points of a stroke: a few slow sine waves along it,
    at most one per digit size (``points`` in units of the digit's size)."""
    t = _distance_along(points)[:, None]
    waves = rng.uniform(0.2, 1.0, (3, 2))
    phases = rng.uniform(0, 2 * np.pi, (3, 2))
    weights = rng.normal(0, amplitude / 2, (3, 2))
    return sum(
        w * np.sin(2 * np.pi * f * t + p) for w, f, p in zip(weights, waves, phases, strict=True)
    )


def _distance_along(points: np.ndarray) -> np.ndarray:
    """Distance from the first point, along the polyline, to each point."""
    return np.concatenate([[0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])
