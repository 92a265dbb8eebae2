"""Robustness: both models on test digits moved, turned, resized, blurred, noisy or partly
hidden, and on the user's own drawing, moved and turned live."""

import dataclasses

import numpy as np
import streamlit as st

import ui
from mnist_core.charts import accuracy_bars, robustness_curves
from mnist_core.models import KINDS
from mnist_core.preprocessing import enlarge
from mnist_core.robustness import PERTURBATIONS, handwriting_reading, move, reading

ui.run_through_app_navigation()
SHIFT_RANGE = 8  # pixels the drawing can be moved each way
TURN_RANGE = 45  # degrees it can be turned each way
st.title("Robustness: moved, turned, blurred digits")
st.markdown(
    "The dense net (ANN) sees 784 separate pixels; the convnet (CNN) looks for the same "
    "small strokes anywhere in the image. What does that change when a digit is moved, "
    "turned, resized, blurred, speckled or partly hidden? Measured here on test digits, "
    "then on your own drawing."
)
data = ui.mnist()
ui.data_banner(data)
entries = ui.entries_by_kind()
if missing := [kind for kind in KINDS if not entries[kind]]:
    names = " and ".join(kind.upper() for kind in missing)
    ui.ask_to_train(f"No {names} model yet")
    if len(missing) == len(KINDS):
        st.stop()

chosen = {}  # kind -> the chosen model's entry, if it loads
for column, kind in zip(st.columns(len(KINDS)), KINDS, strict=True):
    with column:
        entry = ui.entry_choice(kind, entries[kind])
        if entry is not None and ui.usable_model(entry) is not None:
            chosen[kind] = entry
if not chosen:
    st.stop()

measured = {
    kind: result for kind, entry in chosen.items() if (result := ui.robustness(entry)) is not None
}
if not measured:
    st.stop()
digits = next(iter(measured.values())).digits
st.subheader(f"Accuracy on {digits:,} test digits, changed more and more")
st.plotly_chart(robustness_curves(measured), key="robustness_curves", theme=None)
st.caption(
    "The same test digits for both models, balanced over the ten digits. "
    + " ".join(f"**{p.title}** ({p.unit}): {p.meaning}." for p in PERTURBATIONS)
)
st.markdown("#### What the measurements show")
st.markdown("\n".join(f"- {sentence}" for sentence in reading(measured)))

st.header("Other people's handwriting")


def other_handwriting() -> None:
    """Both models on a drawings set: per source of handwriting and per digit, in words."""
    names = ui.drawings_folder().names()
    if not names:
        st.info(
            "No drawings set yet: put real people's handwriting, as JSON lines of strokes, in "
            "the drawings folder (`drawings/`, or `MNIST_DRAWINGS_DIR`) to see how each "
            "network reads writers it never saw."
        )
        return
    name = st.selectbox("Drawings set", names, key="robustness_drawings")
    digits = ui.drawings_digits(name)
    if digits is None:
        return
    results = {k: r for k, e in chosen.items() if (r := ui.evaluation(e, digits)) is not None}
    if not results:
        return
    st.markdown(
        "Each digit drawn on the canvas with the Draw page's brush, placed and sized as "
        "people draw, and read through the page's own preprocessing."
    )
    st.markdown("\n".join(f"- {sentence}" for sentence in handwriting_reading(
        digits, results, {kind: entry.test_accuracy for kind, entry in chosen.items()}
    )))  # fmt: skip
    by_digit = {k.upper(): (k, r.per_class_accuracy) for k, r in results.items()}
    st.plotly_chart(accuracy_bars(by_digit), key="handwriting_digits")
    sources = sorted(set(digits.sources or ()))
    if len(sources) > 1:
        shares = {k: r.accuracy_by(digits.sources) for k, r in results.items()}
        by_source = {k.upper(): (k, np.array([shares[k][s] for s in sources])) for k in results}
        st.plotly_chart(
            accuracy_bars(by_source, sources, "where the handwriting was collected"),
            key="handwriting_sources",
        )


other_handwriting()

st.header("Your drawing")


@st.fragment  # moving a slider reruns only this, not the measurements above
def your_drawing() -> None:
    drawing = ui.current_drawing()
    if drawing is None:
        st.info("Draw a digit on the Draw page first: it shows up here, to move and turn.")
        st.page_link("pages/draw.py", label="Draw a digit", icon=":material/draw:")
        return
    controls, picture, *prediction_columns = st.columns([3, 2, 3, 3], gap="medium")
    with controls:
        right = st.slider("Move right (px)", -SHIFT_RANGE, SHIFT_RANGE, 0, key="move_right")
        down = st.slider("Move down (px)", -SHIFT_RANGE, SHIFT_RANGE, 0, key="move_down")
        turn = st.slider("Turn clockwise (°)", -TURN_RANGE, TURN_RANGE, 0, step=5, key="turn")
        recentre = st.toggle("Centre it the MNIST way", key="recentre")
        if recentre:
            st.caption(
                "Centred: its centre of mass is moved back to the middle, as the Draw page "
                "does with every drawing. A move is undone before the networks see it; a "
                "turn is not."
            )
    moved = move(drawing.image, right, down, turn, recentre)
    picture.image(enlarge(moved, 224), caption="What the networks see")
    seen = dataclasses.replace(drawing, image=moved)
    read = {}
    for column, (kind, entry) in zip(prediction_columns, chosen.items(), strict=False):
        with column:
            if (model := ui.usable_model(entry)) is not None:
                read[kind] = ui.prediction(kind, model, seen)
    if len(read) == len(KINDS):
        ui.verdict(read)


your_drawing()
