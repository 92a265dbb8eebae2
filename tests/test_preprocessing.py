import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from mnist_core.inference import predict_digit, top_k
from mnist_core.models import AnnConfig, CnnConfig, build_model
from mnist_core.preprocessing import enlarge, ink_from_rgba, preprocess_canvas

SIZE = 336


def canvas(strokes, width=24, transparent=False):
    """RGBA like the canvas returns: white round strokes on black (or on transparent)."""
    background = (0, 0, 0, 0) if transparent else (0, 0, 0, 255)
    image = Image.new("RGBA", (SIZE, SIZE), background)
    draw = ImageDraw.Draw(image)
    for points in strokes:
        draw.line(points, fill=(255, 255, 255, 255), width=width, joint="curve")
        for x, y in (points[0], points[-1]):  # round caps
            draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill="white")
    return np.asarray(image)


def ink_box(image, level=0.2):
    rows, cols = np.nonzero(image > level)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


@pytest.mark.parametrize("rgba", [
    np.zeros((SIZE, SIZE, 4), np.uint8),                            # transparent
    np.dstack([np.zeros((SIZE, SIZE, 3), np.uint8), np.full((SIZE, SIZE), 255, np.uint8)]),
])
def test_blank_canvas_is_recognised(rgba):
    assert preprocess_canvas(rgba) is None


def test_a_stray_pixel_is_still_blank():
    rgba = canvas([])
    rgba = rgba.copy()
    rgba[10, 10, :3] = 255
    assert preprocess_canvas(rgba) is None


def test_off_centre_small_digit_is_centred_and_scaled():
    seven = [[(20, 20), (90, 20), (45, 110)]]  # small, in the top-left corner
    result = preprocess_canvas(canvas(seven, width=10))
    assert result.image.shape == (28, 28) and result.image.dtype == np.float32
    assert result.image.min() >= 0 and result.image.max() == pytest.approx(1.0)
    cy, cx = ndimage.center_of_mass(result.image)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    assert max(ink_box(result.image)) in (19, 20, 21)  # fitted in a 20x20 box
    assert result.image[:2].sum() == 0 and result.image[:, :2].sum() == 0  # MNIST's margin


def test_aspect_ratio_is_kept_for_a_one():
    result = preprocess_canvas(canvas([[(200, 40), (200, 300)]]))
    height, width = ink_box(result.image)
    assert height >= 19 and width <= 6


def test_transparent_and_black_backgrounds_agree():
    strokes = [[(100, 60), (240, 60), (170, 290)]]
    opaque = preprocess_canvas(canvas(strokes)).image
    clear = preprocess_canvas(canvas(strokes, transparent=True)).image
    np.testing.assert_allclose(opaque, clear, atol=1e-6)


def test_steps_are_returned_for_display():
    result = preprocess_canvas(canvas([[(50, 50), (280, 280)]]))
    assert result.cropped.shape[0] > 200  # the crop of the drawing, full resolution
    assert max(result.fitted.shape) == 20


def test_upscaled_mnist_digits_come_back_close_to_the_original(mnist):
    rng = np.random.default_rng(0)
    for index in rng.choice(len(mnist.x_test), 20, replace=False):
        digit = mnist.x_test[index]
        big = np.kron(digit, np.ones((10, 10), np.uint8))  # 280x280
        rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
        top, left = rng.integers(0, SIZE - 280, 2)
        rgba[top:top + 280, left:left + 280, :3] = big[..., None]
        rgba[..., 3] = 255
        result = preprocess_canvas(rgba).image
        correlation = np.corrcoef(result.ravel(), digit.ravel() / 255)[0, 1]
        assert correlation > 0.95, f"test digit {index}: correlation {correlation:.2f}"


def test_ink_from_rgba_reads_white_strokes():
    rgba = canvas([[(10, 10), (300, 10)]])
    ink = ink_from_rgba(rgba)
    assert ink.max() == pytest.approx(1.0) and ink[200, 200] == 0


def test_enlarge_keeps_crisp_pixels():
    image = np.eye(28, dtype=np.float32)
    big = enlarge(image, 140)
    assert big.shape == (140, 140) and big.dtype == np.uint8
    assert set(np.unique(big)) == {0, 255}


def test_predict_digit_gives_probabilities_for_each_model():
    models = {"ann": build_model(AnnConfig(hidden_units=(8,))),
              "cnn": build_model(CnnConfig(filters=(4,), dense_units=8))}
    image = preprocess_canvas(canvas([[(168, 40), (168, 300)]])).image
    predictions = predict_digit(models, image)
    assert set(predictions) == {"ann", "cnn"}
    for probabilities in predictions.values():
        assert probabilities.shape == (10,)
        assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    direct = np.asarray(models["cnn"].predict(image[None, ..., None], verbose=0))[0]
    np.testing.assert_allclose(predictions["cnn"], direct, rtol=1e-4, atol=1e-6)


def test_top_k_orders_by_probability():
    probabilities = np.array([0.06, 0.6, 0.0, 0.3, 0, 0, 0, 0, 0.04, 0])
    assert top_k(probabilities, 3) == [(1, 0.6), (3, 0.3), (0, 0.06)]
