"""Train: pick a network and its settings, start, and watch the curves grow live."""

import streamlit as st

import ui
from mnist_core.charts import training_curves
from mnist_core.models import ACTIVATIONS, OPTIMIZERS, POOLINGS, SCHEDULES, parse_layer_sizes
from mnist_core.jobs import default_job, validation_count
from mnist_core.worker import TrainingBusy

st.title("Train a network")
data = ui.mnist()
ui.data_banner(data)
service = ui.training_service()

kind = st.segmented_control(
    "Network", ["ann", "cnn"], default="cnn", key="kind",
    format_func={"ann": "ANN (dense)", "cnn": "CNN (convolutional)"}.get,
) or "cnn"
defaults = default_job(kind)
model, training = defaults.model, defaults.training
max_images = len(data.y_train) - validation_count(data, training)

settings, live = st.columns([1, 2], gap="large")
with settings, st.form("settings"):
    epochs = st.number_input("Epochs", 1, 200, training.epochs)
    seconds = st.number_input("Time budget in seconds (0: no limit)", 0, 3600, 0, step=10)
    train_size = st.slider("Training images", min(1000, max_images), max_images, max_images,
                           step=500 if max_images > 5000 else 100)
    batch_size = st.select_slider("Batch size", [16, 32, 64, 128, 256, 512, 1024],
                                  training.batch_size)
    optimizer = st.selectbox("Optimizer", OPTIMIZERS, OPTIMIZERS.index(model.optimizer),
                             format_func={"adam": "Adam", "sgd": "SGD with momentum",
                                          "rmsprop": "RMSprop"}.get)
    rates = sorted({1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2, 0.1, model.learning_rate})
    learning_rate = st.select_slider("Learning rate", rates, model.learning_rate)
    schedule = st.selectbox(
        "Learning-rate schedule", SCHEDULES, SCHEDULES.index(model.schedule),
        format_func={"one-cycle": "One cycle (warm up, then anneal)", "constant": "Constant"}.get,
        help="One cycle raises the rate to the value above, then lowers it to zero by the "
             "end of the run (last epoch or time budget): fewer epochs for the same accuracy.")
    if kind == "ann":
        layers = st.text_input("Hidden layers (units, comma-separated)",
                               ", ".join(map(str, model.hidden_units)))
        activation = st.selectbox("Activation", ACTIVATIONS, ACTIVATIONS.index(model.activation))
        architecture = {"activation": activation}
    else:
        layers = st.text_input("Conv filters per block (comma-separated)",
                               ", ".join(map(str, model.filters)))
        kernel_size = st.select_slider("Kernel size", [3, 5, 7], model.kernel_size)
        pooling = st.selectbox("Pooling", POOLINGS, POOLINGS.index(model.pooling))
        batch_norm = st.checkbox("Batch normalisation", model.batch_norm,
                                 help="Normalise each conv layer's output: steadier training, slower epochs on a CPU.")
        dense_units = st.number_input("Dense units before the output (0: none)", 0, 1024,
                                      model.dense_units, step=32)
        architecture = {"kernel_size": kernel_size, "pooling": pooling,
                        "batch_norm": batch_norm, "dense_units": dense_units}
    dropout = st.slider("Dropout", 0.0, 0.8, model.dropout, step=0.05)
    augment = st.checkbox("Augment: random shifts, turns and zooms", model.augment,
                          help="Helps with hand-drawn digits; each epoch takes a little longer.")
    name = st.text_input("Model name (optional)", placeholder=f"{kind}-DATE-TIME")
    start = st.form_submit_button("Start training", icon=":material/play_arrow:", type="primary")

if start:
    try:
        sizes = parse_layer_sizes(layers)
        job = default_job(
            kind, epochs=epochs, time_budget=seconds or None, train_size=train_size,
            batch_size=batch_size, optimizer=optimizer, learning_rate=learning_rate,
            schedule=schedule, dropout=dropout, augment=augment, name=name.strip() or None,
            data_path=data.reference,
            **{"hidden_units" if kind == "ann" else "filters": sizes}, **architecture,
        )
        job.check()
        service.start([job])
    except (ValueError, TrainingBusy) as error:
        settings.error(f"Cannot start: {error}")

run = service.current
registry = ui.registry()
saved = [(entry.name, entry.kind, entry.meta.get("history", {}).get("epoch", []))
         for entry in map(registry.newest, ("ann", "cnn")) if entry is not None]


# While a run trains, the numbers poll twice a second and the curves every two seconds
# (redrawing the charts costs the server and the browser CPU that training needs on a
# small machine); otherwise both poll now and then, to see others' runs start.
training_now = run is not None and run.active


@st.fragment(run_every=0.5 if training_now else 3.0)
def live_status():
    run = service.current
    if run is None:
        st.info("No training yet on this server: choose the settings above and press Start.")
        return
    state = run.snapshot()
    label = " then ".join(job.kind.upper() for job in run.jobs)
    st.subheader(f"{label}: {state['status']}")
    st.progress(run.overall_progress(state), text=state["message"])
    elapsed, speed, stop = st.columns([1, 1, 1])
    elapsed.metric("Elapsed", f"{state['elapsed']:.1f} s")
    speed.metric("Images per second", f"{state['images_per_s']:,.0f}")
    if state["active"] and stop.button("Stop", icon=":material/stop:",
                                       help="Stops after this batch and keeps the model so far."):
        run.stop()
    for meta in state["saved"]:
        stopped = " (stopped early)" if meta["stopped"] else ""
        st.success(f"{meta['kind'].upper()} saved as **{meta['name']}**{stopped}: "
                   f"test accuracy **{meta['test_accuracy']:.2%}** after {meta['epochs']:g} "
                   f"epochs in {meta['train_seconds']:.0f} s.")
    if state["status"] == "failed":
        st.error(f"Training failed: {state['error']}")
    if state["saved"] and not state["active"]:
        st.page_link("pages/draw.py", label="Draw a digit and try it", icon=":material/draw:")
    ui.rerun_when_run_changes(run, state)


@st.fragment(run_every=2.0 if training_now else 3.0)
def live_curves():
    run = service.current
    if run is None:
        return
    state = run.snapshot()
    histories = [(job.kind, batches, epochs) for job, batches, epochs
                 in zip(run.jobs, state["batches"], state["epochs"]) if batches]
    this_run = {meta["name"] for meta in state["saved"]}
    others = [curve for curve in saved if curve[0] not in this_run]
    loss_chart, accuracy_chart = st.columns(2)
    loss_chart.plotly_chart(training_curves(histories, "loss", others), key="loss_curves")
    accuracy_chart.plotly_chart(training_curves(histories, "accuracy", others), key="accuracy_curves")
    st.caption("Faint dotted lines: validation curves of the newest saved ANN and CNN, to compare.")


with live:
    live_status()
    live_curves()
