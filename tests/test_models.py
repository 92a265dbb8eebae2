import numpy as np
import pytest

from mnist_core.inference import predict
from mnist_core.models import (
    AnnConfig,
    CnnConfig,
    build_model,
    config_from_dict,
    config_to_dict,
    parse_layer_sizes,
)


def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_ann_is_dense_only():
    model = build_model(AnnConfig(hidden_units=(64, 32), dropout=0.1))
    types = layer_types(model)
    assert "Conv2D" not in types and types.count("Dense") == 3
    assert [layer.units for layer in model.layers if type(layer).__name__ == "Dense"] == [
        64,
        32,
        10,
    ]
    assert model.output_shape == (None, 10)


def test_cnn_batch_norm_and_dense_head_are_optional():
    plain = layer_types(build_model(CnnConfig(filters=(8,), batch_norm=False, dense_units=0)))
    assert "BatchNormalization" not in plain and plain.count("Dense") == 1
    normed = layer_types(build_model(CnnConfig(filters=(8, 16), batch_norm=True, dense_units=32)))
    assert normed.count("BatchNormalization") == 2 and normed.count("Dense") == 2


def test_augmentation_moves_training_digits_but_not_predictions():
    model = build_model(AnnConfig(hidden_units=(8,), augment=True))
    augment = [layer for layer in model.layers if type(layer).__name__.startswith("Random")]
    assert len(augment) == 3
    digit = np.zeros((1, 28, 28, 1), np.float32)
    digit[0, 8:20, 12:16] = 1.0
    moved = digit
    for layer in augment:
        moved = layer(moved, training=True)
    assert not np.allclose(np.asarray(moved), digit)  # training sees shifted/turned digits
    predictions = [predict(model, digit[0, ..., 0]) for _ in range(3)]
    assert all(np.allclose(p, predictions[0]) for p in predictions)  # the app sees no noise


def test_cnn_has_conv_blocks_and_pooling():
    model = build_model(
        CnnConfig(filters=(8, 16), kernel_size=5, pooling="average", dense_units=32)
    )
    types = layer_types(model)
    assert types.count("Conv2D") == 2 and types.count("AveragePooling2D") == 2
    assert [layer.kernel_size for layer in model.layers if type(layer).__name__ == "Conv2D"] == [
        (5, 5)
    ] * 2


@pytest.mark.parametrize(
    "optimizer, cls", [("adam", "Adam"), ("sgd", "SGD"), ("rmsprop", "RMSprop")]
)
def test_optimizers_and_learning_rate(optimizer, cls):
    model = build_model(AnnConfig(hidden_units=(16,), optimizer=optimizer, learning_rate=0.01))
    assert type(model.optimizer).__name__ == cls
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    if optimizer == "sgd":
        assert model.optimizer.momentum == pytest.approx(0.9)


def test_output_is_a_probability_distribution():
    model = build_model(CnnConfig(filters=(4,), dense_units=8))
    probabilities = np.asarray(model(np.random.rand(3, 28, 28, 1).astype("float32")))
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "config, message",
    [
        (AnnConfig(hidden_units=()), "layer sizes"),
        (AnnConfig(hidden_units=(0,)), "layer sizes"),
        (AnnConfig(dropout=1.0), "dropout"),
        (AnnConfig(optimizer="adagrad"), "optimizer"),
        (AnnConfig(learning_rate=0), "learning rate"),
        (AnnConfig(activation="swishy"), "activation"),
        (CnnConfig(filters=(8,) * 5), "at most 4 conv blocks"),
        (CnnConfig(kernel_size=4), "kernel size"),
        (CnnConfig(pooling="median"), "pooling"),
        (CnnConfig(dense_units=-1), "dense units"),
        (AnnConfig(schedule="sawtooth"), "schedule"),
        (AnnConfig(output_activation="relu"), "output activation"),
        (CnnConfig(loss="hinge"), "loss"),
        (AnnConfig(output_activation="tanh"), "use the mse loss"),
    ],
)
def test_impossible_hyper_parameters_are_refused(config, message):
    with pytest.raises(ValueError, match=message):
        build_model(config)


def test_config_round_trip_through_json_types():
    config = CnnConfig(filters=(16, 32), dropout=0.25)
    data = config_to_dict(config)
    data["filters"] = list(data["filters"])  # as JSON gives it back
    assert config_from_dict(data) == config


def test_parse_layer_sizes():
    assert parse_layer_sizes("512, 256") == (512, 256)
    assert parse_layer_sizes("64,") == (64,)
    with pytest.raises(ValueError, match="whole numbers"):
        parse_layer_sizes("64, lots")
    with pytest.raises(ValueError, match="at least one"):
        parse_layer_sizes(" ")
