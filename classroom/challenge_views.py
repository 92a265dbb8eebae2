"""The class challenge on the pages: the teacher opens and closes it, the leaderboard made
for the projector scores each model as it finishes. The rules are
``mnist_core.challenge``'s."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import streamlit as st

import ui
from classroom import drawings_views, who
from mnist_core.challenge import (
    Caps,
    Challenge,
    Score,
    close_challenge,
    current,
    open_challenge,
    ranked,
)
from mnist_core.class_drawings import CLASS_SET, KeepRefused, as_seen
from mnist_core.drawings import DrawingSet
from mnist_core.evaluation import evaluate_inputs
from mnist_core.registry import ModelEntry
from mnist_core.text import markdown_literal
from mnist_core.training_queue import QueueRefused


def challenge() -> Challenge | None:
    return current(ui.drawings_folder())


@st.cache_resource(max_entries=4, show_spinner=False)
def _held_back(set_path: str, version: int, writers: tuple[str, ...], _drawings: DrawingSet):
    chosen = [i for i, d in enumerate(_drawings.drawings) if d.writer in set(writers)]
    subset = DrawingSet(
        _drawings.name, _drawings.path, tuple(_drawings.drawings[i] for i in chosen)
    )
    return as_seen(subset), subset.labels


def held_back_digits(open_one: Challenge) -> tuple[np.ndarray, np.ndarray]:
    """The held-back writers' drawings as the networks see them, and their labels: the
    server's alone, never sent to a student's page."""
    chosen = drawings_views.class_set(open_one.set_name)
    drawings = chosen.read()  # the full set: the filtered one is what students see
    return _held_back(str(chosen.path), chosen.version(), open_one.held_back, drawings)


@st.cache_resource(max_entries=256, show_spinner=False)
def _score(name: str, version: float, digits_version: int, _model, _images, _labels) -> float:
    return evaluate_inputs(_model, _images[..., None], _labels).accuracy


def score(entry: ModelEntry, open_one: Challenge) -> Score | None:
    """``entry`` scored on the held-back drawings, once per model file."""
    model = ui.usable_model(entry)
    if model is None:
        return None
    images, labels = held_back_digits(open_one)
    if len(labels) == 0:
        return None
    chosen = drawings_views.class_set(open_one.set_name)
    accuracy = _score(
        entry.name, entry.model_path.stat().st_mtime, chosen.version(), model, images, labels
    )
    return Score(
        entry.name,
        entry.meta.get("owner_name") or entry.name,
        entry.kind,
        accuracy,
        entry.test_accuracy,
        int(entry.meta.get("params") or 0),
        float(entry.meta.get("train_seconds") or 0),
    )


def board(open_one: Challenge) -> tuple[list[Score], list[tuple[ModelEntry, str]]]:
    """The ranked scores of every model that competes, and those outside the caps (why)."""
    scores, outside = [], []
    for entry in ui.registry().entries():
        if not open_one.counts(entry):
            continue
        if reason := open_one.caps.broken_by(entry):
            outside.append((entry, reason))
        elif (result := score(entry, open_one)) is not None:
            scores.append(result)
    return ranked(scores), outside


def leaderboard_table(scores: list[Score] | tuple[Score, ...]) -> None:
    """The board, large enough to read from the back of the room."""
    if not scores:
        st.info("No model has finished yet: train one on the Train page while it is open.")
        return
    frame = pd.DataFrame(
        {
            "Rank": [s.rank for s in scores],
            "Who": [s.owner_name for s in scores],
            "Model": [s.name for s in scores],
            "Kind": [s.kind.upper() for s in scores],
            "Class's drawings": [s.accuracy for s in scores],
            "MNIST test": [s.mnist_accuracy for s in scores],
            "Parameters": [s.params for s in scores],
            "Seconds": [s.seconds for s in scores],
        }
    )
    styled = frame.style.format(
        {
            "Class's drawings": "{:.1%}",
            "MNIST test": "{:.2%}",
            "Parameters": "{:,}",
            "Seconds": "{:.0f}",
            "Who": markdown_literal,
            "Model": markdown_literal,
        }
    ).set_table_styles(
        [
            {"selector": "td, th", "props": "font-size: 1.4rem"},
            {"selector": "td.col2 *", "props": "overflow-wrap: anywhere"},
        ]
    )
    st.table(styled.hide(axis="index"))


def rules(one: Challenge) -> str:
    caps = one.caps
    parts = [
        f"at most {caps.max_params:,} parameters" if caps.max_params else "",
        f"{caps.max_seconds:g} s of training" if caps.max_seconds else "",
        f"{caps.max_train_images:,} training images" if caps.max_train_images else "",
    ]
    limits = ", ".join(p for p in parts if p) or "no caps"
    writers = len(one.held_back)
    return (
        f"Scored on the drawings of {writers} writer{'s' * (writers != 1)} of "
        f"{markdown_literal(one.set_name)} held back (no one trains on them, no student sees "
        f"them); {limits}."
    )


def teacher_form(one: Challenge | None) -> None:
    """Open a challenge (its set, the writers held back, caps) or close the open one."""
    me = who.requester()
    if not me.teacher:
        return
    folder = ui.drawings_folder()
    if one is not None and one.is_open:
        if st.button("Close the challenge", icon=":material/flag:", type="primary"):
            scores, _ = board(one)
            close_challenge(folder, scores, me)
            st.rerun()
        return
    with st.expander("Open a challenge (teacher)", icon=":material/sports_score:"):
        sets = [n for n, path in folder.paths().items() if path.is_dir()] or [CLASS_SET]
        set_name = st.selectbox("The class's drawings", sets, key="challenge_set")
        writers = sorted(set(folder.load(set_name, allow_empty=True).writers))
        with st.form("open_challenge", border=False):
            title = st.text_input("Title", "Class challenge", max_chars=60)
            held_back = st.multiselect(
                "Writers held back as the test",
                writers,
                default=writers[: max(1, len(writers) // 4)] if len(writers) > 1 else [],
                help="Their drawings are the challenge's test: nobody trains on them, no "
                "student sees them, until it closes.",
            )
            params, seconds, images = st.columns(3)
            max_params = params.number_input("Most parameters (0: any)", 0, 10**8, 0, 10_000)
            max_seconds = seconds.number_input("Most seconds (0: any)", 0, 3600, 60, 10)
            st.caption(
                "The seconds and images caps become the training queue's limits for students "
                "(the sidebar's Teacher panel); a model over a cap is listed, not ranked."
            )
            max_images = images.number_input("Most training images (0: any)", 0, 60_000, 0, 1000)
            opened = st.form_submit_button("Open the challenge", icon=":material/sports_score:")
        if opened:
            caps = Caps(max_params or None, float(max_seconds) or None, max_images or None)
            try:
                open_challenge(folder, set_name, held_back, caps, me, title)
            except KeepRefused as error:
                st.error(markdown_literal(error), icon=":material/block:")
                return
            queue = ui.training_queue()  # students' runs are held to the caps as they start
            limits = queue.limits
            try:
                queue.set_limits(
                    replace(
                        limits,
                        max_seconds=caps.max_seconds or limits.max_seconds,
                        max_train_size=caps.max_train_images or limits.max_train_size,
                    ),
                    me,
                )
            except QueueRefused as error:
                st.warning(
                    "The challenge is open, but the training queue did not take its caps "
                    f"({markdown_literal(error)}): models beyond them are not ranked.",
                    icon=":material/cloud_off:",
                )
                return
            st.rerun()


def outside_caps(outside: list[tuple[ModelEntry, str]]) -> None:
    if outside:
        st.caption(
            "Not ranked (over a cap): "
            + "; ".join(f"{markdown_literal(e.name)} ({reason})" for e, reason in outside)
        )
