import base64
import io
import re

import numpy as np
from PIL import Image

from mnist_core.charts import (
    BAR_PIXELS,
    COLORS,
    Curves,
    accuracy_bars,
    confusion_heatmap,
    image_strip,
    probability_bars,
    run_curves,
    training_curves,
)
from mnist_core.jobs import default_job
from mnist_core.protocol import CurvePoint, JobStarted, Progressed, RunState


def points(n, value):
    return tuple(
        CurvePoint(
            epoch=i + 1,
            step=i,
            epochs_seen=i + 1,
            progress=0.1,
            elapsed=1.0,
            images_per_s=1.0,
            loss=value,
            accuracy=value,
            val_loss=value,
            val_accuracy=value,
        )
        for i in range(n)
    )


def test_training_curves_show_the_run_and_saved_models_to_compare():
    figure = training_curves(
        [Curves("CNN", "cnn", points(5, 0.9), points(2, 0.95))],
        "accuracy",
        saved=[Curves("ann-old (saved)", "ann", (), points(3, 0.97))],
    )
    names = [trace.name for trace in figure.data]
    assert names == ["ann-old (saved)", "CNN training", "CNN validation"]
    assert figure.data[0].opacity < 1 and figure.data[1].opacity in (None, 1)
    assert list(figure.data[2].y) == [0.95, 0.95]
    assert figure.layout.yaxis.tickformat == ".0%"


def test_image_strip_shows_each_image_at_its_size_with_its_caption():
    small = np.zeros((28, 28), np.float32)
    small[10:18, 12:16] = 1.0
    tall = np.full((300, 150), 255, np.uint8)  # uint8, larger than shown: shrunk, not sent whole
    html = image_strip([(small, "the input"), (tall, "cropped")], size=160)
    sources = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    pictures = [Image.open(io.BytesIO(base64.b64decode(source))) for source in sources]
    assert [p.size for p in pictures] == [(28, 28), (80, 160)]
    assert np.array_equal(np.asarray(pictures[0]) > 127, small > 0.5)
    assert np.asarray(pictures[1]).min() == 255
    shown = re.findall(r"width:(\d+)px;height:(\d+)px", html)
    assert shown == [("160", "160"), ("80", "160")]
    assert "image-rendering:pixelated" in html  # enlarged with crisp pixels, as MNIST is
    assert html.index("the input") < html.index("cropped")
    assert "a &lt;b&gt; &amp; c" in image_strip([(small, "a <b> & c")])  # captions as written


def test_probability_bars_highlight_the_most_likely_digit():
    probabilities = np.full(10, 0.02)
    probabilities[7] = 0.82
    html = probability_bars(probabilities, "ann")
    colors = re.findall(r"background:(#[0-9a-f]{6})", html)
    assert (
        len(colors) == 10
        and colors[7] == COLORS["ann"]
        and set(colors[:7] + colors[8:]) == {"#b0b0b0"}
    )
    heights = [int(h) for h in re.findall(r"height:(\d+)px;background", html)]
    assert heights[7] == round(0.82 * BAR_PIXELS) and heights[0] == round(0.02 * BAR_PIXELS)
    assert "82%" in html and "7: 82%" in html  # the label over the bar, and the accessible summary
    assert [int(d) for d in re.findall(r"<b[^>]*>(\d)</b>", html)] == list(range(10))


def test_a_run_draws_the_curves_of_the_jobs_that_have_begun():
    state = RunState.begin((default_job("ann"), default_job("cnn"))).apply(JobStarted(0))
    assert run_curves(state) == []  # nothing trained yet
    point = points(1, 0.5)[0]
    state = state.apply(Progressed(point, epoch_end=False)).apply(Progressed(point, epoch_end=True))
    assert run_curves(state) == [Curves("ANN", "ann", (point,), (point,))]


def test_confusion_heatmap_shows_counts_or_each_true_digits_shares():
    confusion = np.diag(np.full(10, 8))
    confusion[3, 5] = 2  # two 3s read as 5
    counts = confusion_heatmap(confusion, "counts").data[0]
    assert counts.z[3][5] == 2 and counts.text[3][5] == "2"
    shares = confusion_heatmap(confusion, "shares", by_row=True).data[0]
    assert shares.z[3][5] == 0.2 and shares.text[3][3] == "80%"


def test_accuracy_bars_give_a_second_model_of_a_kind_its_own_colour():
    values = np.linspace(0.9, 1.0, 10)
    figure = accuracy_bars({"a": ("ann", values), "b": ("ann", values), "c": ("cnn", values)})
    colors = [bar.marker.color for bar in figure.data]
    assert colors[0] == COLORS["ann"] and colors[2] == COLORS["cnn"] and len(set(colors)) == 3
    assert list(figure.data[0].x) == [str(d) for d in range(10)]
