"""The Inspect page: mnist_core.inspection against hand-computed values, the page's logic
through AppTest, and the page in a real browser, on a test digit and on a drawing."""

from __future__ import annotations

import re
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from bench.browser import browser_missing, draw, open_draw_page, predictions, settle
from bench.synthetic_digits import DIGITS
from mnist_core import inspection
from mnist_core.models import CnnConfig, build_model, to_input
from tests.apptest import open_page, texts


def load(directory: Path, kind: str):
    import keras

    path = next(directory.glob(f"{kind}-*.keras"))
    return keras.saving.load_model(path, compile=False)  # as the registry loads it


@pytest.fixture(scope="module")
def ann(trained_models):
    return load(trained_models, "ann")


@pytest.fixture(scope="module")
def cnn(trained_models):
    return load(trained_models, "cnn")


@pytest.fixture(scope="module")
def digits(mnist) -> np.ndarray:
    """Ten test digits as the networks' 28x28 inputs."""
    return to_input(mnist.x_test[:10])[..., 0]


# --- the core --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ann", "cnn"])
def test_layer_table_lists_every_layer_and_its_parameters(trained_models, kind):
    model = load(trained_models, kind)
    rows = inspection.layer_table(model)
    assert [row.name for row in rows] == [layer.name for layer in model.layers]
    assert sum(row.parameters for row in rows) == model.count_params()
    assert rows[-1].type == "Dense" and rows[-1].output_shape == (10,)


def test_cnn_layer_table_shapes(cnn):
    conv, pool, norm, *_ = inspection.layer_table(cnn)
    assert (conv.type, pool.type, norm.type) == ("Conv2D", "MaxPooling2D", "BatchNormalization")
    assert pool.output_shape == norm.output_shape == (14, 14, 16)
    assert conv.output_shape == (28, 28, 16) and conv.parameters == 3 * 3 * 16 + 16


def test_first_conv_kernels_are_the_conv_weights(cnn):
    kernels = inspection.first_conv_kernels(cnn)
    conv = next(layer for layer in cnn.layers if type(layer).__name__ == "Conv2D")
    weights = np.asarray(conv.kernel)
    assert kernels.shape == (16, 3, 3)
    for number in range(16):
        np.testing.assert_array_equal(kernels[number], weights[:, :, 0, number])


def test_each_kind_refuses_what_only_the_other_has(ann, cnn, digits):
    with pytest.raises(ValueError, match="no Conv2D layer"):
        inspection.first_conv_kernels(ann)
    with pytest.raises(ValueError, match="no Conv2D layer"):
        inspection.feature_maps(ann, digits[0])
    with pytest.raises(ValueError, match="no Dense layer on the image's pixels"):
        inspection.strongest_units(cnn, digits[0])


def test_feature_maps_of_block_one_equal_a_hand_computed_forward_pass(cnn, digits):
    conv, pool, norm = inspection.conv_blocks(cnn)[0]
    kernel, bias = np.asarray(conv.kernel, np.float64), np.asarray(conv.bias, np.float64)
    image = digits[3].astype(np.float64)
    padded = np.pad(image, 1)  # "same" padding for a 3x3 kernel
    convolved = bias + sum(
        padded[i : i + 28, j : j + 28, None] * kernel[i, j, 0] for i in range(3) for j in range(3)
    )
    pooled = np.maximum(convolved, 0).reshape(14, 2, 14, 2, -1).max(axis=(1, 3))
    mean, variance = np.asarray(norm.moving_mean), np.asarray(norm.moving_variance)
    gamma, beta = np.asarray(norm.gamma), np.asarray(norm.beta)
    expected = gamma * (pooled - mean) / np.sqrt(variance + norm.epsilon) + beta

    blocks = inspection.feature_maps(cnn, digits[3])
    assert [block.block for block in blocks] == [1, 2, 3]
    assert blocks[0].layers == (conv.name, pool.name, norm.name)
    assert [block.maps.shape for block in blocks] == [(16, 14, 14), (48, 7, 7), (96, 3, 3)]
    np.testing.assert_allclose(blocks[0].maps, np.moveaxis(expected, -1, 0), atol=1e-4)


def test_feature_maps_of_a_loaded_model_with_augmentation_and_no_batch_norm(tmp_path, digits):
    import keras

    model = build_model(CnnConfig(filters=(4, 8), batch_norm=False, augment=True))
    model.save(tmp_path / "cnn.keras")
    loaded = keras.saving.load_model(tmp_path / "cnn.keras", compile=False)
    blocks = inspection.feature_maps(loaded, digits[0])
    assert [len(block.layers) for block in blocks] == [2, 2]  # conv, pool: no augmentation
    assert [block.maps.shape for block in blocks] == [(4, 14, 14), (8, 7, 7)]
    assert all((block.maps >= 0).all() for block in blocks)  # relu, then max pool
    again = inspection.feature_maps(loaded, digits[0])  # the random layers do nothing
    np.testing.assert_array_equal(again[1].maps, blocks[1].maps)


def test_the_sub_models_are_built_once_per_model(cnn, digits):
    inspection.feature_maps(cnn, digits[0])
    probes = inspection._probes(cnn)
    inspection.feature_maps(cnn, digits[1])
    inspection.saliency(cnn, digits[1])
    assert inspection._probes(cnn) is probes


@pytest.mark.parametrize("kind", ["ann", "cnn"])
def test_saliency_matches_a_finite_difference(trained_models, mnist, kind):
    """At the pixels of largest gradient of the test digit the model is least sure of (a
    sure model's probability barely moves, and a float32 difference cannot see it).

    With a little noise added: MNIST's plateaus of full ink make equal conv outputs, and a
    max pool over equal values has no derivative (its one-sided differences disagree)."""
    model = load(trained_models, kind)
    images = to_input(mnist.x_test[:200])
    probabilities = np.asarray(model.predict_on_batch(images))
    unsure = images[int(probabilities.max(axis=1).argmin())]
    noise = np.random.default_rng(0).uniform(0, 0.02, unsure.shape).astype(np.float32)
    image = np.clip(unsure + noise, 0, 1)
    found = inspection.saliency(model, image)
    assert found.digit == int(model.predict_on_batch(image[None]).argmax())
    step = 1e-4
    for flat in np.argsort(-np.abs(found.gradient).ravel())[:3]:
        row, col = divmod(int(flat), 28)
        above, below = image.copy(), image.copy()
        above[row, col] += step
        below[row, col] -= step
        change = model.predict_on_batch(np.stack([above, below]))[:, found.digit]
        difference = (float(change[0]) - float(change[1])) / (2 * step)
        assert found.gradient[row, col] == pytest.approx(difference, rel=0.03, abs=1e-3)
    np.testing.assert_array_equal(found.gradient_times_input, found.gradient * image[..., 0])


def test_saliency_of_a_sure_model_keeps_the_digits_own_term(cnn, digits):
    """Even where the probability rounds to 1 in float32, the map is p * d log p / dx:
    the gradient of the log-probability, taken through the logits, is never lost."""
    import keras
    import tensorflow as tf

    probabilities = np.asarray(cnn.predict_on_batch(digits[..., None]))
    sure = int(probabilities.max(axis=1).argmax())
    found = inspection.saliency(cnn, digits[sure])
    body = keras.Model(cnn.inputs, cnn.layers[-1].input)  # the logits, by hand
    batch = tf.convert_to_tensor(digits[sure][None, ..., None])
    with tf.GradientTape() as tape:
        tape.watch(batch)
        logits = tf.matmul(body(batch), cnn.layers[-1].kernel) + cnn.layers[-1].bias
        chosen = tf.nn.log_softmax(tf.cast(logits, tf.float64))[0, found.digit]
    expected = np.exp(float(chosen)) * np.asarray(tape.gradient(chosen, batch))[0, ..., 0]
    assert np.abs(found.gradient).max() > 0
    np.testing.assert_allclose(
        found.gradient, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max()
    )


def test_ann_unit_weights_are_the_dense_kernel_columns(ann, digits):
    units = inspection.strongest_units(ann, digits[0])
    dense = next(layer for layer in ann.layers if type(layer).__name__ == "Dense")
    kernel, bias = np.asarray(dense.kernel), np.asarray(dense.bias)
    answers = np.maximum(digits[0].reshape(-1) @ kernel + bias, 0)  # relu
    assert len(units) == inspection.UNITS_SHOWN
    assert [u.unit for u in units] == list(np.argsort(-answers, kind="stable")[:16])
    for unit in units:
        assert unit.weights.shape == (28, 28)
        np.testing.assert_array_equal(unit.weights.reshape(-1), kernel[:, unit.unit])
        assert unit.activation == pytest.approx(answers[unit.unit], rel=1e-4, abs=1e-5)


def test_the_charts_show_every_image(cnn, digits):
    from mnist_core.charts import image_grid, saliency_heatmap

    maps = inspection.feature_maps(cnn, digits[0])[1].maps  # 48 maps of 7x7
    figure = image_grid(maps, "map", range(1, 49), 16, False, 55)
    shown = np.asarray(figure.data[0].z, dtype=float)
    assert shown.shape == (3 * 8 - 1, 16 * 8 - 1)  # 3 rows of 16, a blank cell between
    np.testing.assert_allclose(np.nanmax(shown[:7, :7]), 1.0)  # each map on its own scale
    assert np.isnan(shown[7]).all()
    hover = np.asarray(figure.data[0].customdata, dtype=float)
    assert tuple(hover[8, 9]) == (18, maps[17, 0, 1])  # map 18: second row, second column
    found = inspection.saliency(cnn, digits[0])
    figure = saliency_heatmap(found.gradient, found.image, "CNN")
    assert np.asarray(figure.data[0].z).shape == (28, 28)


# --- the page, through AppTest --------------------------------------------------------


open_inspect = partial(open_page, "pages/inspect.py")


def chart_titles(app) -> list[str]:
    import json

    return [
        json.loads(chart.proto.spec)["layout"].get("title", {}).get("text", "")
        for chart in app.get("plotly_chart")
    ]


def test_page_without_models_says_to_train_first(apptest_env):
    app = open_inspect()
    assert "No saved model yet: train one on the Train page." in texts(app)
    assert not app.get("plotly_chart") and not app.tabs


def test_page_on_a_test_digit_then_asks_for_a_drawing(apptest_env, trained_models, monkeypatch):
    from mnist_core.data import load_mnist

    labels = load_mnist("sample").y_test
    monkeypatch.setenv("MNIST_MODELS_DIR", str(trained_models))
    app = open_inspect()  # no drawing in this session: a test digit
    assert app.segmented_control(key="inspect_source").value == "A test digit"
    app.number_input(key="inspect_index").set_value(5).run()
    assert app.get("image")[0].proto.imgs[0].caption == f"Test digit 5: a {labels[5]}"
    assert [tab.label for tab in app.tabs] == [
        "Saliency",
        "CNN filters",
        "CNN feature maps",
        "ANN weights",
        "Layers",
    ]
    titles = chart_titles(app)  # saliency x2, filters, 3 blocks of maps, ANN weights
    assert len(titles) == 7, titles
    assert re.fullmatch(r"ANN reads \d \(\d+% sure\)", titles[0]), titles
    assert re.fullmatch(r"CNN reads \d \(\d+% sure\)", titles[1]), titles
    assert [s.value for s in app.subheader if s.value.startswith("Block")] == [
        "Block 1: 16 maps of 14×14",
        "Block 2: 48 maps of 7×7",
        "Block 3: 96 maps of 3×3",
    ]
    tables = app.dataframe
    assert len(tables) == 2
    for table, kind in zip(tables, ["ann", "cnn"], strict=True):
        model = load(trained_models, kind)
        assert table.value["Parameters"].sum() == model.count_params()
        assert f"{kind.upper()}: {model.count_params():,} parameters" in texts(app)

    app.selectbox(key="inspect_random_digit").set_value(4).run()
    next(b for b in app.button if b.label == "Pick at random").click().run()
    index = app.number_input(key="inspect_index").value
    assert labels[index] == 4
    app.toggle(key="inspect_times_input").set_value(False).run()
    assert not app.exception, app.exception
    assert len(app.get("plotly_chart")) == 7

    app.segmented_control(key="inspect_source").set_value("Your drawing").run()
    assert "No drawing yet: draw a digit on the Draw page, then come back." in texts(app)
    assert not app.get("plotly_chart") and not app.tabs


def test_page_with_an_ann_only_says_what_is_missing(
    apptest_env, trained_models, tmp_path, monkeypatch
):
    models = tmp_path / "ann-only"
    shutil.copytree(trained_models, models, ignore=shutil.ignore_patterns("cnn-*"))
    monkeypatch.setenv("MNIST_MODELS_DIR", str(models))
    app = open_inspect()
    assert "No CNN model to inspect: train one on the Train page." in texts(app)
    titles = chart_titles(app)  # the ANN's saliency and weights
    assert len(titles) == 2 and titles[0].startswith("ANN reads"), titles
    assert len(app.dataframe) == 1


# --- in a browser ------------------------------------------------------------------------

browser_only = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))


@pytest.fixture(scope="module")
def models_dir(trained_models):
    """The app serves the session's trained ANN and CNN (no test here changes them)."""
    return trained_models


@browser_only
def test_inspect_page_in_the_browser_on_a_test_digit(app_server, page, mnist):
    from playwright.sync_api import expect

    page.goto(f"{app_server}/inspect")
    index = page.get_by_label(re.compile(r"^Test digit number"))
    index.wait_for(timeout=60_000)
    settle(page)  # the first visit builds each model's probes: let that run finish
    index.fill("12")
    index.press("Enter")
    expect(page.get_by_text(f"Test digit 12: a {mnist.y_test[12]}")).to_be_visible(timeout=30_000)
    main = page.get_by_test_id("stMain")
    charts = main.locator("[data-testid=stPlotlyChart]:visible")
    expect(charts).to_have_count(2, timeout=60_000)  # the two saliency maps
    titles = main.get_by_text(re.compile(r"^(ANN|CNN) reads \d \(\d+% sure\)$"))
    expect(titles).to_have_count(2, timeout=30_000)
    for tab, count in [("CNN filters", 1), ("CNN feature maps", 3), ("ANN weights", 1)]:
        main.get_by_role("tab", name=tab).click()
        expect(charts).to_have_count(count, timeout=30_000)
        drawn = charts.first.locator(".heatmaplayer")  # drawn, not an empty frame
        expect(drawn).to_have_count(1, timeout=30_000)
    main.get_by_role("tab", name="Layers").click()
    expect(main.locator("[data-testid=stDataFrame]:visible")).to_have_count(2)
    expect(main.get_by_text(re.compile(r"^(ANN|CNN): [\d,]+ parameters$"))).to_have_count(2)


@browser_only
def test_inspect_page_reads_the_digit_drawn_on_the_draw_page(app_server, page):
    from playwright.sync_api import expect

    open_draw_page(page, app_server)
    draw(page, DIGITS[7])
    read = predictions(page, "digit 7")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Inspect").click()
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text("Your drawing, as the networks see it")).to_be_visible(timeout=60_000)
    for kind, digit in read.items():
        shown = main.get_by_text(re.compile(rf"^{kind} reads {digit} \("))
        expect(shown).to_be_visible(timeout=30_000)  # the first look builds the probes
