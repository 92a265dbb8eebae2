"""Train: pick a network and its settings, start, and watch the curves grow live."""

import streamlit as st

import ui
from mnist_core.data import MnistData
from mnist_core.jobs import TrainingJob, default_job, validation_count
from mnist_core.models import ACTIVATIONS, KINDS, OPTIMIZERS, POOLINGS, SCHEDULES, parse_layer_sizes

ui.run_through_app_navigation()
st.title("Train a network")
data = ui.mnist()
ui.data_banner(data)


def settings_form(kind: str, data: MnistData) -> TrainingJob | None:
    """The settings of a ``kind`` network, defaults filled in; the job once Start is pressed
    (``ValueError`` names the setting that cannot work)."""
    defaults = default_job(kind)
    model, training = defaults.model, defaults.training
    max_images = len(data.y_train) - validation_count(data, training)
    with st.form("settings"):
        epochs = st.number_input("Epochs", 1, 200, training.epochs)
        seconds = st.number_input("Time budget in seconds (0: no limit)", 0, 3600, 0, step=10)
        train_size = st.slider(
            "Training images",
            min(1000, max_images),
            max_images,
            max_images,
            step=500 if max_images > 5000 else 100,
        )
        batch_size = st.select_slider(
            "Batch size", [16, 32, 64, 128, 256, 512, 1024], training.batch_size
        )
        optimizer = st.selectbox(
            "Optimizer",
            OPTIMIZERS,
            OPTIMIZERS.index(model.optimizer),
            format_func={"adam": "Adam", "sgd": "SGD with momentum", "rmsprop": "RMSprop"}.get,
        )
        rates = sorted({1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2, 0.1, model.learning_rate})
        learning_rate = st.select_slider("Learning rate", rates, model.learning_rate)
        schedule = st.selectbox(
            "Learning-rate schedule",
            SCHEDULES,
            SCHEDULES.index(model.schedule),
            format_func={
                "one-cycle": "One cycle (warm up, then anneal)",
                "constant": "Constant",
            }.get,
            help="One cycle raises the rate to the value above, then lowers it to zero by the "
            "end of the run (last epoch or time budget): fewer epochs for the same accuracy.",
        )
        if kind == "ann":
            layers = st.text_input(
                "Hidden layers (units, comma-separated)", ", ".join(map(str, model.hidden_units))
            )
            activation = st.selectbox(
                "Activation", ACTIVATIONS, ACTIVATIONS.index(model.activation)
            )
            architecture = {"activation": activation}
        else:
            layers = st.text_input(
                "Conv filters per block (comma-separated)", ", ".join(map(str, model.filters))
            )
            kernel_size = st.select_slider("Kernel size", [3, 5, 7], model.kernel_size)
            pooling = st.selectbox("Pooling", POOLINGS, POOLINGS.index(model.pooling))
            batch_norm = st.checkbox(
                "Batch normalisation",
                model.batch_norm,
                help="Normalise each conv layer's output: steadier training, slower epochs "
                "on a CPU.",
            )
            dense_units = st.number_input(
                "Dense units before the output (0: none)", 0, 1024, model.dense_units, step=32
            )
            architecture = {
                "kernel_size": kernel_size,
                "pooling": pooling,
                "batch_norm": batch_norm,
                "dense_units": dense_units,
            }
        dropout = st.slider("Dropout", 0.0, 0.8, model.dropout, step=0.05)
        augment = st.checkbox(
            "Augment: random shifts, turns and zooms",
            model.augment,
            help="Helps with hand-drawn digits; each epoch takes a little longer.",
        )
        name = st.text_input("Model name (optional)", placeholder=f"{kind}-DATE-TIME")
        if not st.form_submit_button(
            "Start training", icon=":material/play_arrow:", type="primary"
        ):
            return None
    layer_sizes = {"hidden_units" if kind == "ann" else "filters": parse_layer_sizes(layers)}
    job = default_job(
        kind,
        epochs=epochs,
        time_budget=seconds or None,
        train_size=train_size,
        batch_size=batch_size,
        optimizer=optimizer,
        learning_rate=learning_rate,
        schedule=schedule,
        dropout=dropout,
        augment=augment,
        name=name.strip() or None,
        data_path=data.reference,
        **layer_sizes,
        **architecture,
    )
    job.check()
    return job


kind = (
    st.segmented_control(
        "Network",
        KINDS,
        default="cnn",
        key="kind",
        format_func={"ann": "ANN (dense)", "cnn": "CNN (convolutional)"}.get,
    )
    or "cnn"
)
settings, live = st.columns([1, 2], gap="large")
with settings:
    try:
        if job := settings_form(kind, data):
            ui.start_training([job])
    except ValueError as error:
        st.error(f"Cannot start: {error}")
with live:
    # While a run trains, the numbers poll twice a second and the curves every two seconds
    # (redrawing the charts costs the server and the browser CPU that training needs on a
    # small machine); otherwise both poll now and then, to see others' runs start.
    ui.poll_training(ui.run_status, every=0.5, idle_every=3.0)
    newest = [entries[0] for entries in ui.entries_by_kind().values() if entries]
    ui.poll_training(lambda run: ui.run_curves_charts(run, newest), every=2.0, idle_every=3.0)
