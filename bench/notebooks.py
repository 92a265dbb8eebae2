"""The default ANN and CNN exported as notebooks and run on full MNIST, against the app's.

    MNIST_DATA=/path/to/mnist.npz .venv/bin/python -m bench.notebooks [--models-dir bench-models]

The app's defaults (``bench-default-*`` in the models folder, trained first where missing, as
``bench.handwriting`` does) are exported as ``python -m mnist_core export`` does and each
notebook is executed by Jupyter's own client, in a folder of its own, on the MNIST that
``MNIST_DATA`` names. The table gives both test accuracies, their difference (the target:
within 0.5 points) and the seconds each took; the exit status is 1 if a notebook misses it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat

from bench.handwriting import models
from mnist_core.notebooks import model_cells, model_export, notebook_text
from mnist_core.registry import ModelRegistry

TARGET_POINTS = 0.5


def run_notebook(path: Path) -> dict:
    """Execute the notebook at ``path`` in its folder; its last line, read as JSON."""
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=3600, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return json.loads(notebook.cells[-1].outputs[-1]["text"].strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default="bench-models")
    args = parser.parse_args(argv)
    if not os.environ.get("MNIST_DATA"):
        parser.error("set MNIST_DATA to the full mnist.npz: the notebooks read it too")
    registry = ModelRegistry(args.models_dir)
    entries = {k: v for k, v in models(registry, smoke=False).items() if k.startswith("default")}
    rows = []
    for label, entry in entries.items():
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{entry.name}.ipynb"
            path.write_text(notebook_text(model_cells(model_export(entry, registry))))
            started = time.perf_counter()
            result = run_notebook(path)
            seconds = time.perf_counter() - started
        points = 100 * (result["test_accuracy"] - entry.test_accuracy)
        rows.append((label, entry, result, points, seconds))
        print(f"{label}: app {entry.test_accuracy:.2%}, notebook {result['test_accuracy']:.2%}")
    print("\n| network | app: test accuracy | notebook: test accuracy | difference | parameters "
          "(app / notebook) | app: training s | notebook: whole run s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for label, entry, result, points, seconds in rows:
        print(
            f"| {label} | {entry.test_accuracy:.2%} | {result['test_accuracy']:.2%} | "
            f"{points:+.2f} pts | {entry.meta['params']:,} / {result['params']:,} | "
            f"{entry.meta['train_seconds']:.0f} | {seconds:.0f} |"
        )
    missed = [label for label, *_, points, _ in rows if abs(points) > TARGET_POINTS]
    if missed:
        print(f"\nmore than {TARGET_POINTS} points from the app: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
