"""How well the models read pen-stroke drawings, brush by brush, and how fast.

    MNIST_DATA=/path/to/mnist.npz .venv/bin/python -m bench.pen_strokes [--models-dir DIR]

Loads the newest ANN and CNN from the models directory (trains quick ones if there are
none), draws random digits with several brushes as the canvas renders them, and prints
both models' accuracy with the app's preprocessing ("new") and with the plain MNIST
recipe without re-drawn strokes ("old"), then the latency of preprocessing plus both
models for one drawing, as the Draw page runs them. ``--smoke`` runs a tiny version.
Run it from the project root: ``bench`` is a package.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.browser import (
    browser_missing,
    chromium_page,
    clear,
    clear_of_toolbar,
    draw,
    open_draw_page,
    running_app,
    shown_predictions,
)
from bench.synthetic_digits import make_set, random_digit
from mnist_core.data import load_mnist
from mnist_core.inference import predict
from mnist_core.models import INPUT_SHAPE, KINDS
from mnist_core.preprocessing import BRUSH_SIZE, ImageError, Preprocessed, preprocess_canvas
from mnist_core.registry import ModelRegistry


def load_models(registry: ModelRegistry, smoke: bool, augment: bool = False) -> dict:
    """The newest model of each kind, training the missing ones first."""
    missing = [kind for kind in KINDS if registry.newest(kind) is None]
    if missing:
        from mnist_core.jobs import default_job, quick_jobs
        from mnist_core.training import train

        data = load_mnist()
        print(f"training {', '.join(missing)} on {data.description}")
        models_dir = str(registry.root)
        jobs = (
            [
                default_job(kind, epochs=1, train_size=1000, models_dir=models_dir)
                for kind in missing
            ]
            if smoke
            else quick_jobs(missing, models_dir=models_dir, augment=augment)
        )
        for job in jobs:
            train(job, data)
    entries = {kind: registry.newest(kind) for kind in KINDS}
    for entry in entries.values():
        print(f"{entry.kind.upper()}: {entry.label}")
    return {kind: registry.load(entry) for kind, entry in entries.items()}


def read_canvas(rgba: np.ndarray, redraw: bool) -> Preprocessed | None:
    """The drawing as the networks see it, or ``None`` if the app would read no digit."""
    try:
        return preprocess_canvas(rgba, redraw_strokes=redraw)
    except ImageError:
        return None


def accuracy(
    models: dict, canvases: np.ndarray, labels: np.ndarray, redraw: bool
) -> dict[str, float]:
    """Share of drawings each model reads right; a drawing read as no digit counts wrong."""
    results = [read_canvas(rgba, redraw) for rgba in canvases]
    read = np.array([r is not None for r in results])
    batch = np.stack(
        [r.image if r is not None else np.zeros(INPUT_SHAPE[:2], np.float32) for r in results]
    )[..., None]
    scores = {}
    for kind, model in models.items():
        guesses = np.asarray(model.predict_on_batch(batch)).argmax(axis=1)
        scores[kind] = float(np.mean((guesses == labels) & read))
    return scores


def predict_all(models: dict, image: np.ndarray) -> None:
    for model in models.values():
        predict(model, image)


def latency(models: dict, canvases: np.ndarray) -> np.ndarray:
    """Milliseconds for preprocessing plus both models, drawing by drawing."""
    predict_all(models, preprocess_canvas(canvases[0]).image)  # warm up
    times = []
    for rgba in canvases:
        started = time.perf_counter()
        drawing = preprocess_canvas(rgba)
        if drawing is not None:
            predict_all(models, drawing.image)
        times.append(time.perf_counter() - started)
    return np.array(times) * 1000


def browser_latency(models_dir: str, count: int, seed: int) -> tuple[np.ndarray, int]:
    """Milliseconds from the last mouse-up of a drawing until the run it starts has put both
    predictions (and the rest of the page) on screen, for ``count`` random digits drawn
    with real mouse strokes; and how many the CNN read."""
    rng = np.random.default_rng(seed)
    times, right = [], 0
    with running_app(models_dir, load_mnist().reference) as (url, _), chromium_page() as page:
        open_draw_page(page, url, timeout_ms=120_000)
        for digit in rng.integers(0, 10, count):
            times.append(draw(page, clear_of_toolbar(random_digit(rng, int(digit)))))
            right += shown_predictions(page).get("CNN") == digit
            clear(page)
    return np.array(times), right


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", help="default: $MNIST_MODELS_DIR or ./models")
    parser.add_argument("--per-digit", type=int, default=50, help="drawings per digit and brush")
    parser.add_argument("--brushes", type=int, nargs="+", default=[10, 16, 24, 30, 40])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--augment",
        action="store_true",
        help="train missing quick models with augmentation (to compare)",
    )
    parser.add_argument(
        "--browser",
        type=int,
        default=0,
        metavar="N",
        help="also draw N digits in the real app and time mouse-up to predictions",
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny, quick run (for tests)")
    args = parser.parse_args(argv)
    if args.browser and (missing := browser_missing()):
        parser.error(f"--browser: {missing}")
    per_digit, brushes = (2, [10, 40]) if args.smoke else (args.per_digit, args.brushes)

    models = load_models(ModelRegistry(args.models_dir), args.smoke, args.augment)
    print(f"\n{per_digit * 10} drawings per brush; accuracy with new / old preprocessing")
    print("brush    CNN new  CNN old    ANN new  ANN old")
    for brush in brushes:
        canvases, labels = make_set(per_digit, brush, seed=args.seed + brush)
        new = accuracy(models, canvases, labels, redraw=True)
        old = accuracy(models, canvases, labels, redraw=False)
        print(
            f"{brush:5}    {new['cnn']:7.1%}  {old['cnn']:7.1%}    "
            f"{new['ann']:7.1%}  {old['ann']:7.1%}",
            flush=True,
        )

    canvases, _ = make_set(2 if args.smoke else 20, BRUSH_SIZE, seed=args.seed)
    times = latency(models, canvases)
    print(
        f"\npreprocess_canvas + both models, one drawing ({len(times)} drawings): "
        f"p50 {np.percentile(times, 50):.1f} ms, p95 {np.percentile(times, 95):.1f} ms"
    )

    if args.browser:
        times, right = browser_latency(
            str(ModelRegistry(args.models_dir).root.resolve()), args.browser, args.seed
        )
        print(
            f"in the browser, last mouse-up to both predictions ({len(times)} drawings, CNN read "
            f"{right}): p50 {np.percentile(times, 50):.0f} ms, "
            f"p95 {np.percentile(times, 95):.0f} ms"
        )


if __name__ == "__main__":
    main()
