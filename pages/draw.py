"""Draw: a digit on the canvas, what the networks see, and both predictions side by side."""

import streamlit as st
from streamlit_drawable_canvas import st_canvas

import ui
from mnist_core.charts import probability_bars
from mnist_core.inference import predict_digit, top_k
from mnist_core.preprocessing import enlarge, preprocess_canvas
from mnist_core.registry import ModelLoadError
from mnist_core.jobs import quick_jobs
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
    st.info(f"No {names} model yet. Train quick default models here (about a minute), "
            "or choose your own settings on the Train page.")
    if st.button(f"Train quick {names} models", type="primary"):
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

canvas_column, seen_column = st.columns([3, 2])
with canvas_column:
    brush = st.slider("Brush size", 10, 40, 24, key="brush")
    canvas = st_canvas(
        stroke_width=brush, stroke_color="#FFFFFF", background_color="#000000",
        height=336, width=336, drawing_mode="freedraw", return_image_data=True,
        key=ui.canvas_key(),
    )
    st.button("Clear", icon=":material/delete:", on_click=ui.clear_canvas)
    st.caption("Undo, redo and reset are on the canvas toolbar (hover over the canvas).")

drawing = None if canvas.image_data is None else preprocess_canvas(canvas.image_data)
with seen_column:
    st.markdown("**What the networks see** (28×28, like MNIST)")
    if drawing is None:
        st.info("Draw a digit on the black square, as large as you like.")
    else:
        st.image(enlarge(drawing.image, 224))

predictions = {}
for column, kind in zip(st.columns(2), KINDS):
    with column:
        if not entries[kind]:
            st.subheader(f"{kind.upper()}: no model yet")
            continue
        by_name = {entry.name: entry for entry in entries[kind]}
        # Keyed on the newest name, so a newly trained model becomes the default.
        name = st.selectbox(f"{kind.upper()} model", list(by_name),
                            format_func=lambda n: by_name[n].label, key=f"{kind}-{entries[kind][0].name}")
        try:
            model = ui.load_model(by_name[name])
        except ModelLoadError as error:
            st.error(f"This model cannot be used: {error}. Pick another or train a new one.")
            continue
        if drawing is None:
            st.subheader(f"{kind.upper()}: waiting for a drawing")
            continue
        probabilities = predict_digit({kind: model}, drawing.image)[kind]
        (best, confidence), *others = top_k(probabilities, 3)
        predictions[kind] = best
        st.markdown(f"## {kind.upper()} predicts **{best}**")
        st.caption(f"{confidence:.0%} sure; then " + ", ".join(f"{d} ({p:.0%})" for d, p in others))
        st.plotly_chart(probability_bars(probabilities, kind), key=f"bars-{kind}")

if len(set(predictions.values())) > 1:
    st.warning(f"The networks disagree: ANN reads {predictions['ann']}, CNN reads {predictions['cnn']}.")
