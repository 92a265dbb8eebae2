import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_core.jobs import TrainingConfig, TrainingJob
from mnist_core.models import AnnConfig
from mnist_core.training import train

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "mnist_core", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_train_prints_json_as_last_line_and_saves(tmp_path):
    result = cli(
        "train",
        "--model",
        "ann",
        "--epochs",
        "1",
        "--train-size",
        "500",
        "--data",
        "sample",
        "--models-dir",
        str(tmp_path),
        "--name",
        "cli test",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["name"] == "cli-test" and summary["kind"] == "ann"
    assert 0.3 < summary["test_accuracy"] <= 1 and summary["train_seconds"] > 0
    assert summary["epochs"] == 1 and summary["train_images"] == 500
    assert (tmp_path / "cli-test.keras").is_file()
    assert "100%" in result.stderr  # the progress bar went to stderr
    listing = cli("list", "--models-dir", str(tmp_path))
    assert "cli-test" in listing.stdout and "ANN" in listing.stdout


@pytest.mark.parametrize(
    "args, reason",
    [
        (["train", "--model", "rnn"], "invalid choice: 'rnn'"),
        (["train"], "--model"),
        (["train", "--model", "cnn", "--epochs", "0"], "epochs must be 1-1000"),
        (["train", "--model", "cnn", "--batch-size", "-5"], "batch size must be"),
        (
            ["train", "--model", "ann", "--train-size", "10"],
            "training-set size must be at least 100",
        ),
        (["train", "--model", "ann", "--learning-rate", "5000"], "learning rate must be"),
        (["train", "--model", "ann", "--data", "/no/such.npz"], "/no/such.npz: no such file"),
        (["train", "--model", "ann", "--epochs", "two"], "invalid int value"),
    ],
)
def test_bad_arguments_exit_non_zero_with_one_line(args, reason):
    result = cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], result.stderr


def test_list_with_no_models(tmp_path):
    result = cli("list", "--models-dir", str(tmp_path / "empty"))
    assert result.returncode == 0 and "no models yet" in result.stdout


def test_evaluate_prints_json_as_its_last_line(tmp_path, small_mnist):
    job = TrainingJob(
        AnnConfig(hidden_units=(32,)),
        TrainingConfig(epochs=1),
        name="quick",
        models_dir=str(tmp_path),
    )
    train(job, small_mnist)
    result = cli("evaluate", "quick", "--models-dir", str(tmp_path), "--data", "sample")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["name"] == "quick"
    confusion = np.array(summary["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == summary["test_images"] == 1000
    assert summary["test_accuracy"] == pytest.approx(np.trace(confusion) / 1000)
    assert len(summary["per_class_accuracy"]) == 10 and summary["test_loss"] > 0
    assert "100% of the test set" in result.stderr


@pytest.mark.parametrize(
    "name, setup, reason",
    [
        ("nobody", None, "no model named 'nobody' in"),
        ("broken", "broken", "broken.keras cannot be loaded"),
    ],
)
def test_evaluate_says_what_is_wrong_in_one_line(tmp_path, name, setup, reason):
    if setup:
        (tmp_path / f"{setup}.keras").write_bytes(b"not a keras archive")
        meta = {"kind": "ann", "config": {}, "test_accuracy": 0.5, "created": "2026-01-01"}
        (tmp_path / f"{setup}.json").write_text(json.dumps(meta))
    result = cli("evaluate", name, "--models-dir", str(tmp_path), "--data", "sample")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and reason in errors[0], result.stderr  # (TensorFlow logs too)
    assert result.stderr.strip().splitlines()[-1] == errors[0]


def test_evaluate_on_a_drawings_set_adds_each_writer_s_accuracy(drawings_folder, trained_models):
    from tests.test_drawings import line

    drawings = drawings_folder
    cnn = next(trained_models.glob("cnn-*.json")).stem
    args = ["evaluate", cnn, "--models-dir", str(trained_models), "--drawings", "class-3b"]
    result = cli(*args, "--drawings-dir", str(drawings))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["n"] == 20 and np.array(summary["confusion"]).sum() == 20
    assert list(summary["per_writer"]) == ["ana", "ben"]
    right = np.trace(np.array(summary["confusion"]))
    assert summary["test_accuracy"] == pytest.approx(right / 20)
    assert np.mean(list(summary["per_writer"].values())) == pytest.approx(right / 20)
    assert summary["test_accuracy"] >= 0.8  # the bench's own strokes: a sanity check only
    (drawings / "bad.jsonl").write_text(line(3) + "\n" + '{"digit": 3}')
    bad = cli("evaluate", cnn, "--models-dir", str(trained_models), "--drawings", "bad",
              "--drawings-dir", str(drawings))  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "error: bad.jsonl: line 2: no 'writer' or 'strokes'. Nothing of it was used."
    )
