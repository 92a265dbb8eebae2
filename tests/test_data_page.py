"""The Data page: class counts, mean images, browsing digit by digit (AppTest), and the page
in a real browser."""

from __future__ import annotations

import re

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from bench.browser import browser_missing
from mnist_core.charts import class_count_bars, pixel_values
from mnist_core.data import NUM_CLASSES, class_counts, indices_of, mean_images
from mnist_core.text import as_read
from tests.apptest import open_page, texts

PER_PAGE = 40  # pages/data.py's page of digits
WAIT = 60_000  # ms: a page's parts may come slowly on a busy machine


def test_class_counts_add_up_to_each_set(mnist):
    for labels in (mnist.y_train, mnist.y_test):
        counts = class_counts(labels)
        assert counts.shape == (NUM_CLASSES,) and counts.sum() == len(labels)
        assert counts[3] == np.count_nonzero(labels == 3)
    assert class_counts(np.array([1, 1, 4], dtype=np.uint8)).tolist() == [0, 2, 0, 0, 1] + [0] * 5


def test_mean_image_is_the_mean_of_each_digits_images(small_mnist):
    x, y = small_mnist.x_train, small_mnist.y_train
    means = mean_images(x, y)
    assert means.shape == (NUM_CLASSES, 28, 28)
    for digit in range(NUM_CLASSES):
        images = [image for image, label in zip(x, y, strict=True) if label == digit]
        manual = np.sum(np.array(images, dtype=np.float64), axis=0) / len(images)
        np.testing.assert_allclose(means[digit], manual)
    assert not mean_images(x[y == 0], y[y == 0])[1].any()  # no example of 1: a blank mean


def test_indices_of_a_digit(small_mnist):
    y = small_mnist.y_test
    assert indices_of(y, None).tolist() == list(range(len(y)))
    sevens = indices_of(y, 7)
    assert (y[sevens] == 7).all() and len(sevens) == np.count_nonzero(y == 7)
    assert (np.diff(sevens) > 0).all()  # in the set's order


def test_the_charts(small_mnist):
    counts = {
        "training": class_counts(small_mnist.y_train),
        "test": class_counts(small_mnist.y_test),
    }
    bars = class_count_bars(counts)
    assert [trace.name for trace in bars.data] == ["training (1,500 digits)", "test (300 digits)"]
    assert list(bars.data[0].text) == [f"{n:,}" for n in counts["training"]]
    np.testing.assert_allclose(sum(bars.data[1].y), 1.0)
    pixels = pixel_values(small_mnist.x_test[0], "a digit")
    assert np.asarray(pixels.data[0].z).shape == (28, 28)
    shown = [cell for row in pixels.data[0].text for cell in row if cell]
    assert len(shown) == np.count_nonzero(small_mnist.x_test[0])  # blank pixels unlabelled


# --- the page through AppTest --------------------------------------------------------------


@pytest.fixture
def data_page(monkeypatch, mnist_reference):
    monkeypatch.setenv("MNIST_DATA", mnist_reference)
    st.cache_resource.clear()
    yield open_page("pages/data.py")
    st.cache_resource.clear()


def grid(app: AppTest) -> list[tuple[int, int]]:
    """(index, label) of each digit the browser's grid shows, from the captions "#12: 7"."""
    captions = [as_read(image.proto.imgs[0].caption) for image in app.get("image")]  # as shown
    found = [re.fullmatch(r"#(\d+): (\d)", caption) for caption in captions]
    return [(int(match[1]), int(match[2])) for match in found if match]


def test_data_page_says_what_it_runs_on(data_page, mnist):
    metrics = {m.label: m.value for m in data_page.metric}
    assert metrics["Training digits"] == f"{len(mnist.y_train):,}"
    assert metrics["Test digits"] == f"{len(mnist.y_test):,}"
    assert metrics["Running on"] == ("the offline sample" if mnist.is_sample else "full MNIST")
    said = texts(data_page)
    assert mnist.description in said and mnist.location in said
    assert len(data_page.get("plotly_chart")) == 1  # the counts; the pixels only on demand


def test_browsing_forward_then_one_digit(data_page, mnist):
    shown = grid(data_page)
    assert shown == [(i, int(mnist.y_train[i])) for i in range(PER_PAGE)]
    next(b for b in data_page.button if b.label == "Next").click().run()
    assert data_page.number_input(key="data_page").value == 2
    assert [i for i, _ in grid(data_page)] == list(range(PER_PAGE, 2 * PER_PAGE))

    data_page.selectbox(key="data_digit").set_value(3).run()
    assert data_page.number_input(key="data_page").value == 1  # a new filter starts at page 1
    shown = grid(data_page)
    assert len(shown) == min(PER_PAGE, np.count_nonzero(mnist.y_train == 3))
    assert all(label == 3 == mnist.y_train[i] for i, label in shown)

    data_page.selectbox(key="data_set").set_value("test").run()
    shown = grid(data_page)
    assert shown and all(label == 3 == mnist.y_test[i] for i, label in shown)
    assert shown[0][0] == np.flatnonzero(mnist.y_test == 3)[0]

    data_page.toggle(key="data_pixels").set_value(True).run()
    assert not data_page.exception, data_page.exception
    assert len(data_page.get("plotly_chart")) == 2  # the enlarged digit's pixel values too


# --- in a real browser ----------------------------------------------------------------------


@pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
def test_data_page_in_a_browser(app_server, page, mnist):
    from playwright.sync_api import expect

    page.goto(f"{app_server}/data")
    expect(page.get_by_role("heading", name="Browse the digits")).to_be_visible(timeout=WAIT)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text(f"{len(mnist.y_test):,}", exact=True)).to_be_visible(timeout=WAIT)
    first = f"#0: {mnist.y_train[0]}"
    expect(main.get_by_text(first, exact=True)).to_be_visible(timeout=WAIT)
    expect(main.get_by_text(re.compile(r"^#\d+: \d$"))).to_have_count(PER_PAGE, timeout=WAIT)
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(1, timeout=WAIT)
    expect(main.get_by_text(re.compile(r"^\d: mean of [\d,]+$"))).to_have_count(
        NUM_CLASSES, timeout=WAIT
    )
    page.get_by_role("button", name="Next").click()
    turned = main.get_by_text(f"#{PER_PAGE}: {mnist.y_train[PER_PAGE]}", exact=True)
    expect(turned).to_be_visible(timeout=WAIT)
    expect(main.get_by_text(first, exact=True)).to_have_count(0, timeout=WAIT)
