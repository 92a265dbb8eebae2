import json
import subprocess
import sys
from pathlib import Path

import pytest

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
        (["train", "--model", "ann", "--learning-rate", "5"], "learning rate must be"),
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
