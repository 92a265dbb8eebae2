import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage.morphology import skeletonize

from bench.synthetic_digits import DIGITS, render
from mnist_core.inference import predict, top_k
from mnist_core.models import AnnConfig, CnnConfig, build_model
from mnist_core.preprocessing import (
    MAX_UPLOAD_BYTES,
    MNIST_STROKE,
    ImageError,
    enlarge,
    ink_from_rgba,
    is_blank,
    preprocess_canvas,
    preprocess_ink,
    preprocess_photo,
)

SIZE = 336


def canvas(strokes, width=24, transparent=False):
    """RGBA like the canvas returns, from strokes in canvas pixels."""
    rgba = render([[(x / SIZE, y / SIZE) for x, y in s] for s in strokes], SIZE, width)
    if transparent:  # the canvas's own layer: white ink whose alpha is its coverage
        rgba = np.dstack([np.full((SIZE, SIZE, 3), 255, np.uint8), rgba[..., 0]])
    return rgba


def ink_box(image, level=0.2):
    rows, cols = np.nonzero(image > level)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def stroke_width(image):
    """Ink mass / skeleton length: MNIST_STROKE was measured the same way."""
    return image.sum() / skeletonize(image > 0.5).sum()


def assert_mnist_like(image):
    assert image.shape == (28, 28) and image.dtype == np.float32
    assert image.min() >= 0 and image.max() == pytest.approx(1.0)
    cy, cx = ndimage.center_of_mass(image)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    assert max(ink_box(image)) in (19, 20, 21)  # fitted in a 20x20 box


@pytest.mark.parametrize(
    "rgba",
    [
        np.zeros((SIZE, SIZE, 4), np.uint8),  # transparent
        np.dstack([np.zeros((SIZE, SIZE, 3), np.uint8), np.full((SIZE, SIZE), 255, np.uint8)]),
    ],
)
def test_blank_canvas_is_recognised(rgba):
    assert preprocess_canvas(rgba) is None


def test_a_stray_pixel_is_still_blank():
    rgba = canvas([]).copy()
    rgba[10, 10, :3] = 255
    assert preprocess_canvas(rgba) is None


@pytest.mark.parametrize("brush", [10, 40])
def test_a_dot_is_not_a_digit_but_not_blank_either(brush):
    rgba = canvas([[(170, 170), (172, 171)]], width=brush)
    with pytest.raises(ImageError, match="too small to read: draw a bigger digit"):
        preprocess_canvas(rgba)  # not None, as for a blank canvas: the page asks for more
    assert not is_blank(ink_from_rgba(rgba))


def test_a_small_digit_with_a_fine_brush_is_read():
    seven = [[(150, 150), (190, 150), (165, 200)]]  # 50 px tall, brush 10
    assert_mnist_like(preprocess_canvas(canvas(seven, width=10)).image)


def test_off_centre_small_digit_is_centred_and_scaled():
    seven = [[(20, 20), (90, 20), (45, 110)]]  # small, in the top-left corner
    image = preprocess_canvas(canvas(seven, width=10)).image
    assert_mnist_like(image)
    assert image[:2].sum() == 0 and image[:, :2].sum() == 0  # MNIST's margin


@pytest.mark.parametrize(
    "strokes",
    [
        [[(0, 100), (0, 300)], [(0, 100), (120, 100)]],  # cut by the left edge
        [[(40, 336), (300, 336)], [(170, 336), (170, 150)]],  # cut by the bottom edge
        [[(6, 6), (330, 6), (120, 330)]],  # a 7 filling the whole canvas
    ],
)
def test_strokes_at_the_edges_are_centred_and_fitted(strokes):
    assert_mnist_like(preprocess_canvas(canvas(strokes, width=40)).image)


def test_separate_strokes_are_all_kept():
    bars = [[(60, 120), (270, 120)], [(60, 220), (270, 220)]]  # two strokes, not touching
    image = preprocess_canvas(canvas(bars)).image
    assert ndimage.label(image > 0.5)[1] == 2
    assert_mnist_like(image)


def test_aspect_ratio_is_kept_for_a_one():
    image = preprocess_canvas(canvas([[(200, 40), (200, 300)]])).image
    height, width = ink_box(image)
    assert height >= 19 and width <= 5


@pytest.mark.parametrize("digit", range(10))
def test_stroke_width_does_not_depend_on_the_brush(digit):
    images = {
        brush: preprocess_canvas(render(DIGITS[digit], SIZE, brush)).image for brush in (10, 24, 40)
    }
    masses = [image.sum() for image in images.values()]
    assert max(masses) < 1.15 * min(masses), masses
    for brush, image in images.items():
        assert stroke_width(image) == pytest.approx(MNIST_STROKE, abs=0.5), brush
    plain = [
        preprocess_ink(
            ink_from_rgba(render(DIGITS[digit], SIZE, brush)), redraw_strokes=False
        ).image.sum()
        for brush in (10, 40)
    ]
    assert plain[1] > 1.3 * plain[0]  # without the re-drawing a fat brush gives fat strokes


def test_the_target_stroke_width_is_mnists(small_mnist):
    widths = [stroke_width(digit / 255) for digit in small_mnist.x_train]
    assert np.median(widths) == pytest.approx(MNIST_STROKE, abs=0.15)


def test_transparent_and_black_backgrounds_agree():
    strokes = [[(100, 60), (240, 60), (170, 290)]]
    opaque = preprocess_canvas(canvas(strokes)).image
    clear = preprocess_canvas(canvas(strokes, transparent=True)).image
    np.testing.assert_allclose(opaque, clear, atol=1e-6)


def test_steps_are_returned_for_display():
    result = preprocess_canvas(canvas([[(50, 50), (280, 280)]]))
    assert result.cropped.shape[0] > 200  # the crop of the drawing, full resolution
    assert 40 <= max(result.redrawn.shape) <= 80
    assert max(result.fitted.shape) == 20


def test_upscaled_mnist_digits_are_still_read_as_mnist(mnist, small_mnist):
    """Blown up onto the canvas and back, real digits look like MNIST to a network.

    Re-drawn strokes change the pixels (each digit's own pen width is replaced by the
    typical one), so the check is that a network trained on MNIST still reads them.
    """
    model = build_model(AnnConfig(hidden_units=(128,)))
    model.fit(
        small_mnist.x_train[..., None] / 255,
        small_mnist.y_train,
        epochs=8,
        batch_size=64,
        verbose=0,
    )
    rng = np.random.default_rng(0)
    index = rng.choice(len(mnist.x_test), 300, replace=False)
    digits, labels = mnist.x_test[index], mnist.y_test[index]
    seen = []
    for digit in digits:
        ink = np.zeros((SIZE, SIZE), np.float32)
        top, left = rng.integers(0, SIZE - 280, 2)
        ink[top : top + 280, left : left + 280] = np.kron(digit / 255, np.ones((10, 10)))
        seen.append(preprocess_ink(ink).image)
        assert_mnist_like(seen[-1])
    seen = np.stack(seen)
    correlations = [
        np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(seen, digits, strict=True)
    ]
    assert np.median(correlations) > 0.85
    original = np.mean(model.predict(digits[..., None] / 255, verbose=0).argmax(1) == labels)
    after = np.mean(model.predict(seen[..., None], verbose=0).argmax(1) == labels)
    assert after >= original - 0.05, (original, after)


def photo(strokes, fmt="JPEG", exif_turn=False, ink=0.75, size=SIZE, pen=24) -> bytes:
    """A phone-like photo of a digit: dark ink on tinted paper, uneven light, noise."""
    margin = size // 3
    drawn = np.pad(render(strokes, size, pen)[..., 0] / 255, ((margin, margin), (2 * margin,) * 2))
    height, width = drawn.shape
    light = np.linspace(0.55, 0.95, width)[None, :] * np.linspace(0.9, 1.0, height)[:, None]
    gray = light * (1 - ink * drawn) + np.random.default_rng(0).normal(0, 0.03, drawn.shape)
    rgb = np.clip(np.dstack([gray * 0.95, gray * 0.9, gray * 0.8]) * 255, 0, 255)
    image = Image.fromarray(rgb.astype(np.uint8))
    exif = Image.Exif()
    if exif_turn:  # stored turned a quarter left, with the tag that turns it back
        image = image.transpose(Image.Transpose.ROTATE_90)
        exif[0x0112] = 6
    out = io.BytesIO()
    image.save(out, fmt, exif=exif)
    return out.getvalue()


@pytest.mark.parametrize("digit", [1, 4, 7])
@pytest.mark.parametrize("exif_turn", [False, True])
def test_a_photo_reads_like_the_same_digit_drawn(digit, exif_turn):
    image = preprocess_photo(photo(DIGITS[digit], exif_turn=exif_turn)).image
    assert_mnist_like(image)
    assert image[0].sum() == 0 and image[:, 0].sum() == 0  # white ink on black
    drawn = preprocess_canvas(render(DIGITS[digit])).image
    assert np.corrcoef(image.ravel(), drawn.ravel())[0, 1] > 0.85


@pytest.mark.parametrize("digit", [4, 7])
def test_a_fine_pen_on_a_big_photo_is_read(digit):
    image = preprocess_photo(photo(DIGITS[digit], size=1500, pen=5)).image  # 1 px when read
    drawn = preprocess_canvas(render(DIGITS[digit])).image
    assert np.corrcoef(image.ravel(), drawn.ravel())[0, 1] > 0.85


def test_a_screenshot_of_white_ink_on_black_needs_no_inversion():
    out = io.BytesIO()
    Image.fromarray(render(DIGITS[3])).save(out, "PNG")
    image = preprocess_photo(out.getvalue()).image
    drawn = preprocess_canvas(render(DIGITS[3])).image
    assert np.corrcoef(image.ravel(), drawn.ravel())[0, 1] > 0.95


def test_a_transparent_png_counts_as_paper():
    rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
    rgba[..., 3] = render(DIGITS[2])[..., 0]  # black ink on nothing
    out = io.BytesIO()
    Image.fromarray(rgba).save(out, "PNG")
    drawn = preprocess_canvas(render(DIGITS[2])).image
    assert np.corrcoef(preprocess_photo(out.getvalue()).image.ravel(), drawn.ravel())[0, 1] > 0.95


@pytest.mark.parametrize(
    "data, message",
    [
        (b"not an image at all", "cannot be read"),
        (b"\xff\xd8\xff\xe0" + bytes(1000), "cannot be read"),  # a JPEG that stops at once
        (bytes(MAX_UPLOAD_BYTES + 1), "limit is 10 MB"),
        (photo([], fmt="PNG"), "No visible ink"),  # blank paper
        (photo(DIGITS[8], ink=0.05), "No visible ink"),  # too faint to tell from the paper
    ],
)
def test_unusable_uploads_raise_a_clear_error(data, message):
    with pytest.raises(ImageError, match=message):
        preprocess_photo(data)


def test_an_image_with_too_many_pixels_is_refused_before_decoding():
    out = io.BytesIO()
    Image.new("1", (9000, 9000)).save(out, "PNG")  # a few kB on disk, 81 megapixels
    with pytest.raises(ImageError, match="megapixels"):
        preprocess_photo(out.getvalue())


def test_ink_from_rgba_reads_white_strokes():
    ink = ink_from_rgba(canvas([[(10, 10), (300, 10)]]))
    assert ink.max() == pytest.approx(1.0) and ink[200, 200] == 0


def test_enlarge_keeps_crisp_pixels():
    image = np.eye(28, dtype=np.float32)
    big = enlarge(image, 140)
    assert big.shape == (140, 140) and big.dtype == np.uint8
    assert set(np.unique(big)) == {0, 255}


def test_predict_gives_probabilities_for_each_model():
    models = {
        "ann": build_model(AnnConfig(hidden_units=(8,))),
        "cnn": build_model(CnnConfig(filters=(4,), dense_units=8)),
    }
    image = preprocess_canvas(canvas([[(168, 40), (168, 300)]])).image
    predictions = {kind: predict(model, image) for kind, model in models.items()}
    assert set(predictions) == {"ann", "cnn"}
    for probabilities in predictions.values():
        assert probabilities.shape == (10,)
        assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    direct = np.asarray(models["cnn"].predict(image[None, ..., None], verbose=0))[0]
    np.testing.assert_allclose(predictions["cnn"], direct, rtol=1e-4, atol=1e-6)


def test_top_k_orders_by_probability():
    probabilities = np.array([0.06, 0.6, 0.0, 0.3, 0, 0, 0, 0, 0.04, 0])
    assert top_k(probabilities, 3) == [(1, 0.6), (3, 0.3), (0, 0.06)]


def test_a_blob_of_a_few_pixels_asks_for_a_digit_and_never_crashes():
    """A real pen's digit (UNIPEN) with a stray stroke 9,000 tablet units away, placed on the
    canvas as seen_by_networks placed it: the digit shrinks to a blob whose skeleton is all
    spurs, which pruning removed, leaving nothing to measure (it raised a numpy error)."""
    from mnist_core.strokes import placed, render

    tail = [[887.0, 9910.0], [889.0, 9907.0], [888.0, 9910.0], [890.0, 9909.0], [889.0, 9906.0]]
    strokes = [
        [[779, 9399], [766, 9509], [739, 9551], [756, 9614], [834, 9631], [876, 9624]],
        [[941, 9516], [955, 9602], [906, 9732], [885, 9805], [889, 9902], [890, 9911], *tail],
        [[0, 3], [2, 1], [19, 5], [42, 15], [69, 13], [94, 0]],
    ]
    found = None
    for seed in range(200):  # some placements shrink it to a blob
        rng = np.random.default_rng((0, seed))
        try:
            preprocess_canvas(render(placed([np.array(s, float) for s in strokes], rng)))
        except ImageError as error:  # a dot: the page asks for a bigger digit
            found = str(error)
    assert found == "That is too small to read: draw a bigger digit."
