"""Pen strokes drawn the way the Draw page's canvas draws them, as the canvas returns them.

The canvas (streamlit-drawable-canvas, fabric.js's freedraw brush) turns the points a mouse
or pen reports into a smooth path and strokes it with the brush; the page then reads the
RGBA image. Drawing real people's pen strokes the same way puts them through the page's own
preprocessing, unchanged: what a digit read here would be read on the page.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from .preprocessing import BRUSH_SIZE, CANVAS_SIZE

SUPERSAMPLE = 4  # drawn this much larger and averaged down: the canvas's anti-aliasing
# People draw anywhere on the square and at any size: the ink (brush included) spans this
# share of the canvas (measured on the Draw page: first drawings span 40-90%), and at least
# four brush widths, or a fat brush fills the loops in.
INK_SPAN = (0.35, 0.95)
FLUSH_SHARE = 0.2  # one drawing in five touches an edge of the square

Points = np.ndarray  # (n, 2) float: x to the right, y down


def render(
    strokes: Sequence[Points], size: int = CANVAS_SIZE, width: int = BRUSH_SIZE
) -> np.ndarray:
    """RGBA (size, size, 4) uint8, white strokes on opaque black, from strokes in canvas
    pixels.

    Like fabric.js's freedraw brush: each stroke is a smooth path of quadratic curves
    through the midpoints of its points, stroked with round caps and joins, anti-aliased.
    """
    scale = SUPERSAMPLE
    image = Image.new("L", (size * scale, size * scale), 0)
    draw = ImageDraw.Draw(image)
    radius = width * scale / 2
    for stroke in strokes:
        path = smooth_path(np.asarray(stroke, dtype=np.float64) * scale)
        # A disc at every point makes the round caps and joins: the same pixels as PIL's
        # curved joints, four times faster.
        draw.line([tuple(p) for p in path], fill=255, width=round(width * scale))
        for x, y in path:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    gray = np.asarray(image.reduce(scale))
    return np.dstack([gray, gray, gray, np.full_like(gray, 255)])


def smooth_path(points: np.ndarray, steps: int = 4) -> np.ndarray:
    """fabric.js's PencilBrush path: straight to the first midpoint, then quadratic
    curves with each point as control and the midpoints as ends, straight to the last."""
    if len(points) < 3:
        return points
    mids = (points[:-1] + points[1:]) / 2
    t = np.linspace(0, 1, steps, endpoint=False)[1:, None]
    curves = (
        (1 - t[None]) ** 2 * mids[:-1, None]
        + 2 * t[None] * (1 - t[None]) * points[1:-1, None]
        + t[None] ** 2 * mids[1:, None]
    )
    inner = np.concatenate([curves, mids[1:, None]], axis=1).reshape(-1, 2)
    return np.concatenate([points[:1], mids[:1], inner, points[-1:]])


def placed(
    strokes: Sequence[Points],
    rng: np.random.Generator,
    brush: int = BRUSH_SIZE,
    size: int = CANVAS_SIZE,
) -> list[Points]:
    """``strokes`` (any units, y down) scaled and moved onto the canvas as a person places a
    digit: its shape kept, its ink ``INK_SPAN`` of the square, anywhere it fits, flush
    against an edge ``FLUSH_SHARE`` of the time."""
    points = np.concatenate(strokes)
    low, span = points.min(axis=0), np.ptp(points, axis=0)
    ink = rng.uniform(max(INK_SPAN[0], 4 * brush / size), INK_SPAN[1]) * size
    scale = max(ink - brush, 1.0) / max(float(span.max()), 1e-9)
    room = size - brush - span * scale  # how far the digit can move and stay on the canvas
    offset = rng.uniform(0, 1, 2) * room + brush / 2
    if rng.random() < FLUSH_SHARE:
        axis = rng.integers(2)
        offset[axis] = brush / 2 if rng.random() < 0.5 else brush / 2 + room[axis]
    return [(np.asarray(s, dtype=np.float64) - low) * scale + offset for s in strokes]


def canvas_strokes(canvas_json: dict | None) -> list[Points]:
    """The points of each stroke drawn on the canvas, from its JSON (fabric.js objects).

    fabric.js stores a freedraw stroke as an SVG path through the pointer's points: a move
    to the first, a quadratic curve per point with the point as its control, a line to the
    last. The controls and the last point are the points the pointer reported, in canvas
    pixels: what ``render`` draws again, and what a drawings file keeps.
    """
    strokes = []
    for shape in (canvas_json or {}).get("objects", []):
        if str(shape.get("type")).lower() != "path":  # "Path" in fabric.js 6 and later
            continue
        commands = [c for c in shape.get("path", []) if isinstance(c, list) and c]
        controls = [c[1:3] for c in commands if c[0] == "Q" and len(c) == 5]
        ends = [c[-2:] for c in commands if c[0] in ("M", "L") and len(c) == 3]
        points = controls + ends[-1:] if controls else ends
        if points:
            strokes.append(np.asarray(points, dtype=np.float64).clip(0, None))
    return strokes
