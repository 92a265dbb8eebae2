"""The benchmark's smoke mode: tiny data, one seed, every measurement taken once."""

import os
import subprocess
import sys

from conftest import DATA, ROOT


def test_benchmark_smoke_mode_prints_every_row(tmp_path):
    result = subprocess.run(
        [sys.executable, "bench/benchmark.py", "--smoke", "--out", str(tmp_path / "table.md")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "MNIST_DATA": DATA, "MNIST_MODELS_DIR": str(tmp_path / "models")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for row in ("Ratio CNN / keras-io convnet", "Default ANN: test accuracy",
                "App training path / plain fit", "Inference, preprocessing + both models",
                "Peak RSS: training worker", "Cold start"):
        assert row in result.stdout, result.stdout
    cnn_on_page = next(line for line in result.stdout.splitlines() if "CNN from the Train page" in line)
    assert "s from Start to the result" in cnn_on_page, cnn_on_page  # trained on the sample there
    assert "machine:" in result.stdout and "data:" in result.stdout
    assert not (tmp_path / "table.md").exists()  # smoke runs do not overwrite the real table
