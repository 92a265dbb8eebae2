import numpy as np

from mnist_core.charts import probability_bars, training_curves


def events(n, metric_value):
    return [{"epochs_seen": i + 1, "loss": metric_value, "accuracy": metric_value,
             "val_loss": metric_value, "val_accuracy": metric_value} for i in range(n)]


def test_training_curves_show_the_run_and_saved_models_to_compare():
    figure = training_curves([("cnn", events(5, 0.9), events(2, 0.95))], "accuracy",
                             saved=[("ann-old", "ann", events(3, 0.97))])
    names = [trace.name for trace in figure.data]
    assert names == ["ann-old (saved)", "CNN training", "CNN validation"]
    assert figure.data[0].opacity < 1 and figure.data[1].opacity in (None, 1)
    assert list(figure.data[2].y) == [0.95, 0.95]
    assert figure.layout.yaxis.tickformat == ".0%"


def test_probability_bars_highlight_the_most_likely_digit():
    probabilities = np.full(10, 0.02)
    probabilities[7] = 0.82
    figure = probability_bars(probabilities, "ann")
    colors = list(figure.data[0].marker.color)
    assert colors[7] != colors[0] and len(set(colors)) == 2
    assert figure.data[0].text[7] == "82%"
