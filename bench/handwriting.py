"""How the default and quick models read real people's handwriting, by writers they never saw.

    MNIST_DATA=/path/to/mnist.npz .venv/bin/python -m bench.handwriting \\
        [--drawings ../shared/handwriting/unipen-dev.jsonl.gz] [--models-dir DIR] [--browser N]

Splits the drawings file by writer (half to choose with, half held out; no writer in both),
trains the default ANN and CNN and the Draw page's quick models into the models folder
unless they are there already (``bench-default-ann``, ...), and prints each one's accuracy
on the held-out writers, overall, per source and per digit, beside its MNIST test accuracy.
Every digit is drawn on the canvas and read as the Draw page reads it
(``drawings.seen_by_networks``). ``--browser N`` draws N held-out digits with real mouse
strokes into the Draw page in Chromium, served the default models, and compares what the
page reads with the offline reading of the very same strokes, with the time from mouse-up to
both predictions. ``--smoke`` runs a tiny version (for the tests). Run it from the project
root: ``bench`` is a package.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

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
from mnist_core.data import NUM_CLASSES, load_mnist
from mnist_core.drawings import Drawing, read_drawings, seen_by_networks, writer_split
from mnist_core.evaluation import evaluate_inputs
from mnist_core.inference import predict
from mnist_core.jobs import default_job, quick_jobs
from mnist_core.models import KINDS
from mnist_core.preprocessing import CANVAS_SIZE, ImageError, preprocess_canvas
from mnist_core.registry import ModelNotFound, ModelRegistry
from mnist_core.strokes import placed, render

DEVELOPMENT_SET = Path(__file__).resolve().parents[2] / "shared/handwriting/unipen-dev.jsonl.gz"
HELD_OUT_SHARE = 0.5


def models(registry: ModelRegistry, smoke: bool) -> dict[str, object]:
    """The benchmark's models by name ("default ANN", ...), trained first where missing."""
    from mnist_core.training import train

    jobs = {f"default {kind.upper()}": default_job(kind) for kind in KINDS}
    jobs |= {f"quick {job.kind.upper()}": job for job in quick_jobs(list(KINDS))}
    data = None
    entries = {}
    for label, job in jobs.items():
        name = "bench-" + label.replace(" ", "-").lower()
        try:
            entries[label] = registry.get(name)
        except ModelNotFound:
            data = data or load_mnist()
            if smoke:
                job = replace(job, training=replace(job.training, epochs=1, train_size=1000))
            job = replace(job, name=name, models_dir=str(registry.root), data_path=data.reference)
            print(f"training {label} on {data.description}", flush=True)
            entries[label] = train(job, data)
    return entries


def accuracy_table(entries: dict, drawings: list[Drawing], seed: int) -> dict[str, np.ndarray]:
    """Each model's right/wrong on ``drawings``, printed overall, per source, per digit."""
    seen = seen_by_networks(drawings, seed)
    labels = np.array([d.digit for d in drawings])
    sources = np.array([d.source or "unknown" for d in drawings])
    right = {}
    for label, entry in entries.items():
        model = ModelRegistry(entry.model_path.parent).load(entry)
        result = evaluate_inputs(model, seen.images[..., None], labels)
        right[label] = (result.predicted == labels) & ~seen.unread
    names = sorted(set(sources), key=lambda s: -(sources == s).sum())
    print(f"{'':14}{'all':>7}  {'MNIST':>6}  " + " ".join(f"{s:>5}" for s in names), end="")
    print("  " + " ".join(f"{d:>4}" for d in range(NUM_CLASSES)))
    print(f"{'digits':14}{len(labels):7,}  {'':6}  " + " ".join(
        f"{(sources == s).sum():5}" for s in names
    ))  # fmt: skip
    for label, ok in right.items():
        by_source = " ".join(f"{ok[sources == s].mean():5.1%}"[:5] for s in names)
        by_digit = " ".join(f"{ok[labels == d].mean():4.0%}" for d in range(NUM_CLASSES))
        mnist = entries[label].test_accuracy
        print(f"{label:14}{ok.mean():7.2%}  {mnist:6.2%}  {by_source}  {by_digit}", flush=True)
    return right


def browser_replay(entries: dict, drawings: list[Drawing], seed: int) -> None:
    """The default models in the real Draw page, on real mouse strokes of ``drawings``."""
    with tempfile.TemporaryDirectory() as folder:  # the page serves the newest: these only
        served = {}
        for kind in KINDS:
            entry = entries[f"default {kind.upper()}"]
            for suffix in (".keras", ".json"):
                shutil.copy2(entry.model_path.with_suffix(suffix), Path(folder))
            served[kind] = ModelRegistry(folder).load(ModelRegistry(folder).get(entry.name))
        rng = np.random.default_rng(seed)
        agree = right_page = right_offline = 0
        times = []
        with running_app(folder, load_mnist().reference) as (url, _), chromium_page() as page:
            open_draw_page(page, url, timeout_ms=120_000)
            for number, drawing in enumerate(drawings, start=1):
                pixels = placed(drawing.strokes, rng)
                strokes = clear_of_toolbar([(s / CANVAS_SIZE).tolist() for s in pixels])
                offline = _offline(served, strokes)
                times.append(draw(page, strokes))
                on_page = shown_predictions(page)
                agree += on_page == offline
                right_page += on_page.get("CNN") == drawing.digit
                right_offline += offline.get("CNN") == drawing.digit
                clear(page)
                if number % 20 == 0:
                    print(f"  {number} drawn", flush=True)
        count = len(drawings)
        print(
            f"browser: {count} held-out digits drawn with the mouse: CNN reads "
            f"{right_page / count:.0%} on the page, {right_offline / count:.0%} offline; both "
            f"networks' readings the same for {agree}/{count}; mouse-up to both predictions "
            f"median {np.median(times):.0f} ms, p95 {np.percentile(times, 95):.0f} ms"
        )


def _offline(models: dict, strokes) -> dict[str, int]:
    """What the page would show for ``strokes`` (canvas fractions), read here."""
    rgba = render([np.asarray(s) * CANVAS_SIZE for s in strokes])
    try:
        drawing = preprocess_canvas(rgba)
    except ImageError:
        return {}
    return {kind.upper(): int(predict(m, drawing.image).argmax()) for kind, m in models.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drawings", default=str(DEVELOPMENT_SET), help="a drawings file")
    parser.add_argument("--models-dir", default="bench-models", help="default: ./bench-models")
    parser.add_argument("--seed", type=int, default=0, help="the writer split's and placing's")
    parser.add_argument("--browser", type=int, default=0, metavar="N", help="draw N in Chromium")
    parser.add_argument("--smoke", action="store_true", help="a tiny, quick run (for tests)")
    args = parser.parse_args(argv)
    if args.browser and (missing := browser_missing()):
        parser.error(f"--browser: {missing}")
    drawings = read_drawings(args.drawings).drawings
    chosen, held_out = writer_split(drawings, 1 - HELD_OUT_SHARE, args.seed)
    entries = models(ModelRegistry(args.models_dir), args.smoke)
    writers = len({drawings[i].writer for i in held_out})
    print(f"\nheld-out writers ({writers}), accuracy:")
    accuracy_table(entries, [drawings[i] for i in held_out], args.seed)
    print(f"\nthe writers to choose with ({len(chosen):,} digits):")
    accuracy_table(entries, [drawings[i] for i in chosen], args.seed)
    if args.browser:
        picks = np.random.default_rng(args.seed).choice(held_out, args.browser, replace=False)
        browser_replay(entries, [drawings[i] for i in picks], args.seed)


if __name__ == "__main__":
    main()
