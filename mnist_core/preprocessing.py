"""Turn a drawing or a photo into the 28x28 input a network expects, the way MNIST was made.

MNIST's recipe: crop to the ink, fit it in a 20x20 box keeping the aspect ratio
(anti-aliased), then place it in a 28x28 field so that its centre of mass is at the
centre. One more step makes drawings read like MNIST whatever the brush or pen: the
strokes are made as wide, relative to the digit, as MNIST's pen strokes (a fat brush on
a small digit, or a fine pen on a big one, otherwise looks like nothing in MNIST).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.morphology import skeletonize

from .data import IMAGE_SIZE

CANVAS_SIZE = 336  # the Draw page's square canvas, in CSS pixels: 12x the 28x28 input
BRUSH_SIZE = 24  # the canvas's default brush, in pixels: a stroke as thick as MNIST's
BRUSH_RANGE = (10, 40)  # the brush sizes the Draw page offers
DIGIT_BOX = 20  # MNIST fits each digit in a 20x20 box inside the 28x28 image
INK_THRESHOLD = 0.2  # ink level (0-1) that counts as drawn, for cropping and blank checks
MIN_INK_PIXELS = 4
MNIST_CENTRE = IMAGE_SIZE / 2  # where MNIST digits' centre of mass sits (row and column, measured)
# MNIST's stroke width in pixels of the 28x28 image: ink mass / skeleton length of the
# training digits has median 2.8 (10% of digits below 2.1, 10% above 4.0).
MNIST_STROKE = 2.8
# The pen width, in pixels of the 20x20 box, that gives re-drawn digits that median:
# ink mass / skeleton length exceeds the pen width (skeletons stop short of stroke ends,
# and a diagonal skeleton pixel stands for 1.4 pixels of stroke).
PEN_WIDTH = 2.2
WORK_SIZE = 64  # the crop is thinned and re-drawn at this size: fast, and fine enough
MIN_SPAN_IN_STROKES = 2.0  # a drawing less than two brush widths long is a dot, not a digit
# Drawn digits cover at most a third of the canvas, even with the fattest brush (measured on
# bench/synthetic_digits.py's drawings); ink over more of it is a fill or a scribble.
MAX_INK_SHARE = 0.45

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 50_000_000  # a 50-megapixel phone photo; more is likely a decompression bomb
PHOTO_SIDE = 512  # photos are read at most this large: enough for a digit, and fast
MIN_CONTRAST = 0.1  # ink must differ from the paper by a tenth of the grey scale
PHOTO_FORMATS = "PNG, JPEG, WebP, BMP or GIF"  # what the Draw page's upload accepts


class ImageError(ValueError):
    """An upload that cannot be read as a digit; the message says why, for the user."""


@dataclass(frozen=True)
class Preprocessed:
    """The network input (28x28 float32 in [0, 1]) and the images of each step, to show.

    ``cropped`` is the drawing cut to its ink, ``redrawn`` the same with MNIST-like
    strokes (about ``WORK_SIZE`` pixels), ``fitted`` that in a 20x20 box, ``image`` the
    centred 28x28 result.
    """

    image: np.ndarray
    cropped: np.ndarray
    redrawn: np.ndarray
    fitted: np.ndarray


def ink_from_rgba(rgba: np.ndarray) -> np.ndarray:
    """Ink level in [0, 1] from a white-on-black RGBA canvas (transparent counts as black)."""
    rgba = np.asarray(rgba)
    # Channel by channel: ``max(axis=-1)`` over 3 interleaved bytes is 25 times slower.
    brightness = np.maximum(np.maximum(rgba[..., 0], rgba[..., 1]), rgba[..., 2])
    if rgba.shape[-1] == 4:
        return brightness * (rgba[..., 3] * np.float32(1 / (255 * 255)))
    return brightness * np.float32(1 / 255)


def is_blank(ink: np.ndarray) -> bool:
    """True when fewer than a handful of pixels carry ink."""
    return int((ink > INK_THRESHOLD).sum()) < MIN_INK_PIXELS


def preprocess_canvas(rgba: np.ndarray, redraw_strokes: bool = True) -> Preprocessed | None:
    """Canvas RGBA -> MNIST-like 28x28 input; ``None`` if the canvas is blank.

    Raises ``ImageError`` for ink that is no digit, with a message that says what to draw
    instead: a dot shorter than two brush widths, or ink over most of the canvas (filled
    in or scribbled over, which would otherwise read as some digit with confidence).
    ``redraw_strokes`` as in ``preprocess_ink``.
    """
    ink = ink_from_rgba(rgba)
    if (ink > INK_THRESHOLD).mean() > MAX_INK_SHARE:
        raise ImageError("That fills most of the square: press Clear and draw one digit.")
    result = preprocess_ink(ink, redraw_strokes)
    if result is None and not is_blank(ink):
        raise ImageError("That is too small to read: draw a bigger digit.")
    return result


def preprocess_ink(ink: np.ndarray, redraw_strokes: bool = True) -> Preprocessed | None:
    """Ink map (any size, values in [0, 1]) -> MNIST-like 28x28 input, or ``None``.

    ``redraw_strokes=False`` skips the stroke-width step: the plain MNIST recipe.
    """
    if is_blank(ink):
        return None
    cropped = _crop(ink)
    redrawn = _redraw_strokes(cropped) if redraw_strokes else cropped
    if redrawn is None:
        return None
    fitted = _fit_in_box(redrawn, DIGIT_BOX)
    field = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    top, left = (IMAGE_SIZE - fitted.shape[0]) // 2, (IMAGE_SIZE - fitted.shape[1]) // 2
    field[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
    centred = centre_by_mass(field)
    image = np.clip(centred / max(float(centred.max()), 1e-6), 0.0, 1.0).astype(np.float32)
    return Preprocessed(image=image, cropped=cropped, redrawn=redrawn, fitted=fitted)


def centre_by_mass(field: np.ndarray) -> np.ndarray:
    """``field`` moved by whole pixels so that its centre of mass is where MNIST's are: the
    last step of MNIST's recipe, which takes away where on the page a digit was written."""
    if not field.any():
        return field
    cy, cx = ndimage.center_of_mass(field)
    return ndimage.shift(
        field, (round(MNIST_CENTRE - cy), round(MNIST_CENTRE - cx)), order=0, cval=0.0
    )


def preprocess_photo(data: bytes) -> Preprocessed:
    """Photo of a handwritten digit (any format Pillow reads) -> MNIST-like 28x28 input.

    Dark ink on light paper or the reverse, uneven light, colour, EXIF rotation are all
    fine. Raises ``ImageError`` for a file too big (in bytes or in pixels: a few bytes can
    declare billions of pixels), not a raster image, damaged, or with no digit on it.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(
            f"The file is {len(data) / 2**20:.1f} MB; the limit is "
            f"{MAX_UPLOAD_BYTES / 2**20:.0f} MB."
        )
    if b"<svg" in data[:4096].lower():
        raise ImageError(
            f"That is an SVG drawing, not a photo: upload a {PHOTO_FORMATS} photo, "
            "or draw the digit on the canvas."
        )
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise ImageError(
                f"The image is {image.width}x{image.height} pixels; the limit is "
                f"{MAX_PIXELS / 1e6:.0f} megapixels."
            )
        image.draft("L", (PHOTO_SIDE, PHOTO_SIDE))  # JPEG: decode grey, at a reduced scale
        image = ImageOps.exif_transpose(image)
        image.thumbnail((PHOTO_SIDE, PHOTO_SIDE))
        white = Image.new("RGBA", image.size, "white")  # transparent counts as paper
        gray = Image.alpha_composite(white, image.convert("RGBA")).convert("L")
    except UnidentifiedImageError:
        raise ImageError(
            f"This file cannot be read as an image: upload a {PHOTO_FORMATS} photo."
        ) from None
    except Image.DecompressionBombError:
        raise ImageError(
            "The image declares far more pixels than any photo (a decompression bomb?); "
            f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels."
        ) from None
    except OSError as error:
        raise ImageError(
            f"This image cannot be read: the file is damaged or cut short ({error})."
        ) from error
    result = preprocess_ink(_ink_from_photo(np.asarray(gray, dtype=np.float32) / 255))
    if result is None:
        raise ImageError("No digit found in the image: write it larger, with a darker pen.")
    return result


def _ink_from_photo(gray: np.ndarray) -> np.ndarray:
    """Grey photo in [0, 1] -> ink map: white ink on black, paper and specks removed."""
    gray = ndimage.gaussian_filter(gray, 1.0)  # sensor noise and JPEG blocks
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:  # light paper: the usual photo of dark ink
        gray = 1.0 - gray
    # The paper, lit unevenly: a low percentile over a wide window sees paper, not ink.
    small = np.asarray(Image.fromarray(gray).resize((32, 32), Image.Resampling.BOX))
    paper = ndimage.percentile_filter(small, 30, size=9, mode="nearest")
    paper = Image.fromarray(paper).resize(gray.shape[::-1], Image.Resampling.BILINEAR)
    ink = np.clip(gray - np.asarray(paper), 0.0, None)
    mask = ink > threshold_otsu(ink) if np.ptp(ink) else np.zeros(ink.shape, dtype=bool)
    low = np.median(ink[~mask])
    high = np.percentile(ink[mask], 90) if mask.any() else low  # an even page: no ink
    if high - low < MIN_CONTRAST:
        raise ImageError("No visible ink in the image: use a darker pen or more light.")
    labels, count = ndimage.label(mask)
    sizes = ndimage.sum_labels(mask, labels, np.arange(1, count + 1))
    keep = np.isin(labels, 1 + np.flatnonzero(sizes >= 0.1 * sizes.max()))  # drop specks
    keep = ndimage.binary_dilation(keep, iterations=2)  # with the soft edges of the strokes
    return (np.clip((ink - low) / (high - low), 0.0, 1.0) * keep).astype(np.float32)


def _crop(ink: np.ndarray) -> np.ndarray:
    drawn = ink > INK_THRESHOLD
    rows, cols = np.flatnonzero(drawn.any(axis=1)), np.flatnonzero(drawn.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _redraw_strokes(cropped: np.ndarray) -> np.ndarray | None:
    """The drawing with strokes as wide, relative to its size, as MNIST's pen strokes;
    ``None`` if it is a dot rather than a digit.

    The stroke edges move in or out by half the difference between the brush's width
    and the target; the centre lines, re-drawn at the target width, keep the strokes
    that moving in would erase. Works on a ``WORK_SIZE`` copy: fast, and fine enough.
    """
    small = ndimage.gaussian_filter(_fit_in_box(cropped, WORK_SIZE), 1.0)  # no jagged edges
    # Half the strongest ink: a fine pen on a big photo shrinks to faint, sub-pixel lines.
    mask = np.pad(small > 0.5 * small.max(), WORK_SIZE // 8)  # room for strokes made wider
    skeleton = skeletonize(mask)
    if not skeleton.any():
        return None
    inside = ndimage.distance_transform_edt(mask)
    brush = 2 * np.median(inside[skeleton]) - 1
    if max(small.shape) < MIN_SPAN_IN_STROKES * brush:
        return None
    skeleton = _prune(skeleton, round(brush / 2))
    if not skeleton.any():  # only spurs: a blob, no stroke to redraw
        return None
    rows, cols = np.nonzero(skeleton)
    span = max(np.ptp(rows), np.ptp(cols)) + 1
    # Strokes of width w on a skeleton spanning `span` fill a box of span + w; fitted in
    # MNIST's 20-pixel box that width becomes PEN_WIDTH: w * 20 / (span + w) = PEN_WIDTH.
    width = PEN_WIDTH * span / (DIGIT_BOX - PEN_WIDTH)
    edge = np.where(mask, inside - 0.5, 0.5 - ndimage.distance_transform_edt(~mask))
    lines = width / 2 - ndimage.distance_transform_edt(~skeleton)
    depth = np.maximum(edge + (width - brush) / 2, lines)  # inside the new strokes, in px
    return _crop(np.clip(depth + 0.5, 0.0, 1.0).astype(np.float32))


def _prune(skeleton: np.ndarray, length: int) -> np.ndarray:
    """The skeleton without side branches shorter than ``length``: bumps on a stroke's
    edge grow such spurs, which would be re-drawn as blobs."""
    pruned = skeleton.copy()
    for _ in range(length):  # eat every branch from its free end...
        pruned &= _neighbours(pruned) > 1
    grown = pruned & (_neighbours(pruned) == 1)
    for _ in range(length):  # ...then grow back the ends of the branches that survived
        grown = (grown | (_neighbours(grown) > 0)) & skeleton
    return pruned | grown


def _neighbours(pixels: np.ndarray) -> np.ndarray:
    """How many of its 8 neighbours are set, for each pixel (array slices: 5x faster
    than ``ndimage.convolve`` on images this small)."""
    p = np.pad(pixels, 1).astype(np.uint8)
    return (
        p[:-2, :-2]
        + p[:-2, 1:-1]
        + p[:-2, 2:]
        + p[1:-1, :-2]
        + p[1:-1, 2:]
        + p[2:, :-2]
        + p[2:, 1:-1]
        + p[2:, 2:]
    )


def _fit_in_box(ink: np.ndarray, box: int) -> np.ndarray:
    """Resize so the longer side is ``box`` pixels, keeping the aspect ratio, anti-aliased."""
    height, width = ink.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(ink.astype(np.float32))
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.float32).clip(0, 1)


def enlarge(image: np.ndarray, size: int = 140) -> np.ndarray:
    """A small image (values in [0, 1] or uint8) blown up with crisp pixels, for display."""
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.max() > 1.0:
        pixels = pixels / 255.0
    small = Image.fromarray((pixels.clip(0, 1) * 255).astype(np.uint8))
    return np.asarray(small.resize(scaled_size(pixels.shape, size), Image.Resampling.NEAREST))


def scaled_size(shape: tuple[int, ...], size: int) -> tuple[int, int]:
    """(width, height) of an image of ``shape`` (rows, columns) scaled to ``size`` pixels on
    its longer side."""
    scale = size / max(shape[:2])
    return max(1, round(shape[1] * scale)), max(1, round(shape[0] * scale))
