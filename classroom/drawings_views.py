"""The class's drawings on the pages: keeping one on the Draw page, the set's gallery with
counts and deletion, the teacher's lock, and the board of drawings that fooled the networks.

The computations are ``mnist_core.class_drawings``'s; here is what a student or the teacher
sees and clicks.
"""

from __future__ import annotations

import datetime

import numpy as np
import streamlit as st

import ui
from classroom import who
from mnist_core.challenge import current, hidden_writers, without_writers
from mnist_core.class_drawings import (
    CLASS_SET,
    MAX_WRITER_NAME,
    ClassSet,
    KeepRefused,
    as_seen,
    fooled,
)
from mnist_core.data import NUM_CLASSES
from mnist_core.drawings import DrawingSet
from mnist_core.evaluation import evaluate_inputs
from mnist_core.jobs import (
    FINETUNE_EPOCHS,
    FINETUNE_MNIST_IMAGES,
    HELD_OUT_MIN_WRITERS,
    MAX_DRAWINGS_WEIGHT,
    TrainingConfig,
    finetune_job,
)
from mnist_core.models import KINDS
from mnist_core.preprocessing import Preprocessed, enlarge
from mnist_core.protocol import SavedModel
from mnist_core.registry import ModelEntry
from mnist_core.text import markdown_literal

GALLERY_SIZE = 40  # drawings a page shows at once: the newest first
BOARD_SIZE = 30


def class_set(name: str = CLASS_SET) -> ClassSet:
    """A class's set in the server's drawings folder (``None`` never: the set is made at
    the first drawing kept)."""
    return ClassSet(ui.drawings_folder(), name)


def read_set(chosen: ClassSet) -> DrawingSet:
    """The set's drawings this browser may see (not an open challenge's test, unless it is
    the teacher's), read again only when one is kept, deleted or imported."""
    return _read(str(chosen.path), chosen.name, chosen.version(), _hidden(chosen))


def _hidden(chosen: ClassSet) -> tuple[str, ...]:
    return tuple(sorted(hidden_writers(ui.drawings_folder(), chosen.name, who.requester())))


@st.cache_resource(max_entries=8, show_spinner=False)
def _read(path: str, name: str, version: int, hidden: tuple[str, ...]) -> DrawingSet:
    return without_writers(ClassSet(ui.drawings_folder(), name).read(), set(hidden))


@st.cache_resource(max_entries=8, show_spinner=False)
def _seen(path: str, version: int, hidden: tuple[str, ...], _drawings: DrawingSet) -> np.ndarray:
    return as_seen(_drawings)


def seen_images(chosen: ClassSet) -> np.ndarray:
    """The drawings of ``read_set`` as the networks saw them, once per version of the set."""
    return _seen(str(chosen.path), chosen.version(), _hidden(chosen), read_set(chosen))


@st.cache_resource(max_entries=32, show_spinner=False)
def _readings(
    model_name: str, model_version: float, path: str, version: int, hidden, _model, _images
):
    if len(_images) == 0:
        return np.zeros(0, dtype=np.int64)
    return evaluate_inputs(_model, _images[..., None], np.zeros(len(_images), int)).predicted


def readings(entry: ModelEntry, chosen: ClassSet) -> np.ndarray | None:
    """What ``entry``'s model reads in each drawing of the set (``None``: it cannot be
    loaded; the page says why), once per model file and version of the set."""
    model = ui.usable_model(entry)
    if model is None:
        return None
    images = seen_images(chosen)
    return _readings(
        entry.name,
        entry.model_path.stat().st_mtime,
        str(chosen.path),
        chosen.version(),
        _hidden(chosen),
        model,
        images,
    )


# --- the Draw page: keep a drawing ------------------------------------------------------


def keep_form(drawing: Preprocessed, strokes: list) -> None:
    """Under a drawing: which digit the student meant (no default: a kept label is the
    writer's word, never the network's guess), an optional name, and Keep."""
    chosen = class_set()
    if chosen.locked and not who.requester().teacher:
        st.caption(":material/lock: The teacher has locked the class's drawings set.")
        return
    key = ui.canvas_key()  # a new drawing asks afresh
    with st.form(f"keep-{key}", border=True, enter_to_submit=False):
        st.markdown("**Keep this drawing** in the class's handwriting set")
        st.pills("I meant", list(range(NUM_CLASSES)), key=f"meant-{key}")
        st.text_input(
            "Your name (optional)",
            key="writer_name",
            max_chars=MAX_WRITER_NAME,
            placeholder="a first name or initials",
            help="Drawings are grouped by writer: a model is then measured on writers it "
            "did not learn from. Without a name, this browser stands for you.",
        )
        # Kept in the button's callback, which also clears the canvas: one rerun of the
        # page's fragment a drawing kept, not two (thirty students draw at once).
        st.form_submit_button(
            "Keep",
            icon=":material/bookmark_add:",
            on_click=_keep,
            args=(chosen, key, drawing, strokes),
        )
    if refused := st.session_state.pop("keep_refused", None):
        st.error(markdown_literal(refused), icon=":material/block:")


def _keep(chosen: ClassSet, key: str, drawing: Preprocessed, strokes: list) -> None:
    digit = st.session_state.get(f"meant-{key}")
    writer = st.session_state.get("writer_name")
    try:
        chosen.keep(digit, strokes, drawing.image, who.requester(), writer)
    except KeepRefused as error:
        st.session_state["keep_refused"] = str(error)
        return
    st.session_state["kept_toast"] = f"Kept as a {digit}. Draw the next one!"
    ui.clear_canvas()


def kept_toast() -> None:
    """The word that a drawing was kept, on the fresh canvas after it."""
    if message := st.session_state.pop("kept_toast", None):
        st.toast(message, icon=":material/bookmark_added:")


# --- the class's drawings page ------------------------------------------------------------


def set_choice() -> ClassSet | None:
    """A selector of the drawings folder's class sets (the Draw page's first)."""
    folder = ui.drawings_folder()
    names = [n for n, path in folder.paths().items() if path.is_dir()]
    names = [CLASS_SET, *[n for n in names if n != CLASS_SET]]
    name = st.selectbox("Drawings set", names, key="class_set")
    return class_set(name)


def counts(drawings: DrawingSet) -> None:
    """How many drawings per digit and per writer."""
    labels = drawings.labels
    per_digit = np.bincount(labels, minlength=NUM_CLASSES)
    writers: dict[str, int] = {}
    for writer in drawings.writers:
        writers[writer] = writers.get(writer, 0) + 1
    total, people, rarest = st.columns(3)
    total.metric("Drawings", f"{len(labels):,}")
    people.metric("Writers", f"{len(writers):,}")
    rarest.metric("Rarest digit", f"{int(per_digit.argmin())}: {per_digit.min():,} drawings")
    by_digit, by_writer = st.columns([3, 2], gap="large")
    with by_digit:
        st.bar_chart({"drawings": {str(d): int(n) for d, n in enumerate(per_digit)}}, height=220)
    with by_writer:
        st.dataframe(
            {"writer": list(writers), "drawings": list(writers.values())},
            hide_index=True,
            height=220,
        )


def gallery(chosen: ClassSet, drawings: DrawingSet, digit: int | None, writer: str | None):
    """The newest drawings (of ``digit``, by ``writer``), each with a Delete button for the
    student who kept it and the teacher."""
    me = who.requester()
    found = [
        i
        for i, d in enumerate(drawings.drawings)
        if (digit is None or d.digit == digit) and (writer is None or d.writer == writer)
    ]
    found.sort(key=lambda i: -(drawings.drawings[i].kept_at or 0))
    if not found:
        st.info("No drawing of that kind yet: keep some on the Draw page.")
        return
    images = seen_images(chosen)
    shown = found[:GALLERY_SIZE]
    columns = 8
    for start in range(0, len(shown), columns):
        for column, index in zip(st.columns(columns), shown[start : start + columns], strict=False):
            d = drawings.drawings[index]
            caption = markdown_literal(f"{d.digit} by {d.writer}")
            column.image(enlarge(images[index], 84), caption=caption)
            if me.may_act_on(d.owner) and (me.teacher or not chosen.locked):
                column.button(
                    "Delete",
                    key=f"delete-{d.key}",
                    icon=":material/delete:",
                    on_click=_delete,
                    args=(chosen, d.key),
                    type="tertiary",
                )
    more = len(found) - len(shown)
    st.caption(
        f"The newest {len(shown):,} of {len(found):,}." if more > 0 else f"{len(found):,} shown."
    )


def _delete(chosen: ClassSet, key: str) -> None:
    try:
        chosen.delete(key, who.requester())
    except KeepRefused as error:
        st.session_state["delete_refused"] = str(error)


def delete_refused() -> None:
    if message := st.session_state.pop("delete_refused", None):
        st.error(markdown_literal(message), icon=":material/block:")


def lock_control(chosen: ClassSet) -> None:
    """The teacher's lock: nothing more is kept in the set, students delete nothing."""
    if not who.requester().teacher:
        if chosen.locked:
            st.caption(":material/lock: The teacher has locked this set.")
        return
    locked = st.toggle("Lock this set", value=chosen.locked, key=f"lock-{chosen.name}")
    if locked != chosen.locked:
        chosen.set_locked(locked, who.requester())
        st.rerun()


# --- they fooled the networks ---------------------------------------------------------------


def fooled_board(chosen: ClassSet, entries: dict[str, ModelEntry]) -> None:
    """The set's drawings that the chosen ANN, CNN or both misread, newest first."""
    drawings = read_set(chosen)
    if not drawings.drawings:
        st.info(
            "No drawings kept yet: keep some on the Draw page, and see which fool the networks."
        )
        return
    predicted = {}
    for kind, entry in entries.items():
        reading = readings(entry, chosen)
        if reading is not None:
            predicted[kind] = reading
    if not predicted:
        return
    found = fooled(drawings, predicted)
    total = len(drawings.drawings)
    wrong = {k: int((p != drawings.labels).sum()) for k, p in predicted.items()}
    st.markdown(
        " · ".join(
            f"**{kind.upper()}** misread {wrong[kind]:,} of {total:,} ({wrong[kind] / total:.0%})"
            for kind in KINDS
            if kind in wrong
        )
        + (
            f" · **both** {sum(len(f.read) == len(predicted) for f in found):,}"
            if len(predicted) == len(KINDS)
            else ""
        )
    )
    if not found:
        st.success(
            "Nothing has fooled them yet. Try a harder 1, 7 or 9!", icon=":material/emoji_events:"
        )
        return
    images = seen_images(chosen)
    columns = 6
    shown = found[:BOARD_SIZE]
    for start in range(0, len(shown), columns):
        for column, one in zip(st.columns(columns), shown[start : start + columns], strict=False):
            read = _what_each_read(one.read, predicted)
            when = (
                datetime.datetime.fromtimestamp(one.kept_at).strftime("%H:%M")
                if one.kept_at
                else "imported"
            )
            column.image(enlarge(images[one.index], 112))
            column.markdown(f"**{one.digit}** by {markdown_literal(one.writer)}, {when}  \n{read}")
    if len(found) > len(shown):
        st.caption(f"The newest {len(shown)} of {len(found):,}.")


def _what_each_read(wrong: dict[str, int], predicted: dict[str, np.ndarray]) -> str:
    """ "Both read 4", or "ANN read 4 (CNN right)", or each network's reading."""
    if len(wrong) == len(predicted) > 1 and len(set(wrong.values())) == 1:
        return f"Both read {next(iter(wrong.values()))}"
    right = [kind.upper() for kind in predicted if kind not in wrong]
    read = " · ".join(f"{kind.upper()} read {digit}" for kind, digit in wrong.items())
    return read + (f" ({', '.join(right)} right)" if right else "")


def held_out_sentence(model: SavedModel) -> str:
    """How a model trained on drawings reads the writers it did not learn from: the figure
    that matters (its own writers' drawings it has seen)."""
    if model.drawings is None:
        return ""
    name = markdown_literal(model.drawings)
    if model.held_out_accuracy is None:
        return (
            f" It learned from all of {name}: with fewer than {HELD_OUT_MIN_WRITERS} writers, "
            "none could be held out to measure how it reads new ones."
        )
    writers = model.held_out_writers
    return (
        f" On the drawings of {writers} writer{'s' * (writers != 1)} of {name} it did not "
        f"learn from: **{model.held_out_accuracy:.1%}**."
    )


# --- the Train page: learn from the class's drawings ----------------------------------------


def drawings_choice(training: TrainingConfig) -> tuple[str | None, float]:
    """Whether to learn from a drawings set as well, and how much of the training it makes."""
    names = ui.drawings_folder().names()
    chosen = st.selectbox(
        "Also learn from a drawings set (the class's handwriting)",
        names,
        index=names.index(training.drawings) if training.drawings in names else None,
        placeholder="No: MNIST alone" if names else "No drawings yet: keep some on the Draw page",
        disabled=not names,
        help=f"A quarter of the set's writers (if it has {HELD_OUT_MIN_WRITERS} or more) are "
        "held out: the finished model says how it reads writers it did not learn from.",
    )
    weight = st.slider(
        "Share of the training images that are the set's drawings",
        0.05,
        MAX_DRAWINGS_WEIGHT,
        float(training.drawings_weight),
        0.05,
        disabled=chosen is None,
        help="Each drawing is drawn again, placed anew, as often as this share takes.",
    )
    return chosen, weight


def leaderboard_name() -> str | None:
    """While a challenge is open: the name the student goes by on its board."""
    open_one = current(ui.drawings_folder())
    if open_one is None or not open_one.is_open:
        return None
    name = st.text_input(
        f"Your name on the board of {open_one.title!r}",
        key="writer_name",
        max_chars=MAX_WRITER_NAME,
        placeholder="a first name or initials",
    )
    return " ".join(name.split()) or None


def finetune_form() -> None:
    """Fine-tune a saved model on a drawings set: a new model, named after its parent."""
    names = ui.drawings_folder().names()
    entries = [e for e in ui.registry().entries() if "config" in e.meta]
    with st.expander("Fine-tune a saved model on the class's drawings", icon=":material/tune:"):
        if not names or not entries:
            st.caption("Needs a saved model trained here and a drawings set (Draw page: Keep).")
            return
        by_label = {entry.label: entry for entry in entries}
        parent = by_label[st.selectbox("Model to start from", list(by_label), key="ft_model")]
        set_name = st.selectbox("Drawings set", names, key="ft_set")
        epochs = st.number_input("Epochs", 1, 20, FINETUNE_EPOCHS, key="ft_epochs")
        st.caption(
            f"At a tenth of the model's learning rate, over the set's drawings and "
            f"{FINETUNE_MNIST_IMAGES:,} MNIST digits, so it keeps what it knew. The model "
            "itself stays as it is: the fine-tuned one is saved as a new model."
        )
        if st.button("Start fine-tuning", icon=":material/tune:"):
            job = finetune_job(
                parent.name,
                parent.meta["config"],
                set_name,
                epochs=int(epochs),
                name=f"{parent.name}-{set_name}",
                data_path=ui.mnist().reference,
                drawings_dir=str(ui.drawings_folder().root),
                owner_name=leaderboard_name_given(),
            )
            ui.start_training([job])


def leaderboard_name_given() -> str | None:
    name = " ".join(str(st.session_state.get("writer_name") or "").split())
    return name[:MAX_WRITER_NAME] or None
