"""A model or a whole experiment as a Jupyter notebook (``.ipynb``) or a script (``.py``)
that a student runs at home: the same network, data and training as the app's.

The material this app grew from is notebooks: a network built, trained and evaluated cell by
cell, and experiments in "looped form" (the configurations in a dictionary, one loop that
trains each). The exports are written in that style, from the app's own descriptions: the
layers and optimizer from ``models`` (through ``network_code``), the functions that choose
the training digits, draw the European strokes, recalibrate batch normalisation and run the
one cycle on the clock copied from the app's source as they are. Where the notebook has to
say a thing in its own words (the split of the training set, ``training_digits``),
``tests/test_notebooks.py`` checks it gives the app's arrays. The notebooks run with what
``requirements.txt`` installs plus Jupyter, offline when ``MNIST_DATA`` names an
``mnist.npz``; their last output is one JSON line.
"""

from __future__ import annotations

import ast
import inspect
import json
import pprint
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import nbformat

from . import data, models, preprocessing, styles, training
from .experiments import PRESETS
from .jobs import TrainingJob, default_job
from .network_code import (
    ONE_CYCLE_SCHEDULE,
    layers_lines,
    loss_code,
    one_hot_mse_code,
    optimizer_code,
    python_string,
    saved_job,
    settings_lines,
)
from .registry import ModelEntry, ModelRegistry, sanitize_name
from .text import shortened

# What Jupyter's Markdown reads as syntax inside a line: emphasis, code, links, HTML and
# entities, headings, tables, strike-through and LaTeX ($...$). Each escaped, a name shows as
# written and the cell stays readable when a student opens it.
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_\[\]<>#|~$&!])")
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")

KIND_NAMES = {"ann": "dense network (ANN)", "cnn": "convolutional network (CNN)"}


@dataclass(frozen=True)
class Cell:
    text: str
    markdown: bool = False


@dataclass(frozen=True)
class ModelExport:
    """What a model's notebook is made from: the job that trains it, or, for a model whose
    training is unknown, the app's default job for its kind and the model's own
    ``architecture`` (its Keras config), with ``notes`` saying so."""

    name: str
    job: TrainingJob
    architecture: dict | None = None
    notes: tuple[str, ...] = ()
    measured: float | None = None  # the test accuracy the app measured


def job_export(job: TrainingJob) -> ModelExport:
    """The export of settings not yet trained (the Train page's)."""
    return ModelExport(sanitize_name(job.name or job.kind), job, notes=_drawings_notes(job))


def _drawings_notes(job: TrainingJob) -> tuple[str, ...]:
    if not job.training.drawings:
        return ()
    return (
        f"It also learns from the class's drawings set {job.training.drawings}. Those "
        "drawings stay in the app, so this notebook trains on MNIST alone.",
    )


def model_export(
    entry: ModelEntry, registry: ModelRegistry, load: Callable | None = None
) -> ModelExport:
    """The export of a saved model: its own settings, its parent's for a fine-tuned model,
    else its architecture with the app's default training (saying why), read from the
    Keras model that ``load(entry)`` gives (default: the registry's)."""
    meta, notes = entry.meta, []
    accuracy = meta.get("test_accuracy")
    try:
        job = saved_job(meta)
        if meta.get("parent"):
            job = _parent_job(meta, registry)
            notes.append(
                f"It was fine-tuned from the model {meta['parent']} on the class's drawings "
                f"set {(meta.get('drawings') or {}).get('set', '')}. Those drawings stay in the "
                f"app, so this notebook trains the network from the start as "
                f"{meta['parent']} was, on MNIST alone."
            )
        else:
            notes += _drawings_notes(job)
    except ValueError as why:
        notes.append(
            f"How it was trained is unknown: {why}. This notebook builds its architecture "
            f"and trains it as the app trains its default {entry.kind.upper()}."
        )
        architecture = json.loads((load or registry.load)(entry).to_json())
        job = default_job(entry.kind)
        return ModelExport(entry.name, job, architecture, tuple(notes), accuracy)
    if (meta.get("data") or {}).get("origin") == "sample":
        notes.append(
            "It was trained on the app's small offline sample of MNIST; this notebook loads "
            "the full set, so with no size given it trains on more digits."
        )
    return ModelExport(entry.name, replace(job, name=entry.name), None, tuple(notes), accuracy)


def _parent_job(meta: dict, registry: ModelRegistry) -> TrainingJob:
    try:
        parent = registry.get(meta["parent"])
    except ValueError:
        raise ValueError(
            f"it was fine-tuned from {meta['parent']}, which is no longer saved"
        ) from None
    return saved_job(parent.meta)


# --- the code the cells hold ----------------------------------------------------------------


def _source(function) -> str:
    return inspect.getsource(function).rstrip() + "\n"


def _module_body(module) -> str:
    """A module's source without its docstring, ``__future__`` and relative imports: its
    functions and constants, to paste as they are."""
    source = inspect.getsource(module)
    lines = source.splitlines()
    tree = ast.parse(source)
    dropped = set()
    for index, node in enumerate(tree.body):
        docstring = index == 0 and isinstance(node, ast.Expr)
        relative = isinstance(node, ast.ImportFrom) and (
            node.level > 0 or node.module == "__future__"
        )
        if docstring or relative:
            dropped.update(range(node.lineno - 1, node.end_lineno))
    kept = [line for number, line in enumerate(lines) if number not in dropped]
    return "\n".join(kept).strip() + "\n"


def as_markdown(text: object) -> str:
    """``text`` for a notebook's Markdown, shown letter for letter, on one line."""
    return _MARKDOWN_SYNTAX.sub(r"\\\1", _LINE_BREAKS.sub(" ", str(text)))


def _markdown_read(markdown: str) -> str:
    """What a reader sees of ``as_markdown``'s escapes: for the script's comments."""
    return re.sub(r"\\([\\`*_\[\]<>#|~$&!])", r"\1", markdown)


def _show(stem: str, script: bool) -> str:
    """How a figure is shown: below the cell, or saved beside the script."""
    if not script:
        return "plt.show()"
    return f'plt.savefig(NAME + "{stem}.png")\nplt.close()\nprint("saved", NAME + "{stem}.png")'


IMPORTS = """\
import json
import math
import os
import time

import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import layers
"""

LOAD_MNIST = """\
if os.environ.get("MNIST_DATA"):
    with np.load(os.environ["MNIST_DATA"]) as mnist:
        x_train_all, y_train_all = mnist["x_train"], mnist["y_train"]
        x_test, y_test = mnist["x_test"], mnist["y_test"]
else:
    (x_train_all, y_train_all), (x_test, y_test) = keras.datasets.mnist.load_data()
print(f"{len(y_train_all):,} training digits and {len(y_test):,} test digits")
"""

TRAINING_DIGITS = '''\
def training_digits(train_images, european_share, seed=SEED):
    """The app's split of MNIST's training digits: the validation digits held out first
    (balanced over the ten digits), then `train_images` of the rest (all when None), the
    same number of each digit; a share `european_share` of their 0s, 1s and 7s restyled."""
    held_out = min(VALIDATION_IMAGES, len(y_train_all) // 10)
    validation = stratified_indices(y_train_all, held_out, seed=seed)
    rest = np.setdiff1d(np.arange(len(y_train_all)), validation)
    x, y = stratified_subset(
        x_train_all[rest], y_train_all[rest], train_images or len(rest), seed=seed
    )
    x = with_styles(x, y, european_share, seed=seed)
    return (to_input(x), y), (to_input(x_train_all[validation]), y_train_all[validation])
'''

SPLIT = """\
(x_train, y_train), (x_val, y_val) = training_digits(TRAIN_IMAGES, EUROPEAN_SHARE)
print(f"{len(y_train):,} training digits, {len(y_val):,} validation digits")
"""

NO_STYLES = '''\
def with_styles(x, y, share, seed=0):
    """The app's European strokes are not used here (its share is 0)."""
    return x
'''

TIME_BUDGET_CALLBACK = '''\
class TimeBudget(keras.callbacks.Callback):
    """Stops training after `seconds`. With the one-cycle schedule (a `peak` learning rate),
    it sets the rate before each batch from the share of the run done, of its steps or of
    its seconds, whichever is further: a run cut short by the clock still ends with small,
    careful steps, as in the app."""

    def __init__(self, seconds, steps, peak=None):
        super().__init__()
        self.seconds, self.steps, self.peak = seconds, steps, peak

    def on_train_begin(self, logs=None):
        self.started, self.step = time.perf_counter(), 0

    def on_train_batch_begin(self, batch, logs=None):
        if self.peak is not None:
            used = (time.perf_counter() - self.started) / self.seconds
            done = min(max(self.step / self.steps, used), 1.0)
            self.model.optimizer.learning_rate.assign(one_cycle(done, self.peak))

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if time.perf_counter() - self.started >= self.seconds:
            self.model.stop_training = True
'''

CURVES = """\
figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
epochs = range(1, len(history.history["loss"]) + 1)
for axes, metric in ((left, "loss"), (right, "accuracy")):
    axes.plot(epochs, history.history[metric], "o-", label="training digits")
    axes.plot(epochs, history.history["val_" + metric], "o-", label="validation digits")
    axes.set(title=metric, xlabel="epoch")
    axes.legend()
"""

TEST = """\
x_test_input = to_input(x_test)
test_loss, test_accuracy = model.evaluate(x_test_input, y_test, verbose=0)
read = model.predict(x_test_input, verbose=0).argmax(axis=1)
print(f"test accuracy {test_accuracy:.2%}, test loss {test_loss:.4f}")

confusion = np.zeros((10, 10), dtype=int)
np.add.at(confusion, (y_test, read), 1)
figure, axes = plt.subplots(figsize=(6, 6))
axes.imshow(confusion, cmap="Blues")
for digit, row in enumerate(confusion):
    for guess, count in enumerate(row):
        if count:
            axes.text(guess, digit, count, ha="center", va="center", fontsize=8)
axes.set(
    xticks=range(10), yticks=range(10), xlabel="read as", ylabel="digit written",
    title="Test digits: what was written, what was read",
)
"""

MISREAD = """\
misread = np.flatnonzero(read != y_test)
print(f"{len(misread):,} of {len(y_test):,} test digits misread; the first of each digit:")
shown = []
for digit in range(10):
    shown += list(misread[y_test[misread] == digit][:1])
figure, grid = plt.subplots(2, 5, figsize=(10, 4.5))
for axes in grid.flat:
    axes.axis("off")
for axes, index in zip(grid.flat, shown):
    axes.imshow(x_test[index], cmap="gray_r")
    axes.set_title(f"{y_test[index]} read as {read[index]}")
"""


def _helper_cells(jobs: Sequence[TrainingJob], split: str = "") -> list[Cell]:
    """The app's functions that the jobs need: choosing and restyling the training digits
    (then the ``split`` code, if any), the loss, the schedule, the clock, batch
    normalisation's statistics."""
    restyled = any(job.training.styles for job in jobs)
    cells = []
    if restyled:
        cells += [
            Cell(
                "### European strokes\n\nMNIST's writers were American: its 0s have no slash, "
                "its 1s no up-stroke, its 7s no bar. The app draws that stroke into a share of "
                "the training 0s, 1s and 7s (`EUROPEAN_SHARE`), so that the networks read the "
                "digits of much of Europe too. The next cell is the app's own code for it: run "
                "it, and read it if you are curious.",
                markdown=True,
            ),
            Cell(
                f"IMAGE_SIZE = {data.IMAGE_SIZE}\nDIGIT_BOX = {preprocessing.DIGIT_BOX}\n\n"
                + _module_body(styles)
            ),
        ]
    cells += [
        Cell(
            "### Choosing the training digits\n\nThe app holds some training digits out for "
            "validation (measured after each epoch, never learned from), takes the training "
            "digits from the rest, the same number of each digit, and turns each image's "
            "pixels (0 to 255) into numbers from 0 to 1, in one grey channel.",
            markdown=True,
        ),
        Cell(
            "\n\n\n".join(
                [
                    f"NUM_CLASSES = {data.NUM_CLASSES}",
                    _source(data.stratified_indices).rstrip(),
                    _source(data.stratified_subset).rstrip(),
                    _source(models.to_input).rstrip(),
                    *([] if restyled else [NO_STYLES.rstrip()]),
                    TRAINING_DIGITS.rstrip(),
                ]
            )
            + (f"\n\n\n{split}" if split else "\n")
        ),
    ]
    learning = []
    if any(job.model.loss == "mse" for job in jobs):
        learning.append(one_hot_mse_code())
    if any(job.model.schedule == "one-cycle" and not job.training.time_budget for job in jobs):
        learning.append(ONE_CYCLE_SCHEDULE)
    if any(job.training.time_budget for job in jobs):
        learning += [f"WARMUP = {models.WARMUP}\n\n\n" + _source(training.one_cycle)]
        learning.append(TIME_BUDGET_CALLBACK)
    if any(_normalises(job) for job in jobs):
        learning.append(
            f"RECALIBRATION_IMAGES = {training.RECALIBRATION_IMAGES}\n\n\n"
            + _source(training.recalibrate_batch_norm)
        )
    if learning:
        cells += [
            Cell(
                "### How the app trains\n\nThe app's own functions for the learning rate's "
                "course (one cycle: up, then down along a cosine), a time budget, and the "
                "statistics of batch normalisation, as the networks below use them.",
                markdown=True,
            ),
            Cell("\n\n\n".join(code.rstrip() for code in learning) + "\n"),
        ]
    return cells


def _normalises(job: TrainingJob) -> bool:
    return job.kind == "cnn" and job.model.batch_norm


def _optimizer_lines(job: TrainingJob, peak: str, epochs: str, batch: str, budget: str):
    """Lines that set ``steps``, ``optimizer`` and ``callbacks`` for ``job``."""
    model = job.model
    lines = [f"steps = {epochs} * math.ceil(len(y_train) / {batch})"]
    if job.training.time_budget:
        peak_of_cycle = peak if model.schedule == "one-cycle" else "None"
        lines += [
            f"optimizer = {optimizer_code(model, peak)}",
            f"callbacks = [TimeBudget({budget}, steps, peak={peak_of_cycle})]",
        ]
    elif model.schedule == "one-cycle":
        lines += [
            f"optimizer = {optimizer_code(model, f'one_cycle_schedule({peak}, steps)')}",
            "callbacks = []",
        ]
    else:
        lines += [f"optimizer = {optimizer_code(model, peak)}", "callbacks = []"]
    return lines


def _header(title: str, about: str, notes: Sequence[str]) -> Cell:
    text = (
        f"# {title}\n\n{about}\n\nRun the cells in order (*Run All*). It needs what the app's "
        "`requirements.txt` installs (Keras with TensorFlow, NumPy, Matplotlib) and Jupyter. "
        "Keras downloads MNIST the first time (11 MB); to run offline, set the environment "
        "variable `MNIST_DATA` to a copy of `mnist.npz`. TensorFlow prints a few notices of "
        "its own as it starts (in red, in Jupyter): they are not errors."
    )
    for note in notes:
        text += f"\n\n**Note.** {as_markdown(note)}"
    return Cell(text, markdown=True)


def model_cells(export: ModelExport, script: bool = False) -> list[Cell]:
    """The cells of one model's notebook, from loading MNIST to the saved model."""
    job, model = export.job, export.job.model
    name = as_markdown(export.name)
    measured = (
        f" The app measured it reading **{export.measured:.2%}** of MNIST's test digits."
        if export.measured is not None
        else ""
    )
    about = (
        f"A {KIND_NAMES[job.kind]} that reads handwritten digits, exported from *MNIST live*: "
        f"the same network, settings and training as the app's.{measured}"
    )
    if export.architecture is None:
        build = "model = " + "\n".join(layers_lines(model)) + "\nmodel.summary()\n"
        build_text = (
            "## The network\n\nThe layers in order, from the 28×28 image to the ten outputs "
            "(one for each digit), as a list."
        )
    else:
        described = pprint.pformat(export.architecture, width=88, sort_dicts=False)
        build = (
            f"ARCHITECTURE = {described}\n\n"
            "model = keras.models.model_from_json(json.dumps(ARCHITECTURE))\nmodel.summary()\n"
        )
        build_text = "## The network\n\nThe model's layers as Keras describes them in its file."
    return [
        _header(f"{name}: a {KIND_NAMES[job.kind]} for MNIST", about, export.notes),
        Cell(
            "## Settings\n\nThe settings the app trained with. Change one and run the "
            "notebook again to see what it does.",
            markdown=True,
        ),
        Cell(IMPORTS + "\n" + "\n".join(settings_lines(job, export.name)) + "\n"),
        Cell("## MNIST\n\n60,000 handwritten digits to learn from, 10,000 to test on.", True),
        Cell(LOAD_MNIST),
        *_helper_cells([job], split=SPLIT),
        Cell(build_text, markdown=True),
        Cell(f"keras.utils.set_random_seed(SEED)\n{build}"),
        Cell(
            "## How it learns\n\nThe optimizer moves the weights a little after each batch of "
            "digits, by the learning rate; the loss says how wrong the network is.",
            markdown=True,
        ),
        Cell(
            "\n".join(_optimizer_lines(job, "LEARNING_RATE", "EPOCHS", "BATCH_SIZE", "TIME_BUDGET"))
            + f"\nmodel.compile(optimizer=optimizer, loss={loss_code(model)}, "
            'metrics=["accuracy"])\n'
        ),
        Cell(
            "## Training\n\nEach epoch is one pass over the training digits, shuffled, in "
            "batches; after each, the network is measured on the validation digits.",
            markdown=True,
        ),
        Cell(
            "started = time.perf_counter()\n"
            "history = model.fit(\n"
            "    x_train, y_train, batch_size=BATCH_SIZE, epochs=EPOCHS,\n"
            "    validation_data=(x_val, y_val), callbacks=callbacks, verbose=2,\n"
            ")\n"
            'print(f"trained in {time.perf_counter() - started:.0f} s")\n'
            + (
                "recalibrate_batch_norm(model, x_train, BATCH_SIZE, SEED)\n"
                if _normalises(job)
                else ""
            )
        ),
        Cell("## Curves\n\nLoss and accuracy after each epoch.", markdown=True),
        Cell(CURVES + _show("-curves", script) + "\n"),
        Cell(
            "## Test\n\nThe 10,000 test digits were never seen in training. The confusion "
            "matrix counts, for each digit written (row), what the network read (column).",
            markdown=True,
        ),
        Cell(TEST + _show("-confusion", script) + "\n"),
        Cell("## Misread digits", markdown=True),
        Cell(MISREAD + _show("-misread", script) + "\n"),
        Cell(
            "## Save\n\nThe model file can be loaded with `keras.saving.load_model` (with "
            "`compile=False` if it learned with the app's `one_hot_mse`), or added to the app "
            "on its Models page.",
            markdown=True,
        ),
        Cell(
            'model.save(NAME + ".keras")\n'
            'result = {"test_accuracy": float(test_accuracy), "test_loss": float(test_loss),\n'
            '          "params": model.count_params()}\n'
            "print(json.dumps(result))\n"
        ),
    ]


def experiment_cells(
    title: str, question: str, jobs: Sequence[TrainingJob], script: bool = False
) -> list[Cell]:
    """The cells of an experiment's notebook in looped form: the configurations in a
    dictionary, one loop that trains and tests each, the results and the curves."""
    if not jobs:
        raise ValueError("the experiment has no model to export")
    names = _unique_names(jobs)
    entries = []
    for name, job in zip(names, jobs, strict=True):
        model, settings = job.model, job.training
        layer_code = "\n".join(layers_lines(model, indent="    ")).replace("\n", "\n        ")
        optimizer = optimizer_code(model, "rate")
        entries.append(
            f"    {python_string(name)}: {{\n"
            f'        "network": lambda: {layer_code},\n'
            f'        "optimizer": lambda rate: {optimizer},\n'
            f'        "learning_rate": {model.learning_rate!r},\n'
            f'        "schedule": {python_string(model.schedule)},\n'
            f'        "loss": {loss_code(model)},\n'
            f'        "batch_size": {settings.batch_size},\n'
            f'        "epochs": {settings.epochs},\n'
            f'        "time_budget": {settings.time_budget!r},\n'
            f'        "train_images": {settings.train_size!r},\n'
            f'        "european_share": {settings.styles!r},\n'
            f'        "normalised": {_normalises(job)},\n'
            "    },"
        )
    seeds = {job.training.seed for job in jobs}
    validation = {job.training.validation_size for job in jobs}
    if len(seeds) > 1 or len(validation) > 1:
        raise ValueError("the experiment's models differ in seed or validation size")
    budgeted = any(job.training.time_budget for job in jobs)
    schedule_lines = [
        'steps = config["epochs"] * math.ceil(len(y_train) / config["batch_size"])',
        'peak = config["learning_rate"]',
        "callbacks = []",
    ]
    if budgeted:
        schedule_lines += [
            'if config["time_budget"]:',
            '    cycle_peak = peak if config["schedule"] == "one-cycle" else None',
            '    optimizer = config["optimizer"](peak)',
            '    callbacks = [TimeBudget(config["time_budget"], steps, peak=cycle_peak)]',
            'elif config["schedule"] == "one-cycle":',
        ]
    else:
        schedule_lines.append('if config["schedule"] == "one-cycle":')
    schedule_lines += [
        '    optimizer = config["optimizer"](one_cycle_schedule(peak, steps))',
        "else:",
        '    optimizer = config["optimizer"](peak)',
    ]
    loop = "\n".join(
        [
            "histories, results = {}, []",
            "for name, config in CONFIGURATIONS.items():",
            '    print(f"--- {name}")',
            "    keras.utils.set_random_seed(SEED)",
            "    (x_train, y_train), (x_val, y_val) = training_digits(",
            '        config["train_images"], config["european_share"]',
            "    )",
            '    model = config["network"]()',
            *(f"    {line}" for line in schedule_lines),
            '    model.compile(optimizer=optimizer, loss=config["loss"], metrics=["accuracy"])',
            "    history = model.fit(",
            '        x_train, y_train, batch_size=config["batch_size"], epochs=config["epochs"],',
            "        validation_data=(x_val, y_val), callbacks=callbacks, verbose=2,",
            "    )",
            *(
                [
                    '    if config["normalised"]:',
                    '        recalibrate_batch_norm(model, x_train, config["batch_size"], SEED)',
                ]
                if any(_normalises(job) for job in jobs)
                else []
            ),
            "    test_loss, test_accuracy = model.evaluate(to_input(x_test), y_test, verbose=0)",
            "    histories[name] = history.history",
            "    results.append(",
            '        {"name": name, "test_accuracy": float(test_accuracy),',
            '         "params": model.count_params()}',
            "    )",
            '    print(f"{name}: test accuracy {test_accuracy:.2%}")',
        ]
    )
    table = (
        "print(f\"{'model':<28} {'test accuracy':>13} {'parameters':>12}\")\n"
        'for result in sorted(results, key=lambda r: -r["test_accuracy"]):\n'
        "    print(f\"{result['name']:<28} {result['test_accuracy']:>13.2%} "
        "{result['params']:>12,}\")\n"
    )
    curves = (
        "figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))\n"
        "for name, history in histories.items():\n"
        '    epochs = range(1, len(history["val_loss"]) + 1)\n'
        '    left.plot(epochs, history["val_loss"], "o-", label=name)\n'
        '    right.plot(epochs, history["val_accuracy"], "o-", label=name)\n'
        'left.set(title="validation loss", xlabel="epoch")\n'
        'right.set(title="validation accuracy", xlabel="epoch")\n'
        'right.legend(fontsize="small")\n'
    )
    return [
        _header(
            f"Experiment {as_markdown(title)}",
            f"{as_markdown(question)}\n\nExported from *MNIST live*: each configuration "
            "is one of the experiment's models, with the app's settings and training.",
            (),
        ),
        Cell(
            IMPORTS + f"\nNAME = {python_string(sanitize_name(title))}\nSEED = {seeds.pop()}\n"
            f"VALIDATION_IMAGES = {validation.pop():_}  # held out first, at most a tenth\n"
        ),
        Cell("## MNIST\n\n60,000 handwritten digits to learn from, 10,000 to test on.", True),
        Cell(LOAD_MNIST),
        *_helper_cells(jobs),
        Cell(
            "## The configurations\n\nOne entry a model: its network (a function, so each "
            "run builds new layers), its optimizer and learning rate, its loss and how long "
            "it trains.",
            markdown=True,
        ),
        Cell("CONFIGURATIONS = {\n" + "\n".join(entries) + "\n}\n"),
        Cell("## Train and test each one", markdown=True),
        Cell(loop + "\n"),
        Cell("## Results", markdown=True),
        Cell(table),
        Cell("## Curves\n\nEach model's validation loss and accuracy after each epoch.", True),
        Cell(curves + _show("-curves", script) + "\n"),
        Cell('print(json.dumps({"results": results}))\n'),
    ]


def _unique_names(jobs: Sequence[TrainingJob]) -> list[str]:
    names: list[str] = []
    for job in jobs:
        name = job.name or job.kind
        number, candidate = 2, name
        while candidate in names:
            candidate, number = f"{name}-{number}", number + 1
        names.append(candidate)
    return names


def notebook_text(cells: Sequence[Cell]) -> str:
    """The cells as an ``.ipynb`` notebook (nbformat 4) for Python 3.

    The same cells give the same text: cell ids are numbered, not nbformat's random ones, so
    a page's rerun keeps its download button's file (a new text is a new file, and a click
    on the button drawn before it asked for one the rerun had just dropped).
    """
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(cell.text, id=f"cell-{number}")
            if cell.markdown
            else nbformat.v4.new_code_cell(cell.text.rstrip("\n"), id=f"cell-{number}")
            for number, cell in enumerate(cells, 1)
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    nbformat.validate(notebook)
    return nbformat.writes(notebook)


def script_text(cells: Sequence[Cell]) -> str:
    """The cells as one Python script: the markdown as comments, the figures saved as PNGs."""
    parts = []
    for cell in cells:
        if cell.markdown:
            lines = _markdown_read(cell.text).splitlines()
            wrapped = [part for line in lines for part in textwrap.wrap(line, 86) or [""]]
            parts.append("\n".join(f"# {line}".rstrip() for line in wrapped))
        else:
            parts.append(cell.text.rstrip("\n"))
    return "\n\n".join(parts) + "\n"


@dataclass(frozen=True)
class ExperimentExport:
    """An experiment's models to export, and the question it asks."""

    title: str
    question: str
    jobs: tuple[TrainingJob, ...]


def experiment_export(tag: str, registry: ModelRegistry) -> ExperimentExport:
    """The experiment ``tag``: the models a run of it saved (in the order it trained them),
    or a preset's jobs by the preset's name. ``ValueError`` names what exists otherwise."""
    saved = [entry for entry in reversed(registry.entries()) if entry.meta.get("experiment") == tag]
    preset = PRESETS.get(tag) or PRESETS.get(tag.rsplit("-", 2)[0])
    question = preset.question if preset else f"The models of the experiment {tag}."
    if saved:
        jobs = []
        for entry in saved:
            try:
                jobs.append(replace(saved_job(entry.meta), name=entry.name))
            except ValueError as why:
                raise ValueError(f"cannot export {entry.name} of {tag}: {why}") from None
        return ExperimentExport(tag, question, tuple(jobs))
    if tag in PRESETS:
        return ExperimentExport(tag, question, PRESETS[tag].jobs)
    runs = sorted({e.meta["experiment"] for e in registry.entries() if e.meta.get("experiment")})
    known = ", ".join(list(PRESETS) + runs)
    raise ValueError(f"no experiment {shortened(tag)!r}: the presets and runs are {known}")
