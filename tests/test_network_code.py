"""The code the app shows for a network builds the network the app trains, and its
one-cycle schedule is the app's, step by step."""

import pytest

from mnist_core.jobs import default_job
from mnist_core.models import build_model
from mnist_core.network_code import network_code
from mnist_core.training import one_cycle


def run(code: str) -> dict:
    namespace: dict = {}
    exec(compile(code.replace("model.summary()", ""), "<shown code>", "exec"), namespace)  # noqa: S102
    return namespace


@pytest.mark.parametrize(
    "kind, settings",
    [
        ("ann", {}),
        ("cnn", {}),
        ("cnn", {"augment": True, "dense_units": 64, "pooling": "average", "optimizer": "sgd"}),
        ("ann", {"loss": "mse", "output_activation": "sigmoid", "schedule": "constant"}),
    ],
)
def test_the_shown_code_builds_the_app_s_network(kind, settings):
    job = default_job(kind, train_size=2000, **settings)
    shown = run(network_code(job))["model"]
    app = build_model(job.model)
    assert [type(layer).__name__ for layer in shown.layers] == [
        type(layer).__name__ for layer in app.layers
    ]
    assert shown.count_params() == app.count_params()
    assert type(shown.optimizer).__name__ == type(app.optimizer).__name__


def test_the_shown_one_cycle_is_the_app_s():
    job = default_job("ann", epochs=5)  # all 55,000 training images
    steps = 5 * -(-55_000 // job.training.batch_size)
    schedule = run(network_code(job))["one_cycle_schedule"](job.model.learning_rate, steps)
    for step in (0, 5, steps // 5, steps // 2, steps - 1):
        expected = one_cycle(step / steps, job.model.learning_rate)
        assert float(schedule(step)) == pytest.approx(expected, rel=0.01, abs=1e-6)


def test_a_name_with_quotes_or_code_never_reaches_the_code():
    job = default_job("ann", name='x"); import os; os.remove("y')
    assert "import os" not in network_code(job)


def test_a_saved_model_s_code_or_why_there_is_none(trained_models):
    from mnist_core.network_code import saved_job
    from mnist_core.registry import ModelRegistry

    entry = ModelRegistry(trained_models).newest("cnn")
    assert "layers.Conv2D" in network_code(saved_job(entry.meta))
    with pytest.raises(ValueError, match="uploaded, not trained here"):
        saved_job({"kind": "cnn", "config": {}, "imported": True})
    with pytest.raises(ValueError, match="a version of the app this one cannot read"):
        saved_job({"config": {"kind": "rnn"}})
