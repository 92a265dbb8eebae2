"""The Robustness page: perturbations of test digits, the accuracy sweeps, the page's logic
(AppTest) and the page in a real browser with a drawing brought from the Draw page."""

from __future__ import annotations

import re
from functools import partial

import numpy as np
import pytest
from scipy import ndimage

from bench.browser import browser_missing, draw, open_draw_page, predictions, settle
from bench.synthetic_digits import DIGITS, render
from mnist_core.charts import COLORS, robustness_curves
from mnist_core.data import MnistData, stratified_subset
from mnist_core.evaluation import evaluate
from mnist_core.preprocessing import centre_by_mass, preprocess_ink
from mnist_core.registry import ModelRegistry
from mnist_core.robustness import (
    BY_NAME,
    PERTURBATIONS,
    SEED,
    Robustness,
    Sweep,
    measure,
    measured_digits,
    move,
    reading,
)
from tests.apptest import open_page, texts

FEW = 200  # test digits the model tests measure on: enough to tell, fast


@pytest.fixture(scope="module")
def digits(mnist) -> np.ndarray:
    return measured_digits(mnist, FEW)[0]


@pytest.fixture(scope="module")
def models_dir(trained_models):
    """The app serves the session's trained ANN and CNN (no test here changes them)."""
    return trained_models


def centres_of_mass(images: np.ndarray) -> np.ndarray:
    return np.array([ndimage.center_of_mass(image) for image in images])


def margin(image: np.ndarray) -> int:
    """The fewest blank rows or columns between the ink and an edge of the image."""
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    last = len(image) - 1
    return int(min(rows[0], cols[0], last - rows[-1], last - cols[-1]))


# --- the perturbations ---------------------------------------------------------------------


def test_amount_zero_leaves_every_digit_as_it_is(digits):
    for perturbation in PERTURBATIONS:
        assert 0 in perturbation.amounts, perturbation.name
        assert np.array_equal(perturbation.apply(digits, 0), digits), perturbation.name


def test_every_other_amount_changes_the_digits_the_same_way_each_time(digits):
    for perturbation in PERTURBATIONS:
        for amount in perturbation.amounts:
            if amount == 0:
                continue
            changed = perturbation.apply(digits, amount)
            assert changed.shape == digits.shape and changed.dtype == np.float32
            assert changed.min() >= 0 and changed.max() <= 1
            assert not np.array_equal(changed, digits), (perturbation.name, amount)
            assert np.array_equal(changed, perturbation.apply(digits, amount)), perturbation.name


@pytest.mark.parametrize("pixels", [1, 2, 3])
def test_a_shift_moves_each_digit_by_that_many_pixels(digits, pixels):
    moved = BY_NAME["shift"].apply(digits, pixels)
    whole = np.isclose(moved.sum(axis=(1, 2)), digits.sum(axis=(1, 2)))  # no ink off the edge
    assert whole.mean() > 0.8
    steps = centres_of_mass(moved[whole]) - centres_of_mass(digits[whole])
    # Along one axis only, by exactly ``pixels``: left, right, up or down.
    assert np.allclose(np.sort(np.abs(steps), axis=1), [0, pixels], atol=1e-4)
    assert len({tuple(step) for step in np.round(steps).astype(int)}) == 4  # all four ways


def test_a_turn_keeps_the_ink_and_goes_both_ways(digits):
    turned = BY_NAME["rotation"].apply(digits, 30)
    ink = digits.sum(axis=(1, 2))
    assert np.allclose(turned.sum(axis=(1, 2)), ink, rtol=0.1)
    quarter = np.zeros((1, 28, 28), np.float32)
    quarter[0, 5:9, 12:16] = 1  # a square above the middle: a clockwise quarter turn...
    right = move(quarter[0], 0, 0, 90, recentre=False)
    rows, cols = np.nonzero(right > 0.5)
    assert rows.min() >= 12 and rows.max() <= 15 and cols.min() >= 19  # ...puts it right


def test_resizing_grows_and_shrinks_the_ink(digits):
    ink = digits.sum()
    assert BY_NAME["scale"].apply(digits, 40).sum() > 1.5 * ink
    assert BY_NAME["scale"].apply(digits, -40).sum() < 0.5 * ink


def test_blur_and_noise_grow_with_the_amount(digits):
    blurred = [BY_NAME["blur"].apply(digits, sigma).max(axis=(1, 2)).mean() for sigma in (1, 3)]
    assert blurred[0] > blurred[1]  # wider blur: fainter peaks
    noisy = [np.abs(BY_NAME["noise"].apply(digits, std) - digits).mean() for std in (0.1, 0.5)]
    assert noisy[0] < noisy[1]


def test_the_patch_is_a_square_that_hides_part_of_every_stroke(digits):
    hidden = BY_NAME["patch"].apply(digits, 6)
    removed = (digits > 0) & (hidden == 0)
    assert (removed.sum(axis=(1, 2)) > 0).all()  # over ink, on every digit
    assert (removed.sum(axis=(1, 2)) <= 36).all()  # no more than a 6x6 square


def test_recentring_undoes_a_move_but_not_a_turn(digits):
    digit = next(d for d in digits if margin(d) >= 4)  # nothing moved off the image
    centred = centre_by_mass(digit)
    assert np.array_equal(move(digit, 3, -2, 0, recentre=True), centred)
    assert np.array_equal(move(digit, -4, 4, 0, recentre=True), centred)
    assert not np.array_equal(move(digit, 3, -2, 0, recentre=False), centred)
    turned = move(digit, 3, -2, 30, recentre=True)
    assert np.array_equal(turned, move(digit, 0, 0, 30, recentre=True))
    assert np.allclose(ndimage.center_of_mass(turned), ndimage.center_of_mass(centred), atol=1)


# --- the measurement -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn(trained_models):
    registry = ModelRegistry(trained_models)
    return registry.load(registry.newest("cnn"))


def test_accuracy_unchanged_is_the_models_accuracy_on_the_subset(cnn, mnist):
    shares = []
    measured = measure(cnn, mnist, shares.append, digits=FEW)
    x_test, y_test = stratified_subset(mnist.x_test, mnist.y_test, FEW, seed=SEED)
    subset = MnistData(mnist.x_train, mnist.y_train, x_test, y_test, mnist.origin, "")
    expected = evaluate(cnn, subset).accuracy
    assert measured.digits == FEW
    assert measured.unchanged == pytest.approx(expected)
    for sweep in measured.sweeps:
        assert sweep.at(0) == pytest.approx(expected), sweep.perturbation.name
        assert len(sweep.accuracy) == len(sweep.perturbation.amounts)
    assert shares == sorted(shares) and shares[-1] == 1 and len(shares) > len(PERTURBATIONS)
    # A trained CNN reads digits moved 8 pixels far worse than as they are.
    assert measured.accuracy("shift", 8) < expected - 0.2


def test_the_subset_is_balanced_and_always_the_same(mnist):
    images, labels = measured_digits(mnist, FEW)
    again, _ = measured_digits(mnist, FEW)
    assert np.array_equal(images, again)
    assert np.bincount(labels).tolist() == [FEW // 10] * 10


# --- what the page shows of it ---------------------------------------------------------------


def fake(accuracies: dict[str, float]) -> Robustness:
    """A measurement whose sweeps fall linearly from 99% to the given accuracy at the end."""
    return Robustness(
        digits=FEW,
        sweeps=tuple(
            Sweep(p, tuple(np.linspace(0.99, accuracies.get(p.name, 0.9), len(p.amounts))))
            for p in PERTURBATIONS
        ),
    )


def test_the_reading_says_which_model_holds_up_better_whichever_it_is():
    ann = fake({"shift": 0.1, "blur": 0.8, "rotation": 0.5})
    cnn = fake({"shift": 0.7, "blur": 0.1, "rotation": 0.5})
    sentences = reading({"ann": ann, "cnn": cnn})
    assert "**The ANN holds up better** against: blurred." in sentences
    assert "**The CNN holds up better** against: moved." in sentences
    assert any(s.startswith("**About even** against: turned, resized") for s in sentences)
    shift = BY_NAME["shift"]
    ann_at, cnn_at = ann.accuracy("shift", shift.example), cnn.accuracy("shift", shift.example)
    assert f"Moved 4 px: CNN **{cnn_at:.0%}**, ANN **{ann_at:.0%}**." in sentences
    assert "Unchanged: ANN **99.0%**, CNN **99.0%**." in sentences
    alone = reading({"cnn": cnn})  # one model: its numbers, no comparison
    assert not any("holds up" in s for s in alone)
    assert f"Turned 30°: CNN **{cnn.accuracy('rotation', 30):.0%}**." in alone


def test_the_chart_has_a_panel_per_perturbation_and_both_models_on_each():
    figure = robustness_curves({"ann": fake({}), "cnn": fake({})})
    titles = [annotation.text for annotation in figure.layout.annotations]
    assert titles == [f"<b>{p.title}</b>" for p in PERTURBATIONS]
    assert len(figure.data) == 2 * len(PERTURBATIONS)
    assert {trace.line.color for trace in figure.data} == {COLORS["ann"], COLORS["cnn"]}
    assert [trace.name for trace in figure.data if trace.showlegend] == ["ANN", "CNN"]


# --- the page's logic (AppTest) --------------------------------------------------------------


# Measuring both models on the page's test digits takes a while: a longer run timeout.
open_robustness_page = partial(open_page, "pages/robustness.py", timeout=120)


def a_drawing(digit: int):
    return preprocess_ink(render(DIGITS[digit])[..., 0] / 255)


def test_page_without_models_says_to_train_first(apptest_env):
    app = open_robustness_page()
    assert "No ANN and CNN model yet: train one on the Train page" in texts(app)
    assert [link.proto.page for link in app.get("page_link")] == ["train"]
    assert not app.get("plotly_chart")


def test_page_measures_both_models_and_moves_the_drawing(apptest_env, trained_models, monkeypatch):
    import ui

    monkeypatch.setenv("MNIST_MODELS_DIR", str(trained_models))
    measurements = []
    monkeypatch.setattr(
        ui, "measure", lambda *a: measurements.append(1) or partial(measure, digits=FEW)(*a)
    )
    app = open_robustness_page()
    assert [s.label for s in app.selectbox] == ["ANN model", "CNN model"]
    assert len(app.get("plotly_chart")) == 1
    assert f"Accuracy on {FEW} test digits" in texts(app)
    # The reading's numbers are the measurement's.
    results = {
        kind: ui.robustness(ModelRegistry(trained_models).newest(kind)) for kind in ("ann", "cnn")
    }
    for sentence in reading(results):
        assert sentence in texts(app)
    assert "Draw a digit on the Draw page first" in texts(app)
    assert [link.proto.page for link in app.get("page_link")] == ["draw"]

    app.session_state["drawing"] = a_drawing(7)  # as the Draw page leaves it
    app.run()
    assert not app.exception, app.exception
    assert "ANN predicts" in texts(app) and "CNN predicts" in texts(app)
    assert [s.label for s in app.slider] == [
        "Move right (px)",
        "Move down (px)",
        "Turn clockwise (°)",
    ]
    bars = [e.proto.body for e in app.get("html")]
    app.slider(key="move_right").set_value(8).run()
    app.slider(key="turn").set_value(45).run()
    moved = [e.proto.body for e in app.get("html")]
    assert moved != bars  # the models read the moved, turned drawing
    app.slider(key="turn").set_value(0).run()
    app.toggle(key="recentre").set_value(True).run()
    assert [e.proto.body for e in app.get("html")] == bars  # centred: the move is undone
    assert "A move is undone before the networks see it" in texts(app)
    assert measurements == [1, 1]  # once per model file, not at every slider move


# --- in a real browser -----------------------------------------------------------------------


@pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
def test_a_drawing_brought_from_the_draw_page_moves_with_the_sliders(app_server, page):
    from playwright.sync_api import expect

    open_draw_page(page, app_server)
    draw(page, DIGITS[4])
    assert predictions(page, "on the Draw page", timeout=60)
    # Through the sidebar, in the same session: a new URL would be a new session, no drawing.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Robustness").click()
    expect(page.locator("[data-testid=stPlotlyChart] .main-svg").first).to_be_visible(
        timeout=180_000
    )
    reading = page.locator(
        "li", has_text=re.compile(r"^Moved 4 px: (ANN|CNN) \d+%, (ANN|CNN) \d+%")
    )
    expect(reading).to_have_count(1, timeout=30_000)
    for kind in ("ANN", "CNN"):
        expect(page.get_by_text(re.compile(rf"^{kind} predicts \d$"))).to_be_visible(timeout=30_000)
    settle(page)
    picture = page.get_by_test_id("stImage").locator("img")
    before = picture.get_attribute("src")
    page.get_by_role("slider", name="Move right (px)").focus()
    page.keyboard.press("End")  # as far right as it goes
    expect(page.get_by_test_id("stSliderThumbValue").first).to_have_text("8", timeout=30_000)
    expect(picture).not_to_have_attribute("src", before, timeout=30_000)
    for kind in ("ANN", "CNN"):
        expect(page.get_by_text(re.compile(rf"^{kind} predicts \d$"))).to_be_visible(timeout=30_000)


def test_the_handwriting_lesson_is_said_in_numbers_whichever_way_it_goes():
    from mnist_core.evaluation import Evaluation, TestDigits
    from mnist_core.robustness import handwriting_reading

    labels = np.repeat(np.arange(10), 30)  # 300 digits, 30 of each
    sources = tuple(["lyon"] * 150 + ["boston"] * 150)
    digits = TestDigits("class", "v1", np.zeros((300, 28, 28)), labels, ("ana",) * 300, sources)

    def reading(wrong: np.ndarray) -> Evaluation:
        predicted = np.where(wrong, (labels + 1) % 10, labels)
        return Evaluation(labels, np.eye(10)[predicted])

    ones_in_lyon = (labels == 1) & (np.arange(300) < 150)
    cnn = reading(ones_in_lyon)  # misreads every 1 (all written in lyon): 30 of 300
    ann = reading(ones_in_lyon | (labels == 9))  # and every 9 (boston's) too: 60
    said = handwriting_reading(digits, {"ann": ann, "cnn": cnn}, {"ann": 0.98, "cnn": 0.99})
    assert said[0] == "300 digits by 1 writer: CNN **90.0%**, ANN **80.0%**."
    assert "The ANN reads 98.0% of MNIST's test set: other people's handwriting costs it " \
        "**18.0 points**." in said  # fmt: skip
    assert "**The CNN reads it better**: it misreads 10 digits in 100, the ANN 20." in said
    assert "The CNN's hardest digits: **1** (0%), **0** (100%), **2** (100%)." in said
    assert "The ANN's hardest digits: **1** (0%), **9** (0%), **0** (100%)." in said
    assert said[-1] == "Hardest to read: the writers of lyon: ANN **80%**, CNN **80%**."
    even = handwriting_reading(digits, {"ann": cnn, "cnn": cnn}, {})
    assert "The two read it **about as well**." in even
