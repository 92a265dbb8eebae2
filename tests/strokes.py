"""Hand-made stroke templates of the ten digits, in canvas fractions (0-1), for drawing
tests: with a real mouse in the browser, or rendered like the canvas renders strokes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def _arc(cx, cy, rx, ry, start, end, n=14):
    angles = np.radians(np.linspace(start, end, n))
    return [(cx + rx * np.cos(a), cy - ry * np.sin(a)) for a in angles]


DIGITS: dict[int, list[list[tuple[float, float]]]] = {
    0: [_arc(0.5, 0.5, 0.22, 0.33, 90, 450, 24)],
    1: [[(0.42, 0.25), (0.52, 0.15), (0.52, 0.85)]],
    2: [_arc(0.5, 0.33, 0.2, 0.17, 160, -30, 10) + [(0.28, 0.85), (0.74, 0.85)]],
    3: [_arc(0.48, 0.32, 0.2, 0.16, 150, -90, 10) + _arc(0.48, 0.67, 0.22, 0.19, 90, -150, 10)],
    4: [[(0.58, 0.15), (0.25, 0.62), (0.75, 0.62)], [(0.6, 0.38), (0.6, 0.86)]],
    5: [[(0.7, 0.16), (0.36, 0.16), (0.33, 0.46)] + _arc(0.5, 0.64, 0.2, 0.2, 130, -140, 12)],
    6: [[(0.66, 0.15), (0.45, 0.3), (0.34, 0.5)] + _arc(0.5, 0.67, 0.17, 0.18, 180, -180, 18)],
    7: [[(0.26, 0.18), (0.74, 0.18), (0.44, 0.86)]],
    8: [_arc(0.5, 0.32, 0.16, 0.16, 270, -90, 16) + _arc(0.5, 0.67, 0.2, 0.19, 90, 450, 18)],
    9: [_arc(0.5, 0.34, 0.18, 0.17, 0, 360, 18) + [(0.68, 0.34), (0.63, 0.86)]],
}


def render(strokes, size=336, width=24) -> np.ndarray:
    """RGBA as the canvas returns it: white strokes with round caps and joins on black."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 255))
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        points = [(x * size, y * size) for x, y in stroke]
        draw.line(points, fill="white", width=width, joint="curve")
        for x, y in points:
            r = width / 2
            draw.ellipse((x - r, y - r, x + r, y + r), fill="white")
    return np.asarray(image)
