"""Benchmark the defaults against plain Keras on this machine; print and save the table.

    MNIST_DATA=../shared/mnist/mnist.npz python -m bench.benchmark          # ~45 minutes
    python -m bench.benchmark --smoke                                       # ~1 minute
    MNIST_DATA=../shared/mnist/mnist.npz python -m bench.benchmark --serving-only  # ~5 minutes

Run it from the project root: ``bench`` is a package.

Measures: time to 99.0% (default CNN vs the keras-io "simple MNIST convnet") and to 98.0%
(default ANN vs a 512-512 dense net), raced seed by seed, the defaults' final accuracy
and seconds over several seeds, the app's training path against a plain ``model.fit``,
inference latency of one drawing, peak memory, the cold start of the app until the Draw
page answers, and both defaults trained from the Train page in Chromium (the browser on
the same cores).
Writes the table to docs/benchmarks.md (not in smoke mode), keeping its "## Notes" onwards.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
from keras import layers

from bench.browser import (
    CANVAS,
    browser_missing,
    chromium_page,
    draw,
    predictions,
    running_app,
    train_on_page,
)
from bench.synthetic_digits import DIGITS, render
from mnist_core.data import load_mnist, stratified_subset
from mnist_core.inference import predict
from mnist_core.jobs import default_job
from mnist_core.models import KINDS, sequential, to_input
from mnist_core.preprocessing import BRUSH_SIZE, preprocess_canvas
from mnist_core.registry import ModelRegistry
from mnist_core.training import evaluation_batches, split_data, train, training_batches
from mnist_core.training_queue import LocalTrainingQueue, Requester

ROOT = Path(__file__).resolve().parents[1]


class AccuracyClock(keras.callbacks.Callback):
    """Test accuracy four times an epoch, against training seconds (evaluations not counted)."""

    def __init__(self, test, stop_at: float | None = None, per_epoch: int = 4):
        super().__init__()
        self.test, self.stop_at, self.per_epoch = test, stop_at, per_epoch
        self.points: list[tuple[float, float]] = []

    def on_train_begin(self, logs=None):
        self.started, self.paused = time.perf_counter(), 0.0

    def on_train_batch_end(self, batch, logs=None):
        steps = self.params["steps"]
        if (batch + 1) % -(-steps // self.per_epoch) == 0 or batch + 1 == steps:
            self.measure()

    def measure(self):
        seconds = time.perf_counter() - self.started - self.paused
        before = time.perf_counter()
        accuracy = self.model.evaluate(self.test, verbose=0)[1]
        self.paused += time.perf_counter() - before
        self.points.append((seconds, accuracy))
        if self.stop_at is not None and accuracy >= self.stop_at:
            self.model.stop_training = True

    def time_to(self, accuracy: float) -> float | None:
        return next((s for s, a in self.points if a >= accuracy), None)


def keras_io_convnet():
    """keras-io examples/vision/mnist_convnet.py, as published."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )


def dense_512_512():
    """The classic dense baseline: two hidden layers of 512, dropout 0.2."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Flatten(),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(10, activation="softmax"),
        ]
    )


BASELINE_BATCH = 128  # the plain Keras models train as the issue measured them


def plain_fit(model, data, job, callbacks=(), epochs=None, app_pipeline=False):
    """``model.fit`` on the same split as the app's training, Adam at Keras's default rate.

    The arrays go straight into ``fit``, as keras-io does; with ``app_pipeline``, through
    the app's input pipeline instead: a race without Keras's stalls between epochs, and
    a baseline that isolates what the app's progress reporting costs.
    """
    (x, y), validation = split_data(data, job.training)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    batch_size = job.training.batch_size
    inputs = (
        {
            "x": training_batches(x, y, batch_size, job.training.seed),
            "shuffle": False,
            "validation_data": evaluation_batches(*validation),
        }
        if app_pipeline
        else {"x": x, "y": y, "batch_size": batch_size, "validation_data": validation}
    )
    started = time.perf_counter()
    model.fit(**inputs, epochs=epochs or job.training.epochs, callbacks=list(callbacks), verbose=0)
    return time.perf_counter() - started


def untimed_cleanup():
    """Free earlier runs' Keras pipelines now: tearing one down waits for its tf.data
    autotuning thread to wake up, which stalled the next timed run by up to 30 s."""
    gc.collect()


def race(data, kind, baseline, target, max_epochs, job_changes, seeds, models_dir):
    """Time to ``target`` test accuracy: the default ``kind`` against ``baseline``, seed by seed.

    Each seed trains the three contestants back to back (the default, the baseline as
    published, the baseline fed by the app's pipeline), so that the machine's speed, which
    drifts by 10-50% from minute to minute, weighs on all three alike.
    """
    untimed_cleanup()
    test = evaluation_batches(to_input(data.x_test), data.y_test)
    runs, baseline_points = [], None
    for seed in seeds:
        clock = AccuracyClock(test)
        entry = train(
            default_job(kind, seed=seed, models_dir=models_dir, **job_changes),
            data,
            callbacks=[clock],
        )
        run = {
            "seed": seed,
            "accuracy": entry.meta["test_accuracy"],
            "seconds": entry.meta["train_seconds"] - clock.paused,
            "to_target": clock.time_to(target),
        }
        baseline_job = default_job(kind, seed=seed, **{**job_changes, "batch_size": BASELINE_BATCH})
        for name, app_pipeline in (("published", False), ("piped", True)):
            keras.utils.set_random_seed(seed)
            clock = AccuracyClock(test, stop_at=target)
            plain_fit(baseline(), data, baseline_job, [clock], max_epochs, app_pipeline)
            run[name] = clock.time_to(target)
            baseline_points = baseline_points or clock.points
        runs.append(run)
        print(f"  seed {seed}: {run}", flush=True)
    return runs, baseline_points


def overhead(data, job_changes, repeats):
    """The app's path (worker process, progress events, one-cycle) vs a plain fit of the same.

    The default ANN: its batches are the quickest, so per-batch costs weigh the most.
    """
    untimed_cleanup()
    job = default_job("ann", **job_changes)
    app_seconds, plain_seconds = [], []
    with tempfile.TemporaryDirectory() as models_dir:
        queue = LocalTrainingQueue(Path(models_dir))
        for _ in range(repeats):
            job = replace(job, models_dir=models_dir, data_path=data.reference)
            run = queue.submit([job], Requester("benchmark", teacher=True))
            while not run.state.ended:
                time.sleep(0.2)
            state = run.state
            if state.status != "finished":
                raise RuntimeError(f"training run ended {state.status}: {state.error}")
            app_seconds.append(state.saved[0].train_seconds)
            keras.utils.set_random_seed(0)
            plain_seconds.append(plain_fit(sequential(job.model), data, job, app_pipeline=True))
        worker_peak = peak_rss_mb(queue.worker_pids[0])
        queue.shutdown()
    return min(app_seconds), min(plain_seconds), worker_peak


def latency(models, repeats):
    """Preprocessing plus both models on one drawing, per call, in milliseconds."""
    drawings = [render(strokes, width=BRUSH_SIZE) for strokes in DIGITS.values()]
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        image = preprocess_canvas(drawings[i % len(drawings)]).image
        for model in models.values():
            predict(model, image)
        times.append((time.perf_counter() - started) * 1000)
    times = times[len(drawings) :]  # the first calls warm up
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a live process (Linux's VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def cold_start(models_dir: str, data_reference: str):
    """Seconds from ``streamlit run app.py`` to both predictions of a drawn 7; server peak RSS."""
    untimed_cleanup()
    started = time.perf_counter()
    with running_app(models_dir, data_reference) as (url, server), chromium_page() as page:
        page.goto(f"{url}/draw")
        page.locator(CANVAS).wait_for(timeout=120_000)
        draw(page, DIGITS[7])
        predictions(page, "cold start, a drawn 7", timeout=120)
        return time.perf_counter() - started, peak_rss_mb(server.pid)


def page_training(
    data_reference: str, kinds: tuple[str, ...] = ("cnn", "ann")
) -> dict[str, tuple[float, float, float]]:
    """The defaults trained from the Train page of a fresh app, CNN first, as a class would."""
    untimed_cleanup()
    with (
        tempfile.TemporaryDirectory(prefix="mnist-bench-page-") as models_dir,
        running_app(models_dir, data_reference) as (url, _),
        chromium_page() as page,
    ):
        return {kind: train_on_page(page, url, kind) for kind in kinds}


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024**2
    import tensorflow as tf

    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM; Python "
        f"{platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}"
    )


def spread(runs: list[dict], key: str) -> str:
    """Mean (min, max) of ``key`` over the seeds' runs; which seeds never got there."""
    missing = [r["seed"] for r in runs if r[key] is None]
    if missing:
        return f"not reached (seed {', '.join(map(str, missing))})"
    values = [r[key] for r in runs]
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} (min {min(values):.4g}, max {max(values):.4g})"


def ratio(runs: list[dict], baseline: str) -> str:
    """The default's mean time to the target over the baseline's; the seeds' own ratios."""
    pairs = [(r["to_target"], r[baseline]) for r in runs]
    if not all(ours and theirs for ours, theirs in pairs):
        return "n/a"
    mean = statistics.mean(o for o, _ in pairs) / statistics.mean(t for _, t in pairs)
    per_seed = sorted(o / t for o, t in pairs)
    return f"{mean:.2f}" + (
        f" (seeds {per_seed[0]:.2f}-{per_seed[-1]:.2f})" if len(pairs) > 1 else ""
    )


def write_report(out: Path, report: str) -> None:
    """Write ``report`` to ``out``, keeping the notes written by hand (from "## Notes" on)."""
    notes = out.read_text().partition("\n## Notes")[1:] if out.exists() else ()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report + "".join(notes))


def serving_rows(data, changes, models_dir: str, smoke: bool, skip_browser: str | None) -> list:
    """The rows the app's structure can move, not its models: the training path's overhead,
    inference latency, memory and cold start, serving the newest models in ``models_dir``."""
    print("training path vs plain fit", flush=True)
    app_seconds, plain_seconds, worker_peak = overhead(data, changes, 1 if smoke else 3)
    registry = ModelRegistry(models_dir)
    models = {kind: registry.load(registry.newest(kind)) for kind in KINDS}
    p50, p95 = latency(models, 60 if smoke else 500)
    skipped = f"skipped: {skip_browser}"
    start_seconds, server_peak = (
        (None, None) if skip_browser else cold_start(models_dir, data.reference)
    )
    return [
        (
            "App training path / plain fit (default ANN, best of 3)",
            f"{app_seconds / plain_seconds:.3f} ({app_seconds:.1f} s / {plain_seconds:.1f} s)",
            "<= 1.05",
        ),
        (
            "Inference, preprocessing + both models: p50 / p95, ms",
            f"{p50:.1f} / {p95:.1f}",
            "<= 10 / 20",
        ),
        ("Peak RSS: training worker, MB", f"{worker_peak:.0f}", ""),
        (
            "Peak RSS: app server serving both models, MB",
            f"{server_peak:.0f}" if server_peak else skipped,
            "",
        ),
        (
            "Cold start: `streamlit run app.py` to both predictions on Draw, s",
            f"{start_seconds:.1f} s" if start_seconds else skipped,
            "",
        ),
    ]


def print_rows(rows: list) -> None:
    width = max(len(r[0]) for r in rows)
    print("\n" + "\n".join(f"{name:{width}}  {value}  {target}" for name, value, target in rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny data, one seed: checks it runs")
    parser.add_argument(
        "--serving-only",
        action="store_true",
        help="only the rows a change to the app's structure can move (overhead, latency, "
        "memory, cold start), on the defaults trained once; prints, writes no table",
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()

    data = load_mnist()
    if args.smoke:
        x, y = stratified_subset(data.x_train, data.y_train, 2000, seed=0)
        data = replace(
            data, x_train=x, y_train=y, x_test=data.x_test[:500], y_test=data.y_test[:500]
        )
    seeds = range(1 if args.smoke else args.seeds)
    changes = {"epochs": 1, "train_size": 1800} if args.smoke else {}
    max_epochs = 1 if args.smoke else 15
    description = machine()
    print(f"machine: {description}\ndata: {data.description}", flush=True)
    skip_browser = browser_missing()
    skipped = f"skipped: {skip_browser}"
    if skip_browser:
        print(f"the measures in a browser will be {skipped}", flush=True)

    models_dir = tempfile.mkdtemp(prefix="mnist-bench-")
    if args.serving_only:
        for kind in KINDS:
            train(default_job(kind, models_dir=models_dir, **changes), data)
        print_rows(serving_rows(data, changes, models_dir, args.smoke, skip_browser))
        shutil.rmtree(models_dir)
        return 0
    print("CNN: time to 99.0% test accuracy", flush=True)
    cnn_runs, convnet_points = race(
        data, "cnn", keras_io_convnet, 0.99, max_epochs, changes, seeds, models_dir
    )
    print("ANN: time to 98.0% test accuracy", flush=True)
    ann_runs, dense_points = race(
        data, "ann", dense_512_512, 0.98, max_epochs, changes, seeds, models_dir
    )
    # the defaults the races trained
    serving = serving_rows(data, changes, models_dir, args.smoke, skip_browser)
    shutil.rmtree(models_dir)
    print("defaults through the Train page", flush=True)
    # The smoke run checks the path with the quicker network only.
    on_page = {} if skip_browser else (
        page_training("sample", ("ann",)) if args.smoke else page_training(data.reference)
    )  # fmt: skip

    def page_result(kind):
        if kind not in on_page:
            return skipped if skip_browser else "skipped in a smoke run"
        accuracy, shown, to_result = on_page[kind]
        return f"{accuracy:.4f} in {shown:.0f} s ({to_result:.1f} s from Start to the result)"

    rows = [
        ("Time to 99.0%: default CNN, s", spread(cnn_runs, "to_target"), ""),
        ("Time to 99.0%: keras-io simple convnet, s", spread(cnn_runs, "published"), ""),
        ("Ratio CNN / keras-io convnet", ratio(cnn_runs, "published"), "<= 0.33"),
        (
            "Same convnet fed by the app's input pipeline: time, s / ratio",
            f"{spread(cnn_runs, 'piped')} / {ratio(cnn_runs, 'piped')}",
            "",
        ),
        ("Time to 98.0%: default ANN, s", spread(ann_runs, "to_target"), ""),
        ("Time to 98.0%: dense 512-512, s", spread(ann_runs, "published"), ""),
        ("Ratio ANN / dense 512-512", ratio(ann_runs, "published"), ""),
        (
            "Same dense net fed by the app's input pipeline: time, s / ratio",
            f"{spread(ann_runs, 'piped')} / {ratio(ann_runs, 'piped')}",
            "",
        ),
        ("Default CNN: test accuracy", spread(cnn_runs, "accuracy"), ">= 0.993"),
        ("Default CNN: training seconds", spread(cnn_runs, "seconds"), "<= 60"),
        ("Default ANN: test accuracy", spread(ann_runs, "accuracy"), ">= 0.983"),
        ("Default ANN: training seconds", spread(ann_runs, "seconds"), "<= 20"),
        *serving,
        (
            "Default CNN from the Train page (Chromium on the same cores): accuracy, seconds",
            page_result("cnn"),
            ">= 0.993, <= 60",
        ),
        (
            "Default ANN from the Train page: accuracy, seconds",
            page_result("ann"),
            ">= 0.983, <= 20",
        ),
    ]
    table = "\n".join(
        ["| Measure | Result | Target |", "|---|---|---|"]
        + [f"| {name} | {value} | {target} |" for name, value, target in rows]
    )
    print_rows(rows)
    if not args.smoke:
        curves = "\n".join(
            [
                f"- keras-io convnet (seed 0), (seconds, test accuracy) four times an epoch: "
                f"{[(round(s, 1), round(a, 4)) for s, a in convnet_points]}",
                f"- dense 512-512 (seed 0): "
                f"{[(round(s, 1), round(a, 4)) for s, a in dense_points]}",
            ]
        )
        write_report(
            Path(args.out),
            (
                f"# Benchmarks\n\nWritten by `python -m bench.benchmark` on "
                f"{time.strftime('%Y-%m-%d')}.\n\n- Machine: {description}\n"
                f"- Data: {data.description}\n"
                f"- Seeds: {len(seeds)} runs of each default and each baseline, seed by seed "
                f"(mean, min, max)\n\n{table}\n\n{curves}\n"
            ),
        )
        print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
