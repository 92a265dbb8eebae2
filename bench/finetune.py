"""Fine-tuning the default models on a class's handwriting, read by the class's other writers.

    MNIST_DATA=/path/to/mnist.npz .venv/bin/python -m bench.finetune \\
        [--drawings ../shared/handwriting/unipen-dev.jsonl.gz] [--sources apb ced all] [--smoke]

A class is one source of the development set (one organisation's writers, one way of
writing), or every source mixed (``all``): half its writers are the class that keeps its
drawings (at most 1,000 digits), the other half the writers the fine-tuned model never saw.
For each, the default ANN and CNN (``bench-default-*`` in the models folder, trained first
where missing, as ``bench.handwriting`` does) are fine-tuned as ``python -m mnist_core
finetune`` does; the script prints each model's accuracy on the other writers and on
MNIST's test set, before and after, with the fine-tune's seconds (training, and in all:
drawing the set included).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.handwriting import DEVELOPMENT_SET, models
from mnist_core.data import load_mnist
from mnist_core.drawings import read_drawings, seen_by_networks, to_record, writer_split
from mnist_core.evaluation import evaluate, evaluate_inputs
from mnist_core.jobs import finetune_job
from mnist_core.registry import ModelRegistry

CLASS_SHARE = 0.5  # of a source's writers: the class; the rest read the fine-tuned model
CLASS_DIGITS = 1000
EVERY_SOURCE = "all"  # every source's writers mixed: many hands, no one style


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drawings", default=str(DEVELOPMENT_SET))
    parser.add_argument("--sources", nargs="+", default=["apb", "ced", EVERY_SOURCE])
    parser.add_argument("--models-dir", default="bench-models")
    parser.add_argument("--epochs", type=int, help="default: finetune's")
    parser.add_argument("--smoke", action="store_true", help="a tiny run, for the tests")
    args = parser.parse_args(argv)
    from mnist_core.training import train

    registry = ModelRegistry(args.models_dir)
    defaults = {k: v for k, v in models(registry, args.smoke).items() if k.startswith("default")}
    data = load_mnist()
    everyone = read_drawings(args.drawings).drawings
    rows = []
    for source in args.sources:
        drawings = [d for d in everyone if source == EVERY_SOURCE or d.source == source]
        if args.smoke:
            drawings = drawings[:200]
        learned, others = writer_split(drawings, CLASS_SHARE, seed=0)
        if len(learned) > CLASS_DIGITS:  # a class's morning of drawings, no more
            learned = np.random.default_rng(0).choice(learned, CLASS_DIGITS, replace=False)
        others_seen = seen_by_networks([drawings[i] for i in others], seed=1)
        others_labels = [drawings[i].digit for i in others]
        with tempfile.TemporaryDirectory() as folder:
            lines = (json.dumps(to_record(drawings[i], kept=False)) for i in learned)
            Path(folder, f"{source}.jsonl").write_text("\n".join(lines) + "\n")
            for label, entry in defaults.items():
                before = registry.load(entry)
                job = finetune_job(
                    entry.name,
                    entry.meta["config"],
                    source,
                    epochs=args.epochs or (1 if args.smoke else None),
                    name=f"{entry.name}-{source}",
                    models_dir=str(registry.root),
                    drawings_dir=folder,
                )
                if args.smoke:
                    job = replace(job, training=replace(job.training, train_size=500))
                started = time.perf_counter()
                tuned = train(job, data)
                seconds = time.perf_counter() - started
                after = registry.load(tuned)
                rows.append(
                    {
                        "source": source,
                        "model": label,
                        "class": f"{len(learned):,} digits by "
                        f"{len({drawings[i].writer for i in learned})} writers",
                        "others": f"{len(others):,} digits by "
                        f"{len({drawings[i].writer for i in others})} writers",
                        "others_before": _read(before, others_seen.images, others_labels),
                        "others_after": _read(after, others_seen.images, others_labels),
                        "mnist_before": entry.test_accuracy,
                        "mnist_after": evaluate(after, data).accuracy,
                        "train_seconds": tuned.meta["train_seconds"],
                        "seconds": round(seconds, 1),
                    }
                )
                registry.delete(tuned.name)
                print(json.dumps(rows[-1]), flush=True)
    print(
        "| class (source) | model | other writers before -> after | MNIST before -> after "
        "| seconds (training / in all) |"
    )
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['source']}: {row['class']}; read by {row['others']} | {row['model']} "
            f"| {row['others_before']:.2%} -> {row['others_after']:.2%} "
            f"| {row['mnist_before']:.2%} -> {row['mnist_after']:.2%} "
            f"| {row['train_seconds']:.1f} / {row['seconds']:.1f} |"
        )
    return 0


def _read(model, images, labels) -> float:
    return evaluate_inputs(model, images[..., None], labels).accuracy


if __name__ == "__main__":
    raise SystemExit(main())
