"""Draw: a digit on the canvas (or a photo), what the networks see, both predictions."""

import streamlit as st

import ui
from classroom import drawings_views
from mnist_core.jobs import quick_jobs
from mnist_core.models import KINDS

ui.run_through_app_navigation()
st.title("Draw a digit")
data = ui.mnist()
ui.data_banner(data)
entries = ui.entries_by_kind()

if missing := [kind for kind in KINDS if not entries[kind]]:
    names = " and ".join(kind.upper() for kind in missing)
    models = "models" if len(missing) > 1 else "model"
    st.info(
        f"No {names} model yet. Train quick default {models} here (about a minute), "
        "or choose your own settings on the Train page."
    )
    if st.button(f"Train quick {names} {models}", type="primary"):
        ui.start_training(quick_jobs(missing, data_path=data.reference))
# Only while this browser's own run trains (its quick models, say): thirty browsers draw
# here while the teacher's run trains, and a poll is a rerun the server makes for each, which
# a stroke's rerun waits behind (bench/load.py lost strokes to them).
ui.poll_training(ui.progress_bar, every=3.0, own_runs_only=True)


@st.fragment  # each stroke reruns only this, not the data and model checks above
def draw_and_compare() -> None:
    source = st.segmented_control(
        "Input",
        ["Draw", "Photo"],
        default="Draw",
        key="source",
        format_func={"Draw": ":material/draw: Draw", "Photo": ":material/photo_camera: Photo"}.get,
    )
    input_column, *prediction_columns = st.columns([4, 3, 3], gap="medium")
    with input_column:
        drawing, hint = ui.photo_digit() if source == "Photo" else ui.drawn_digit()
    read = {}
    for column, kind in zip(prediction_columns, KINDS, strict=True):
        with column:
            model = ui.model_choice(kind, entries[kind])
            if model is not None and drawing is None:
                st.subheader(f"{kind.upper()}: waiting for a drawing")
            elif model is not None:
                read[kind] = ui.prediction(kind, model, drawing)
    if len(read) == len(KINDS):
        ui.verdict(read)
    drawings_views.kept_toast()
    if drawing is not None and source == "Draw":
        with input_column:
            drawings_views.keep_form(drawing, ui.drawn_strokes())
    st.markdown("#### What the networks see")
    if drawing is None:
        st.info(hint)
    else:
        ui.pipeline_strip(drawing)


draw_and_compare()
