"""Draw: a digit on the canvas (or a photo), what the networks see, both predictions side by side."""

import streamlit as st
from streamlit_drawable_canvas import st_canvas

import ui
from mnist_core.charts import probability_bars
from mnist_core.inference import predict_digit, top_k
from mnist_core.jobs import quick_jobs
from mnist_core.preprocessing import (
    MAX_UPLOAD_BYTES, ImageError, enlarge, ink_from_rgba, is_blank, preprocess_ink, preprocess_photo,
)
from mnist_core.registry import ModelLoadError
from mnist_core.worker import TrainingBusy

KINDS = ("ann", "cnn")

st.title("Draw a digit")
data = ui.mnist()
ui.data_banner(data)
registry = ui.registry()
service = ui.training_service()
entries = {kind: registry.entries(kind) for kind in KINDS}
missing = [kind for kind in KINDS if not entries[kind]]
run = service.current

if missing:
    names = " and ".join(kind.upper() for kind in missing)
    models = "models" if len(missing) > 1 else "model"
    st.info(f"No {names} model yet. Train quick default {models} here (about a minute), "
            "or choose your own settings on the Train page.")
    if st.button(f"Train quick {names} {models}", type="primary"):
        try:
            run = service.start(quick_jobs(missing, data_path=data.reference))
        except TrainingBusy as error:
            st.warning(f"Cannot start: {error}")


@st.fragment(run_every=0.5 if run is not None and run.active else None)
def training_progress():
    run = service.current
    if run is None:
        return
    state = run.snapshot()
    if state["active"]:
        st.progress(run.overall_progress(state), text=f"{state['message']}...")
    elif state["status"] == "failed":
        st.error(f"Training failed: {state['error']}")
    ui.rerun_when_run_changes(run, state)


training_progress()

# A fragment: each stroke reruns only what follows, not the data and model checks above.
@st.fragment
def draw_and_compare() -> None:
    source = st.segmented_control("Input", ["Draw", "Photo"], default="Draw", key="source",
                                  format_func={"Draw": ":material/draw: Draw",
                                               "Photo": ":material/photo_camera: Photo"}.get) or "Draw"
    drawing, hint = None, "Draw a digit on the black square, as large as you like."
    input_column, *prediction_columns = st.columns([4, 3, 3], gap="medium")
    with input_column:
        if source == "Draw":
            canvas = st_canvas(
                stroke_width=st.session_state.get("brush", 24), stroke_color="#FFFFFF",
                background_color="#000000", height=336, width=336, drawing_mode="freedraw",
                return_image_data=True, key=ui.canvas_key(),
            )
            clear, brush = st.columns([1, 2], vertical_alignment="bottom")
            clear.button("Clear", icon=":material/delete:", on_click=ui.clear_canvas)
            brush.slider("Brush size", 10, 40, 24, key="brush")
            st.caption("Undo and redo: the canvas toolbar (hover over the canvas).")
            if canvas.image_data is not None:
                ink = ink_from_rgba(canvas.image_data)
                drawing = preprocess_ink(ink)
                if drawing is None and not is_blank(ink):
                    hint = "That is too small to read: draw a bigger digit."
        else:
            photo = st.file_uploader(
                "A photo of one handwritten digit (dark pen on light paper)",
                type=["png", "jpg", "jpeg", "webp", "bmp", "gif"], key="photo",
                help=f"Up to {MAX_UPLOAD_BYTES // 2**20} MB. Crop it to the digit for best results.")
            hint = "Upload a photo of a digit written on paper."
            if photo is not None:
                try:
                    drawing = preprocess_photo(photo.getvalue())
                    st.image(photo, width=336)
                except ImageError as error:
                    st.error(str(error))
                    hint = "Try another photo."

    predictions = {}
    for column, kind in zip(prediction_columns, KINDS):
        with column:
            if not entries[kind]:
                st.subheader(f"{kind.upper()}: no model yet")
                continue
            by_label = {entry.label: entry for entry in entries[kind]}
            # Keyed on the newest name, so a newly trained model becomes the default.
            label = st.selectbox(f"{kind.upper()} model", list(by_label), key=f"{kind}-{entries[kind][0].name}")
            try:
                model = ui.load_model(by_label[label])
            except ModelLoadError as error:
                st.error(f"This model cannot be used: {error}. Pick another or train a new one.")
                continue
            if drawing is None:
                st.subheader(f"{kind.upper()}: waiting for a drawing")
                continue
            probabilities = predict_digit({kind: model}, drawing.image)[kind]
            (best, confidence), *others = top_k(probabilities, 3)
            predictions[kind] = best
            st.markdown(f"### {kind.upper()} predicts **{best}**")
            st.markdown(f"**{confidence:.0%} sure**; then "
                        + ", ".join(f"**{d}** ({p:.0%})" for d, p in others))
            st.html(probability_bars(probabilities, kind))

    if len(predictions) == 2:
        if predictions["ann"] != predictions["cnn"]:
            st.warning(f"### The networks disagree: ANN reads {predictions['ann']}, "
                       f"CNN reads {predictions['cnn']}", icon=":material/compare_arrows:")
        else:
            st.success(f"### Both networks read {predictions['cnn']}", icon=":material/check_circle:")

    st.markdown("#### What the networks see")
    if drawing is None:
        st.info(hint)
    else:
        steps = [(drawing.cropped, "cropped to the ink"), (drawing.redrawn, "strokes made MNIST-thin"),
                 (drawing.fitted, "fitted in 20×20"), (drawing.image, "centred in 28×28: the input")]
        for column, (image, caption) in zip(st.columns(len(steps)), steps):
            column.image(enlarge(image, 160), caption=caption)


draw_and_compare()
