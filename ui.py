"""Streamlit glue shared by the pages: the server's resources, what pages show alike, and
the two Streamlit workarounds, each one named function.

Resources cached with ``st.cache_resource`` are shared by every session of the server
(the data, the trained models, the one training worker); per-user choices live in
``st.session_state``. Importing this module changes nothing: every effect is a call.
"""

from __future__ import annotations

import gc
import hashlib
import os
import warnings
from collections.abc import Callable

import pandas as pd
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import script_runner

from classroom import who
from mnist_core.celery_queue import CeleryTrainingQueue, QueueUnavailable
from mnist_core.challenge import hidden_writers, without_writers
from mnist_core.charts import (
    image_strip,
    probability_bars,
    run_curves,
    saved_curves,
    training_curves,
)
from mnist_core.comparison import SummaryTable
from mnist_core.data import DataError, MnistData, load_mnist
from mnist_core.drawings import DrawingsError, DrawingsFolder, read_drawings, test_digits
from mnist_core.evaluation import Evaluation, TestDigits, evaluate_digits
from mnist_core.inference import predict, top_k
from mnist_core.jobs import TrainingJob
from mnist_core.models import KINDS
from mnist_core.notebooks import Cell, notebook_text, script_text
from mnist_core.preprocessing import (
    BRUSH_RANGE,
    BRUSH_SIZE,
    CANVAS_SIZE,
    MAX_UPLOAD_BYTES,
    ImageError,
    Preprocessed,
    enlarge,
    preprocess_canvas,
    preprocess_photo,
)
from mnist_core.registry import ModelEntry, ModelGone, ModelLoadError, ModelNotFound, ModelRegistry
from mnist_core.robustness import PERTURBATIONS, SUBSET_SIZE, Robustness, measure
from mnist_core.strokes import canvas_strokes
from mnist_core.text import markdown_literal
from mnist_core.training_queue import (
    LocalTrainingQueue,
    QueueRefused,
    QueueSnapshot,
    TrainingQueue,
    TrainingRun,
    default_slots,
)

# --- Streamlit workarounds (private names: a Streamlit upgrade that drops one fails here) ---


def keep_keras_state_between_runs() -> None:
    """Stop Streamlit from calling ``keras.backend.clear_session()`` after every run.

    Streamlit does it for scripts that build models at each run. Here models are built in
    the training worker and only served, and the call costs ~250 ms of CPU per run (a full
    ``gc.collect()``), makes the next prediction ~10x slower (TensorFlow's kernel cache is
    emptied) and resets Keras state under other sessions' predictions. Streamlit's only
    other clean-up there is for matplotlib's pyplot, which this app does not use.
    """
    if not callable(getattr(script_runner, "_clean_problem_modules", None)):
        raise RuntimeError(
            "This Streamlit no longer has script_runner._clean_problem_modules: check whether "
            "it still clears Keras's session after every run (tests/test_pages.py) and "
            "update ui.keep_keras_state_between_runs."
        )
    script_runner._clean_problem_modules = lambda: None


def run_through_app_navigation() -> None:
    """Send a fresh server's first visit to a page's URL through app.py's navigation.

    Streamlit sees the ``pages/`` folder and, until some run reaches ``st.navigation``,
    runs a page file on its own (old-style multipage: no layout, file names in the
    sidebar). Only the page file runs then, so each page calls this first; rerunning with
    that mode off sends the visit through app.py. Reading the private flag raises
    ``AttributeError`` if Streamlit drops it (tests/test_browser.py checks the behaviour).
    Once per session: ``AppTest`` turns the mode back on before every run, and a rerun
    there would drop the widget events of the run it replaces.
    """
    if PagesManager.uses_pages_directory and not st.session_state.get("rerouted_through_app"):
        st.session_state["rerouted_through_app"] = True
        PagesManager.uses_pages_directory = False
        st.rerun()


# --- the server's resources, shared by every session -------------------------------------


@st.cache_resource(show_spinner="Looking for MNIST...")
def _load_data() -> MnistData:
    with warnings.catch_warnings(record=True):  # kept in MnistData.notes, shown by data_banner
        return load_mnist()


def mnist() -> MnistData:
    """The data set, or a clear error on the page (and the page stops) if it is broken."""
    try:
        return _load_data()
    except DataError as error:
        st.error(f"MNIST could not be loaded: {markdown_literal(error)}")
        st.stop()


QUEUE_VARIABLE = "MNIST_QUEUE"  # "local" (the default) or redis://HOST:PORT/DB: a school's


@st.cache_resource
def training_queue() -> TrainingQueue:
    """The server's one training queue, shared by every session: this machine's worker
    processes (app.py starts them), or with ``MNIST_QUEUE=redis://...`` the school's queue
    that every replica shares. A wrong setting is a ``ValueError`` naming it; a Redis that
    does not answer is said on the pages that train, while drawing and evaluating go on."""
    setting = os.environ.get(QUEUE_VARIABLE, "local").strip() or "local"
    images = len(_load_data().y_train)
    if setting == "local":
        return LocalTrainingQueue(registry().root, default_slots(), typical_train_images=images)
    passphrase = who.teacher_passphrase()
    return CeleryTrainingQueue(
        setting,
        registry().root,
        default_slots(),
        typical_train_images=images,
        teacher_digest=hashlib.sha256(passphrase.encode()).hexdigest() if passphrase else None,
        require_answer=False,
    )


def queue_snapshot() -> QueueSnapshot:
    """The queue now; empty while its Redis does not answer (the pages say why, from
    ``storage_error``)."""
    try:
        return training_queue().snapshot()
    except QueueUnavailable:
        return QueueSnapshot((), (), (), ())


def registry() -> ModelRegistry:
    return ModelRegistry()


def entries_by_kind() -> dict[str, list[ModelEntry]]:
    """The saved models of each kind, newest first, from one read of the models folder."""
    entries = registry().entries()
    return {kind: [entry for entry in entries if entry.kind == kind] for kind in KINDS}


def saved_models() -> dict[str, ModelEntry]:
    """Every saved model by name, newest first; with none, the page says to train one
    and stops."""
    entries = {entry.name: entry for entry in registry().entries()}
    if not entries:
        ask_to_train("No saved model yet")
        st.stop()
    return entries


def saved_models_choice(label: str, **options) -> list[ModelEntry]:
    """A multiselect of every saved model (the newest ANN and CNN chosen at first) and the
    chosen ones; with no saved model, the page says to train one and stops."""
    entries = saved_models()
    for kind in KINDS:
        gone_notice(kind)
    names = st.multiselect(
        label,
        list(entries),
        newest_of_each_kind(entries),
        format_func=lambda name: entries[name].label,
        **options,
    )
    return [entries[name] for name in names]


def newest_of_each_kind(entries: dict[str, ModelEntry]) -> list[str]:
    """The names of the newest ANN and the newest CNN among ``entries`` (newest first)."""
    newest = {}
    for name, entry in entries.items():
        newest.setdefault(entry.kind, name)
    return [newest[kind] for kind in KINDS if kind in newest]


def ask_to_train(missing: str) -> None:
    """Say what is ``missing``, with a link to the Train page."""
    st.info(f"{missing}: train one on the Train page.")
    st.page_link("pages/train.py", label="Train a model", icon=":material/model_training:")


@st.cache_resource(max_entries=16, show_spinner="Loading model...")
def _load_model(name: str, modified: float):
    # Python's full garbage collections walk every object TensorFlow and Keras hold,
    # pausing predictions ~200 ms now and then (measured on the Draw page): freeze them
    # all once a model is loaded. Unfreezing first lets models evicted from this cache go.
    gc.unfreeze()
    gc.collect()
    try:
        model = registry().load(registry().get(name))
    except ModelNotFound:
        raise ModelGone(name) from None
    gc.freeze()
    return model


def load_model(entry: ModelEntry):
    """The Keras model of ``entry``, loaded once per file version for all sessions;
    ``ModelGone`` if it was deleted or renamed since it was listed."""
    return _load_model(entry.name, _file_version(entry))


def _file_version(entry: ModelEntry) -> float:
    try:
        return entry.model_path.stat().st_mtime
    except FileNotFoundError:
        raise ModelGone(entry.name) from None


# Model files whose evaluation (~0.8 MB each) and robustness (~1 kB) the server keeps.
MEASUREMENTS_KEPT = 16


@st.cache_resource
def _measurements(what: str) -> dict[tuple[str, float], object]:
    return {}  # (model name, file time) -> its ``what``, for every session of the server


def _once_per_model_file(what: str, entry: ModelEntry, text: str, compute: Callable):
    """``compute(model, on_progress)`` for ``entry``'s model, once per model file for all
    sessions, with a progress bar saying ``text`` the first time; ``None`` (saying so) if
    the model was deleted or renamed meanwhile."""
    try:
        key = (entry.name, _file_version(entry))
        store = _measurements(what)
        if key not in store:
            bar = st.progress(0.0, text=text)
            store[key] = compute(load_model(entry), lambda done: bar.progress(done, text))
            bar.empty()
            while len(store) > MEASUREMENTS_KEPT:
                store.pop(next(iter(store)))  # the oldest
    except ModelGone:
        model_gone(entry)
        return None
    return store[key]


def evaluation(entry: ModelEntry, digits: TestDigits | None = None) -> Evaluation | None:
    """``entry``'s reading of every one of ``digits`` (MNIST's test set if not given),
    computed once per model file and digits for all sessions, with a progress bar the first
    time."""
    digits = digits or mnist_test_digits()
    name, count = markdown_literal(entry.name), len(digits.labels)
    text = f"Evaluating {name} on {count:,} digits of {markdown_literal(digits.name)}..."
    return _once_per_model_file(
        f"evaluation of {digits.version}",
        entry,
        text,
        lambda model, progress: evaluate_digits(model, digits, progress),
    )


MNIST_TEST = "MNIST's test set"


@st.cache_resource(show_spinner=False)
def mnist_test_digits() -> TestDigits:
    return TestDigits.of_mnist(_load_data())


@st.cache_resource(max_entries=4, show_spinner=False)
def _drawings_digits(path: str, modified: int, hidden: tuple[str, ...]) -> TestDigits:
    drawings = without_writers(read_drawings(path), set(hidden))
    if not drawings.drawings:
        raise DrawingsError("its drawings are held back for the class challenge until it closes")
    return test_digits(drawings)


def drawings_folder() -> DrawingsFolder:
    return DrawingsFolder()


def drawings_digits(name: str) -> TestDigits | None:
    """The drawings set ``name`` as the Draw page sees it, drawn once per file version for
    every session (with a spinner the first time); ``None``, saying why, if it cannot be."""
    path = drawings_folder().paths().get(name)
    try:
        if path is None:
            raise DrawingsError(f"no drawings set named {name!r} any more")
        with st.spinner(f"Drawing the digits of {markdown_literal(name)} as the canvas would..."):
            hidden = hidden_writers(drawings_folder(), name, who.requester())
            return _drawings_digits(str(path), path.stat().st_mtime_ns, tuple(sorted(hidden)))
    except (DrawingsError, OSError) as error:
        st.error(f"This drawings set cannot be used: {markdown_literal(error)}")
        return None


def test_digits_choice(key: str) -> TestDigits | None:
    """A choice of the digits to grade models on: MNIST's test set or a set of the drawings
    folder (the choice shows only when there is one)."""
    names = drawings_folder().names()
    if not names:
        return mnist_test_digits()
    chosen = st.selectbox(
        "Test digits",
        [MNIST_TEST, *names],
        key=key,
        format_func=lambda n: n if n == MNIST_TEST else f"Drawings: {n}",
        help="Drawings sets are real people's handwriting, in the drawings folder "
        "(MNIST_DRAWINGS_DIR): each digit is drawn on the canvas and read as the Draw page "
        "reads a drawing.",
    )
    return mnist_test_digits() if chosen == MNIST_TEST else drawings_digits(chosen)


def robustness(entry: ModelEntry) -> Robustness | None:
    """``entry``'s accuracy on moved, turned, resized, blurred, noisy and partly hidden
    test digits, measured once per model file for all sessions, with a progress bar."""
    digits = min(SUBSET_SIZE, len(mnist().y_test))
    name, ways = markdown_literal(entry.name), len(PERTURBATIONS)
    text = f"Measuring {name} on {digits:,} test digits, changed {ways} ways..."
    return _once_per_model_file(
        "robustness", entry, text, lambda model, progress: measure(model, mnist(), progress)
    )


def digit_gallery(indices, result: Evaluation, images, limit: int = 40, columns: int = 10) -> None:
    """Test digits (of ``images``, as the networks saw them) with what the model read: true
    digit, its reading and its confidence."""
    if len(indices) == 0:
        st.caption("None.")
        return
    shown = indices[:limit]
    captions = [
        f"{result.labels[i]} read as {result.predicted[i]} ({result.confidence[i]:.0%})"
        for i in shown
    ]
    image_grid(images[shown], captions, columns)
    if len(indices) > limit:
        st.caption(f"The first {limit} of {len(indices):,}.")


def image_grid(images, captions: list[str], columns: int = 10) -> None:
    """Digits in rows of ``columns``, each enlarged with crisp pixels above its caption."""
    for start in range(0, len(captions), columns):
        row = st.columns(columns)
        for column, image, caption in zip(
            row, images[start : start + columns], captions[start : start + columns], strict=False
        ):
            column.image(enlarge(image, 84), caption=markdown_literal(caption))  # a writer's name


# --- what several pages show --------------------------------------------------------------


def data_banner(data: MnistData) -> None:
    """Say plainly when the app runs on the small offline sample."""
    if data.is_sample:
        st.warning(f"Running on {data.description}", icon=":material/warning:")
    for note in data.notes:
        st.caption(markdown_literal(note))


MISSING = "–"  # a value a model's metadata lacks (an uploaded model's training images)


def model_table(table: SummaryTable, sortable: bool = False) -> None:
    """Saved models side by side, a row each (Compare, Models), every cell in full and
    the numbers formatted to read: a static table, which a projector shows whole, or
    (``sortable``) one whose rows a click on a heading sorts."""
    # Objects, not a column type per column: a number column with a missing value would
    # turn float, and its whole numbers show as "1,000.0".
    frame = pd.DataFrame(list(table.rows), columns=table.headings, dtype=object)
    formats = {c.heading: f"{{:{c.format_spec}}}" for c in table.columns if c.format_spec}
    if not sortable:  # st.table reads its cells as Markdown
        formats |= {c.heading: markdown_literal for c in table.columns if not c.format_spec}
    styled = frame.style.format(formats, na_rep=MISSING)
    if sortable:
        st.dataframe(styled, hide_index=True)
    else:
        # Text breaks anywhere (a name of 80 letters and underscores has no space), so the
        # table fits the page and every column stays in sight; numbers never break.
        texts = [i for i, c in enumerate(table.columns) if not c.format_spec]
        wrap = [{"selector": f"td.col{i} *", "props": "overflow-wrap: anywhere"} for i in texts]
        st.table(styled.set_table_styles(wrap).hide(axis="index"))


EXPORTS = (  # label, file suffix, MIME type, as a script
    ("Download as a notebook (.ipynb)", "ipynb", "application/x-ipynb+json", False),
    ("Download as a script (.py)", "py", "text/x-python", True),
)


def notebook_downloads(stem: str, cells: Callable[[bool], list[Cell]], key: str) -> None:
    """Buttons that download ``cells(script)`` as a Jupyter notebook and as a Python script.

    Made on each run (~10 ms), not on the click: a click during one of the page's reruns
    would ask for a deferred file the rerun has just replaced, and get nothing.
    """
    try:
        texts = {False: notebook_text(cells(False)), True: script_text(cells(True))}
    except (ModelLoadError, ModelGone) as error:
        st.info(f"No notebook of this model: {markdown_literal(error)}.")
        return
    for column, (label, suffix, mime, script) in zip(st.columns(2), EXPORTS, strict=True):
        column.download_button(
            label,
            texts[script],
            file_name=f"{stem}.{suffix}",
            mime=mime,
            icon=":material/download:",
            on_click="ignore",
            key=f"{key}-{suffix}",
        )


def start_training(jobs: list[TrainingJob]) -> TrainingRun | None:
    """Queue ``jobs`` as one run of this browser's, within the teacher's caps (saying what
    they changed), or say why not."""
    queue, me = training_queue(), who.requester()
    if not me.teacher:
        clamped = [queue.limits.clamp(job) for job in jobs]
        jobs = [job for job, _ in clamped]
        if notes := list(dict.fromkeys(note for _, changes in clamped for note in changes)):
            st.info("Within the teacher's limits: " + "; ".join(notes) + ".")
    try:
        run = queue.submit(jobs, me)
    except QueueRefused as error:
        st.warning(f"Cannot start: {markdown_literal(error)}.", icon=":material/hourglass_top:")
        return None
    except ValueError as error:  # a job the caps made impossible (a batch above the images)
        st.error(f"Cannot start: {markdown_literal(error)}.")
        return None
    if waiting := queue_snapshot().waiting_of(run.id):
        st.toast(
            f"Queued: number {waiting.position}, starts in about {duration(waiting.starts_in)}.",
            icon=":material/hourglass_top:",
        )
    return run


def duration(seconds: float) -> str:
    """An estimate as people say one: "40 s" (to 5 s), "80 s" (to 10 s), "3 min"."""
    if seconds < 60:
        return f"{max(5, round(seconds / 5) * 5)} s"
    return f"{round(seconds, -1):.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def watched_run() -> TrainingRun | None:
    """The run this browser watches: its own while it waits or trains, else the one
    training now, else its own last one."""
    snapshot = queue_snapshot()
    mine = snapshot.latest_of(who.requester().owner)
    if mine is not None and not mine.state.ended:
        return mine
    return snapshot.training[0] if snapshot.training else mine


def poll_training(
    show: Callable[[TrainingRun | None], None],
    every: float,
    idle_every: float | None = None,
    own_runs_only: bool = False,
) -> None:
    """``show(watched run)`` in a fragment that reruns alone: every ``every`` seconds while
    a run trains or waits (``own_runs_only``: a run of this browser's), every
    ``idle_every`` otherwise (``None``: not at all).

    A fragment's polling rate is fixed when the page runs, so the whole page reruns when
    the watched run changes or ends (a finished run also brings new models to list).
    """
    snapshot = queue_snapshot()
    runs = [*snapshot.training, *(waiting.run for waiting in snapshot.waiting)]
    if own_runs_only:
        runs = [run for run in runs if run.owner == who.requester().owner]
    busy = bool(runs)
    with st.container():  # a place of its own: two pollers on a page are two fragments
        st.fragment(run_every=every if busy else idle_every)(_poll)(show)


def _poll(show: Callable[[TrainingRun | None], None]) -> None:
    run = watched_run()
    show(run)
    now = None if run is None else (run.id, run.state.ended)
    key = f"watched_run-{st.context.url}"
    before = st.session_state.get(key)
    st.session_state[key] = now
    if before is not None and before != now:
        st.rerun()


def progress_bar(run: TrainingRun | None) -> None:
    """One line for pages other than Train: this browser's run's progress, or why it
    failed (others' runs are the Train page's)."""
    if run is None or run.owner != who.requester().owner:
        return
    state = run.state
    if state.active:
        st.progress(state.overall_progress, text=f"{state.message}...")
    elif state.waiting:
        st.caption("Your training waits in the queue: see the Train page.")
    elif state.status == "failed":
        st.error(f"Training failed: {markdown_literal(state.error)}")


def run_curves_charts(run: TrainingRun | None, compare_with: list[ModelEntry]) -> None:
    """Loss and accuracy of the current run, over the validation curves of the models
    ``compare_with`` (drawn faint), but for the models this run saved itself."""
    if run is None:
        return
    state = run.state
    this_run = {model.name for model in state.saved}
    saved = [saved_curves(entry) for entry in compare_with if entry.name not in this_run]
    loss, accuracy = st.columns(2)
    live = run_curves(state)
    loss.plotly_chart(training_curves(live, "loss", saved), key="loss_curves")
    accuracy.plotly_chart(training_curves(live, "accuracy", saved), key="accuracy_curves")
    if saved:
        st.caption("Faint dotted lines: validation curves of the newest saved ANN and CNN.")


# --- the Draw page's pieces (the drawing is the session's: other pages may show it) ------


def canvas_key() -> str:
    """The canvas widget's key: a new key is a new, empty canvas."""
    return f"canvas-{st.session_state.setdefault('canvas_version', 0)}"


def clear_canvas() -> None:
    st.session_state["canvas_version"] = st.session_state.get("canvas_version", 0) + 1


def drawn_digit() -> tuple[Preprocessed | None, str]:
    """The canvas, its Clear button and brush; returns what the networks will see
    (``None`` until there is a digit) and what to tell the user meanwhile."""
    from streamlit_drawable_canvas import st_canvas  # declares itself: needs a running app

    canvas = st_canvas(
        stroke_width=st.session_state.get("brush", BRUSH_SIZE),
        stroke_color="#FFFFFF",
        background_color="#000000",
        height=CANVAS_SIZE,
        width=CANVAS_SIZE,
        drawing_mode="freedraw",
        return_image_data=True,
        key=canvas_key(),
    )
    clear, brush = st.columns([1, 2], vertical_alignment="bottom")
    clear.button("Clear", icon=":material/delete:", on_click=clear_canvas)
    brush.slider("Brush size", *BRUSH_RANGE, BRUSH_SIZE, key="brush")
    st.caption("Undo and redo: the canvas toolbar (hover over the canvas).")
    hint = "Draw a digit on the black square, as large as you like."
    if canvas.image_data is None:
        return None, hint
    try:
        drawing = preprocess_canvas(canvas.image_data)
    except ImageError as error:  # a dot: ask for a bigger digit
        return None, str(error)
    st.session_state["drawing"] = drawing
    st.session_state["drawn_strokes"] = canvas_strokes(canvas.json_data)
    return drawing, hint


def drawn_strokes() -> list:
    """The points of the strokes of the canvas's last drawing (what keeping it stores)."""
    return st.session_state.get("drawn_strokes", [])


def photo_digit() -> tuple[Preprocessed | None, str]:
    """A photo upload, shown once read; returns it as the networks will see it (``None``
    until there is a readable one) and what to tell the user meanwhile."""
    photo = st.file_uploader(
        "A photo of one handwritten digit (dark pen on light paper)",
        type=["png", "jpg", "jpeg", "webp", "bmp", "gif"],
        key="photo",
        max_upload_size=MAX_UPLOAD_BYTES // 2**20,
        help=f"Up to {MAX_UPLOAD_BYTES // 2**20} MB. Crop it to the digit for best results.",
    )
    if photo is None:
        return None, "Upload a photo of a digit written on paper."
    try:
        drawing = preprocess_photo(photo.getvalue())
    except ImageError as error:
        st.error(str(error))
        return None, "Try another photo."
    st.image(photo, width=CANVAS_SIZE)
    st.session_state["drawing"] = drawing
    return drawing, ""


def current_drawing() -> Preprocessed | None:
    """The session's last digit read on the Draw page (drawn or a photo), for other pages."""
    return st.session_state.get("drawing")


def model_choice(kind: str, entries: list[ModelEntry]):
    """A selector of the saved models of ``kind`` (newest first) and the chosen model,
    or ``None`` (with the reason on the page) if there is none or it cannot be loaded."""
    entry = entry_choice(kind, entries)
    return None if entry is None else usable_model(entry)


def entry_choice(kind: str, entries: list[ModelEntry]) -> ModelEntry | None:
    """A selector of the saved models of ``kind`` (newest first) and the chosen one, or
    ``None`` (saying so on the page) if there is none."""
    gone_notice(kind)
    if not entries:
        st.subheader(f"{kind.upper()}: no model yet")
        return None
    by_label = {entry.label: entry for entry in entries}
    # Keyed on the newest name, so a newly trained model becomes the default.
    label = st.selectbox(f"{kind.upper()} model", list(by_label), key=f"{kind}-{entries[0].name}")
    return by_label[label]


def usable_model(entry: ModelEntry):
    """``entry``'s model, or ``None`` (with the reason on the page) if it cannot be loaded."""
    try:
        return load_model(entry)
    except ModelGone:
        model_gone(entry)
        return None
    except ModelLoadError as error:
        st.error(
            f"This model cannot be used: {markdown_literal(error)}. "
            "Pick another or train a new one."
        )
        return None


GONE = "was deleted or renamed (on the Models page, maybe in another browser): choose another"


def model_gone(entry: ModelEntry) -> None:
    """Say that ``entry``'s model file went, after rerunning the whole page once: a stroke
    or a slider reruns only its fragment, whose model lists were read before it went."""
    reran = st.session_state.setdefault("gone_reran", set())
    if entry.name not in reran:  # once a name: never a loop of reruns
        reran.add(entry.name)
        st.session_state.setdefault("gone_models", {})[entry.kind] = entry.name
        st.rerun(scope="app")  # gone_notice says it on the fresh page
    st.warning(
        f"{entry.kind.upper()} {markdown_literal(entry.name)} {GONE}.", icon=":material/error:"
    )


def gone_notice(kind: str) -> None:
    """The word ``model_gone`` left for the page, where the models of ``kind`` are chosen."""
    if name := st.session_state.get("gone_models", {}).pop(kind, None):
        st.warning(f"{kind.upper()} {markdown_literal(name)} {GONE}.", icon=":material/error:")


def prediction(kind: str, model, drawing: Preprocessed) -> int:
    """What ``model`` reads in ``drawing``: the digit, its top three and all ten bars."""
    probabilities = predict(model, drawing.image)
    (best, confidence), *others = top_k(probabilities, 3)
    st.markdown(
        f"### {kind.upper()} predicts **{best}**\n\n**{confidence:.0%} sure**; then "
        + ", ".join(f"**{digit}** ({p:.0%})" for digit, p in others)
    )
    st.html(probability_bars(probabilities, kind))
    return best


def verdict(read: dict[str, int]) -> None:
    """Whether the two networks agree on the drawing."""
    if read["ann"] != read["cnn"]:
        st.warning(
            f"### The networks disagree: ANN reads {read['ann']}, CNN reads {read['cnn']}",
            icon=":material/compare_arrows:",
        )
    else:
        st.success(f"### Both networks read {read['cnn']}", icon=":material/check_circle:")


def pipeline_strip(drawing: Preprocessed) -> None:
    """The preprocessing's steps side by side, from the drawing to the networks' input."""
    steps = [
        (drawing.cropped, "cropped to the ink"),
        (drawing.redrawn, "strokes made MNIST-thin"),
        (drawing.fitted, "fitted in 20×20"),
        (drawing.image, "centred in 28×28: the input"),
    ]
    st.html(image_strip(steps))
