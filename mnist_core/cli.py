"""Command line: ``python -m mnist_core train|finetune|evaluate|sweep|export|list|drawings ...``.

``train``, ``finetune`` and ``evaluate`` draw a progress bar on stderr and print one JSON
object on stdout as their last line, so scripts can read the result: ``... | tail -n 1``;
so does ``drawings list``.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import signal
import socket
import sys
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import files
from .celery_queue import PREFIX, QueueUnavailable, checked_url, shown_url
from .class_drawings import ClassSet, as_seen, export_jsonl, export_npz
from .data import DataError, load_mnist
from .drawings import DrawingsFolder, seen_by_networks
from .evaluation import evaluate, evaluate_inputs
from .experiments import PRESETS, experiment_tag, prepared
from .models import CONFIGS, OPTIMIZERS
from .protocol import Event, ModelSaved, Progressed, RunFailed, RunFinished, StatusChanged
from .registry import ModelLoadError, ModelRegistry
from .training_queue import QueueRefused


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not the usage block
        self.exit(2, f"error: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m mnist_core", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = commands.add_parser("train", help="train a model and save it to the registry")
    train.add_argument("--model", choices=sorted(CONFIGS), required=True)
    train.add_argument("--epochs", type=int, help="default: the model's default")
    train.add_argument("--seconds", type=float, help="time budget: stop after this many seconds")
    train.add_argument("--batch-size", type=int)
    train.add_argument("--train-size", type=int, help="train on N images, balanced over digits")
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--optimizer", choices=OPTIMIZERS)
    train.add_argument("--data", help="mnist.npz, a folder of idx files, or 'sample'")
    train.add_argument("--models-dir", help="default: $MNIST_MODELS_DIR or ./models")
    train.add_argument("--name", help="model name (default: KIND-DATE-TIME)")
    train.add_argument(
        "--queue", help="redis://HOST:PORT/DB: train on the school's workers, in the queue's order"
    )
    _drawings_options(train, "also learn from this drawings set (see `drawings list`)")
    train.add_argument(
        "--drawings-weight",
        type=float,
        help="the share of the training images the drawings make up (default 0.2)",
    )
    finetune = commands.add_parser(
        "finetune", help="fine-tune a saved model on a drawings set: a new model"
    )
    finetune.add_argument("name", help="the saved model to start from (see `list`)")
    _drawings_options(finetune, "the drawings set to learn from", required=True)
    finetune.add_argument("--epochs", type=int, help="default: 3")
    finetune.add_argument("--data", help="mnist.npz, a folder of idx files, or 'sample'")
    finetune.add_argument("--models-dir", help="default: $MNIST_MODELS_DIR or ./models")
    finetune.add_argument("--new-name", help="the new model's name (default: NAME-SET)")
    evaluation = commands.add_parser("evaluate", help="evaluate a saved model on the test set")
    evaluation.add_argument("name", help="the model's name (see `list`)")
    evaluation.add_argument("--models-dir", help="default: $MNIST_MODELS_DIR or ./models")
    evaluation.add_argument("--data", help="mnist.npz, a folder of idx files, or 'sample'")
    _drawings_options(evaluation, "a drawings set's name (see `drawings list`) or a .jsonl file")
    sweep = commands.add_parser("sweep", help="train a preset experiment's models in a row")
    sweep.add_argument("preset", choices=sorted(PRESETS))
    sweep.add_argument("--epochs", type=int, help="for every model (default: each one's own)")
    sweep.add_argument("--seconds", type=float, help="time budget for every model")
    sweep.add_argument("--train-size", type=int, help="train each on N images, balanced")
    sweep.add_argument("--data", help="mnist.npz, a folder of idx files, or 'sample'")
    sweep.add_argument("--models-dir", help="default: $MNIST_MODELS_DIR or ./models")
    worker = commands.add_parser(
        "worker", help="train the runs of a school's queue (a Celery worker on Redis)"
    )
    worker.add_argument("--queue", required=True, help="redis://HOST:PORT/DB")
    worker.add_argument("--slots", type=int, default=1, help="runs trained at once (default 1)")
    worker.add_argument(
        "--models-dir", help="the shared models folder (default: $MNIST_MODELS_DIR or ./models)"
    )
    worker.add_argument(
        "--drawings-dir", help="the shared drawings folder, if not the replicas' path"
    )
    worker.add_argument("--data", help="this worker's MNIST, if not where the replicas found it")
    export = commands.add_parser(
        "export", help="a saved model or an experiment as a Jupyter notebook or a script"
    )
    export.add_argument("name", nargs="?", help="the saved model (see `list`)")
    export.add_argument("--experiment", help="a preset's name, or the tag of a run of one")
    export.add_argument("--notebook", help="FILE.ipynb to write")
    export.add_argument("--script", help="FILE.py to write")
    export.add_argument("--models-dir", help="default: $MNIST_MODELS_DIR or ./models")
    listing = commands.add_parser("list", help="list saved models, newest first")
    listing.add_argument("--models-dir")
    drawings = commands.add_parser("drawings", help="the drawings sets: list, import, export")
    actions = drawings.add_subparsers(dest="action", required=True, parser_class=_Parser)
    listed = actions.add_parser("list", help="every set: digits, writers, per digit")
    importing = actions.add_parser("import", help="add a .jsonl file's digits to a set")
    importing.add_argument("file", help="JSON lines: digit, writer, strokes (source optional)")
    importing.add_argument("--set", required=True, help="the set to add to (made if new)")
    exporting = actions.add_parser("export", help="write a set as .jsonl (or .npz)")
    exporting.add_argument("name", help="the set (see `drawings list`)")
    exporting.add_argument("file", help="FILE.jsonl: the strokes; FILE.npz: Keras's MNIST layout")
    for action in (listed, importing, exporting):
        action.add_argument("--drawings-dir", help="default: $MNIST_DRAWINGS_DIR or ./drawings")
    args = parser.parse_args(argv)
    commands = {
        "train": _train,
        "finetune": _finetune,
        "evaluate": _evaluate,
        "sweep": _sweep,
        "list": _list,
        "drawings": _drawings,
        "worker": _worker,
        "export": _export,
    }
    command = commands[args.command]
    try:
        return command(args)
    except (DataError, ValueError, ModelLoadError, QueueRefused, QueueUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _drawings_options(parser: argparse.ArgumentParser, what: str, required=False) -> None:
    parser.add_argument("--drawings", required=required, help=what)
    parser.add_argument("--drawings-dir", help="default: $MNIST_DRAWINGS_DIR or ./drawings")


def _train(args) -> int:
    from .jobs import default_job

    job = default_job(
        args.model,
        epochs=args.epochs,
        time_budget=args.seconds,
        batch_size=args.batch_size,
        train_size=args.train_size,
        learning_rate=args.learning_rate,
        optimizer=args.optimizer,
        name=args.name,
        models_dir=args.models_dir,
        drawings=args.drawings,
        drawings_weight=args.drawings_weight,
        drawings_dir=args.drawings_dir,
    )
    if args.queue:
        return _run_queued(replace(job, data_path=args.data), args.queue)
    return _run_job(job, args.data)


def _finetune(args) -> int:
    from .jobs import finetune_job

    registry = ModelRegistry(args.models_dir)
    parent = registry.get(args.name)
    if "config" not in parent.meta:
        raise ValueError(
            f"{parent.name} was uploaded, not trained here: its settings (and so how to "
            "fine-tune it) are unknown"
        )
    new_name = args.new_name or f"{parent.name}-{args.drawings}"
    job = finetune_job(
        parent.name,
        parent.meta["config"],
        args.drawings,
        epochs=args.epochs,
        name=registry.unique_name(Path(new_name).name),
        models_dir=args.models_dir,
        drawings_dir=args.drawings_dir,
    )
    return _run_job(job, args.data)


def _run_job(job, data_reference: str | None) -> int:
    """Check ``job``, train it with a progress bar, print its result as the last line."""
    from .jobs import validation_count, within_data

    job.check()
    if job.training.drawings:
        DrawingsFolder(job.drawings_dir).load(job.training.drawings)  # named before the data
    with warnings.catch_warnings(record=True):
        data = load_mnist(data_reference)
    print(f"data: {data.description}", file=sys.stderr)
    available = len(data.y_train) - validation_count(data, job.training)
    job = within_data(job, available)
    job.check(available)  # e.g. the batch size
    from .training import train  # TensorFlow: imported only once the arguments are sound

    stop = _stop_on_first_ctrl_c()
    entry = train(job, data, on_event=_progress_bar, should_stop=stop)
    print(file=sys.stderr)
    _print_result(entry)
    return 0


def _run_queued(job, url: str) -> int:
    """Queue ``job`` on the school's queue at ``url``, follow it with the same progress bar
    and print the same last line; the first Ctrl-C stops it as the page's Stop does."""
    from .celery_queue import CeleryTrainingQueue
    from .training_queue import Requester

    job.check()
    registry = ModelRegistry(job.models_dir)
    queue = CeleryTrainingQueue(url, registry.root)
    if queue.storage_error:
        print(f"warning: {queue.storage_error}", file=sys.stderr)
    me = Requester(f"cli-{getpass.getuser()}@{socket.gethostname()}")
    run = queue.submit([job], me)
    print(f"queued as run {run.id} on {shown_url(url)}", file=sys.stderr)
    stop, stopping, after, said, saved = _stop_on_first_ctrl_c(), False, "0-0", "", []
    while True:
        if stop() and not stopping:
            stopping = True
            with contextlib.suppress(QueueRefused):  # it ended meanwhile
                queue.cancel(run.id, me)
        for event_id, event in queue.events(run.id, after):
            after = event_id
            _progress_bar(event)
            if isinstance(event, ModelSaved):
                saved.append(event.model.name)
            elif isinstance(event, RunFailed):
                print(f"\nerror: {event.message}", file=sys.stderr)
                return 1
            elif isinstance(event, RunFinished):
                print(file=sys.stderr)
                _print_result(registry.get(saved[-1]))
                return 0
        now = queue.run(run.id)
        if now is None or now.state.status == "cancelled":
            print("\ncancelled before it started", file=sys.stderr)
            return 1
        if now.state.waiting and (waiting := queue.snapshot().waiting_of(run.id)):
            words = f"waiting: number {waiting.position}, starts in about {waiting.starts_in:.0f} s"
            if words != said:
                print(f"\r{words}", end="", file=sys.stderr, flush=True)
                said = words


def _worker(args) -> int:
    from .celery_worker import WorkerSettings, node_name, run_worker

    if args.slots < 1:
        raise ValueError(f"--slots {args.slots}: a worker trains at least one run at a time")
    settings = WorkerSettings(
        url=checked_url(args.queue),
        prefix=PREFIX,
        slots=args.slots,
        node=node_name(),
        models_dir=args.models_dir,
        drawings_dir=args.drawings_dir,
        data=args.data,
    )
    return run_worker(settings)


def _print_result(entry) -> None:
    """The last line of ``train`` and ``finetune``: the model saved, as one JSON object."""
    meta = entry.meta
    facts = {}
    if drawn := meta.get("drawings"):
        facts = {
            "drawings": drawn["set"],
            "drawings_learned": drawn["learned"],
            "held_out_writers": drawn["held_out_writers"],
            "held_out_accuracy": drawn["held_out_accuracy"],
        }
    print(
        json.dumps(
            {
                "name": entry.name,
                "kind": entry.kind,
                "path": str(entry.model_path),
                "test_accuracy": round(meta["test_accuracy"], 4),
                "test_loss": round(meta["test_loss"], 4),
                "train_seconds": meta["train_seconds"],
                "epochs": meta["epochs"],
                "stopped": meta["stopped"],
                "params": meta["params"],
                "train_images": meta["data"]["train_images"],
                "data": meta["data"]["origin"],
                **({"parent": meta["parent"]} if meta.get("parent") else {}),
                **facts,
            }
        )
    )


def _drawings(args) -> int:
    folder = DrawingsFolder(args.drawings_dir)
    if args.action == "list":
        summaries, problems = folder.summaries()
        for problem in problems:
            print(f"unreadable: {problem}", file=sys.stderr)
        for summary in summaries:
            print(f"{summary.name:24} {summary.count:7,} digits {summary.writers:5,} writers")
        sets = [
            {"name": s.name, "count": s.count, "writers": s.writers, "per_digit": s.per_digit}
            for s in summaries
        ]
        print(json.dumps({"sets": sets}))
        return 0
    if args.action == "import":
        added = ClassSet(folder, args.set).import_file(args.file)
        summary = ClassSet(folder, args.set).read().summary()
        print(json.dumps({"set": summary.name, "added": added, "count": summary.count}))
        return 0
    drawings = folder.load(args.name)
    target = Path(args.file)
    if target.suffix == ".npz":
        # As the page exports it: a kept digit as the networks saw it, the rest drawn.
        images = as_seen(drawings, on_progress=_progress("drawn"))
        print(file=sys.stderr)
        content = export_npz(drawings, images)
    elif target.name.endswith(".jsonl"):
        content = export_jsonl(drawings)
    else:
        raise ValueError(f"{target.name}: export to a .jsonl (strokes) or a .npz (28x28) file")
    if target.exists():
        raise ValueError(f"{target} exists already: choose a new file name")
    target.write_bytes(content)
    print(json.dumps({"set": drawings.name, "file": str(target), "count": len(drawings.drawings)}))
    return 0


def _export(args) -> int:
    from .notebooks import (  # TensorFlow: the app's training code is copied from its source
        experiment_cells,
        experiment_export,
        model_cells,
        model_export,
        notebook_text,
        script_text,
    )

    if (args.name is None) == (args.experiment is None):
        raise ValueError("export takes a model's NAME or --experiment TAG (one of them)")
    targets = {"notebook": (args.notebook, ".ipynb"), "script": (args.script, ".py")}
    targets = {what: (Path(file), suffix) for what, (file, suffix) in targets.items() if file}
    if not targets:
        raise ValueError("say where to write it: --notebook FILE.ipynb and/or --script FILE.py")
    for what, (target, suffix) in targets.items():
        if target.suffix != suffix:
            raise ValueError(f"{target.name}: a {what} is written to a {suffix} file")
        if target.exists():
            raise ValueError(f"{target} exists already: choose a new file name")
        if not target.parent.is_dir():
            raise ValueError(f"{target.parent}: no such folder")
    registry = ModelRegistry(args.models_dir)
    if args.experiment is not None:
        experiment = experiment_export(args.experiment, registry)
        notes = ()

        def cells(script: bool) -> list:
            return experiment_cells(
                experiment.title, experiment.question, experiment.jobs, script=script
            )
    else:
        model = model_export(registry.get(args.name), registry)
        notes = model.notes

        def cells(script: bool) -> list:
            return model_cells(model, script=script)

    written = {}
    for what, (target, _) in targets.items():
        text = script_text(cells(True)) if what == "script" else notebook_text(cells(False))
        files.write_whole(target, text)
        written[what] = str(target)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(json.dumps({**written, "notes": list(notes)}))
    return 0


def _evaluate(args) -> int:
    registry = ModelRegistry(args.models_dir)
    entry = registry.get(args.name)
    model = registry.load(entry)  # a broken file fails before the data is read
    if args.drawings:
        drawings = DrawingsFolder(args.drawings_dir).load(args.drawings)
        print(f"drawings: {drawings.name}, {len(drawings.drawings):,} digits", file=sys.stderr)
        seen = seen_by_networks(drawings.drawings, on_progress=_progress("drawn"))
        print(file=sys.stderr)
        result = evaluate_inputs(
            model, seen.images[..., None], drawings.labels, _progress("of the drawings")
        )
        facts = {
            "n": len(result.labels),
            "per_writer": _rounded(result.accuracy_by(drawings.writers)),
            "unread": int(seen.unread.sum()),  # a dot, say: the page asks for a bigger digit
            "data": f"drawings:{drawings.name}",
        }
    else:
        with warnings.catch_warnings(record=True):
            data = load_mnist(args.data)
        print(f"data: {data.description}", file=sys.stderr)
        result = evaluate(model, data, on_progress=_progress("of the test set"))
        facts = {"n": len(result.labels), "test_images": len(result.labels), "data": data.origin}
    print(file=sys.stderr)
    per_class = [None if np.isnan(a) else float(a) for a in result.per_class_accuracy]
    print(
        json.dumps(
            {
                "name": entry.name,
                "test_accuracy": round(result.accuracy, 6),
                "test_loss": round(result.loss, 6),
                "confusion": result.confusion.tolist(),
                "per_class_accuracy": [None if a is None else round(a, 6) for a in per_class],
                **facts,
            }
        )
    )
    return 0


def _rounded(shares: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 6) for key, value in shares.items()}


def _sweep(args) -> int:
    jobs = prepared(
        list(PRESETS[args.preset].jobs),
        experiment_tag(args.preset),
        epochs=args.epochs,
        time_budget=args.seconds,
        train_size=args.train_size,
        models_dir=args.models_dir,
    )
    with warnings.catch_warnings(record=True):
        data = load_mnist(args.data)
    print(f"data: {data.description}", file=sys.stderr)
    from .training import train  # TensorFlow: imported only once the arguments are sound

    stop = _stop_on_first_ctrl_c()
    results = []
    for number, job in enumerate(jobs, start=1):
        if stop():
            break
        print(f"\n[{number}/{len(jobs)}] {job.name}", file=sys.stderr, end="")
        meta = train(job, data, on_event=_progress_bar, should_stop=stop).meta
        results.append(
            {
                "name": meta["name"],
                "kind": meta["kind"],
                "config": meta["config"],
                "test_accuracy": round(meta["test_accuracy"], 4),
                "test_loss": round(meta["test_loss"], 4),
                "train_seconds": meta["train_seconds"],
                "epochs": meta["epochs"],
            }
        )
    print(file=sys.stderr)
    print(json.dumps({"preset": args.preset, "results": results}))
    return 0


def _bar(done: float, width: int = 30) -> str:
    filled = int(done * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:4.0%}"


def _progress(what: str) -> Callable[[float], None]:
    """A progress bar on stderr, ``what`` after it."""

    def show(done: float) -> None:
        print(f"\r{_bar(done)} {what}", end="", file=sys.stderr, flush=True)

    return show


def _list(args) -> int:
    entries = ModelRegistry(args.models_dir).entries()
    if not entries:
        print("no models yet: train one with `python -m mnist_core train --model cnn`")
    for e in entries:
        print(
            f"{e.name:32} {e.kind.upper():4} test {e.test_accuracy:7.2%}  "
            f"{e.meta.get('epochs', '?')} epochs  {e.meta.get('train_seconds', 0):6.1f}s  "
            f"{e.meta['created']}{'  (stopped)' if e.meta.get('stopped') else ''}"
        )
    return 0


def _progress_bar(event: Event) -> None:
    if isinstance(event, StatusChanged):
        print(f"\n{event.message}", file=sys.stderr, end="")
        return
    if not isinstance(event, Progressed):
        return
    point = event.point
    val = f" val_acc {point.val_accuracy:.4f}" if point.val_accuracy is not None else ""
    print(
        f"\r{_bar(point.progress)} epoch {point.epoch} "
        f"loss {point.loss:.4f} acc {point.accuracy:.4f}{val} "
        f"{point.elapsed:5.1f}s {point.images_per_s:6.0f} img/s",
        file=sys.stderr,
        end="\n" if event.epoch_end else "",
        flush=True,
    )


def _stop_on_first_ctrl_c():
    """First Ctrl-C: stop after this batch and save; a second one aborts."""
    pressed = []

    def handler(signum, frame):
        if pressed:
            raise KeyboardInterrupt
        pressed.append(True)
        print("\nstopping after this batch (Ctrl-C again to abort)", file=sys.stderr)

    signal.signal(signal.SIGINT, handler)
    return lambda: bool(pressed)
