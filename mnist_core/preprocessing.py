"""Turn a drawing into the 28x28 input a network expects, the way MNIST digits were made.

MNIST's recipe: crop to the ink, fit it in a 20x20 box keeping the aspect ratio
(anti-aliased), then place it in a 28x28 field so that its centre of mass is at the
centre. A network trained on MNIST reads drawings far better after the same steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

INK_THRESHOLD = 0.2  # ink level (0-1) that counts as drawn, for cropping and blank checks
MIN_INK_PIXELS = 4
MNIST_CENTRE = 14.0  # where MNIST digits' centre of mass sits (row and column, measured)


@dataclass(frozen=True)
class Preprocessed:
    """The network input (28x28 float32 in [0, 1]) and the images of each step, to show."""

    image: np.ndarray
    cropped: np.ndarray
    fitted: np.ndarray


def ink_from_rgba(rgba: np.ndarray) -> np.ndarray:
    """Ink level in [0, 1] from a white-on-black RGBA canvas (transparent counts as black)."""
    rgba = np.asarray(rgba, dtype=np.float32)
    brightness = rgba[..., :3].max(axis=-1)
    alpha = rgba[..., 3] if rgba.shape[-1] == 4 else 255.0
    return brightness * alpha / (255.0 * 255.0)


def is_blank(ink: np.ndarray) -> bool:
    """True when fewer than a handful of pixels carry ink."""
    return int((ink > INK_THRESHOLD).sum()) < MIN_INK_PIXELS


def preprocess_canvas(rgba: np.ndarray) -> Preprocessed | None:
    """Canvas RGBA -> MNIST-like 28x28 input, or ``None`` for a blank canvas."""
    return preprocess_ink(ink_from_rgba(rgba))


def preprocess_ink(ink: np.ndarray) -> Preprocessed | None:
    """Ink map (any size, values in [0, 1]) -> MNIST-like 28x28 input, or ``None`` if blank."""
    if is_blank(ink):
        return None
    rows, cols = np.nonzero(ink > INK_THRESHOLD)
    cropped = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    fitted = _fit_in_box(cropped, 20)
    field = np.zeros((28, 28), dtype=np.float32)
    top, left = (28 - fitted.shape[0]) // 2, (28 - fitted.shape[1]) // 2
    field[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
    cy, cx = ndimage.center_of_mass(field)
    centred = ndimage.shift(field, (round(MNIST_CENTRE - cy), round(MNIST_CENTRE - cx)),
                            order=0, cval=0.0)
    image = np.clip(centred / max(float(centred.max()), 1e-6), 0.0, 1.0).astype(np.float32)
    return Preprocessed(image=image, cropped=cropped, fitted=fitted)


def _fit_in_box(ink: np.ndarray, box: int) -> np.ndarray:
    """Resize so the longer side is ``box`` pixels, keeping the aspect ratio, anti-aliased."""
    height, width = ink.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(ink.astype(np.float32))
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS), dtype=np.float32).clip(0, 1)


def enlarge(image: np.ndarray, size: int = 140) -> np.ndarray:
    """A small image (values in [0, 1] or uint8) blown up with crisp pixels, for display."""
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.max() > 1.0:
        pixels = pixels / 255.0
    scale = size / max(pixels.shape)
    shape = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
    small = Image.fromarray((pixels.clip(0, 1) * 255).astype(np.uint8))
    return np.asarray(small.resize(shape, Image.Resampling.NEAREST))
