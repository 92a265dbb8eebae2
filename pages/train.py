"""Train: pick a network and its settings, start, and watch the curves grow live."""

from dataclasses import replace

import streamlit as st

import ui
from classroom import drawings_views, queue_views, who
from mnist_core.data import MnistData
from mnist_core.jobs import (
    STYLE_SHARE,
    TrainingConfig,
    TrainingJob,
    default_job,
    validation_count,
)
from mnist_core.links import job_from_query, job_settings, link
from mnist_core.models import (
    ACTIVATIONS,
    KINDS,
    LOSSES,
    OPTIMIZERS,
    OUTPUT_ACTIVATIONS,
    POOLINGS,
    SCHEDULES,
    parse_layer_sizes,
)
from mnist_core.network_code import network_code
from mnist_core.notebooks import job_export, model_cells
from mnist_core.text import markdown_literal, shortened
from mnist_core.training_queue import Limits

ui.run_through_app_navigation()
st.title("Train a network")
data = ui.mnist()
ui.data_banner(data)


def chosen_job(kind: str, data: MnistData, start: TrainingJob, limits: Limits) -> TrainingJob:
    """The settings of a ``kind`` network, ``start``'s filled in, as a job within
    ``limits``; ``ValueError`` names the setting that cannot work.

    No form: each change reruns the page, so what is wrong shows at once, beside Start, and
    goes as soon as it is fixed. Whole numbers are typed in float inputs without bounds, so
    every value reaches this check ("1e9" too: an integer input reads it as 1) instead of the
    field refusing it in red while Start does nothing.
    """
    model, training = start.model, start.training
    all_images = len(data.y_train) - validation_count(data, training)
    max_images = min(all_images, limits.max_train_size or all_images)
    images = min(training.train_size or all_images, max_images)
    epochs = st.number_input("Epochs", value=float(training.epochs), **WHOLE)
    cap = round(limits.max_seconds) if limits.max_seconds else None
    budget = round(training.time_budget or 0)
    seconds = st.number_input(
        f"Time budget in seconds (the teacher's limit: {cap})"
        if cap
        else "Time budget in seconds (0: no limit)",
        value=float(min(budget or cap, cap) if cap else budget),
        **WHOLE | {"step": 10.0},
    )
    train_size = st.slider(
        "Training images",
        min(1000, max_images, images),
        max_images,
        images,
        step=500 if max_images > 5000 else 100,
    )
    batch_size = st.select_slider(
        "Batch size",
        sorted({16, 32, 64, 128, 256, 512, 1024, training.batch_size}),
        training.batch_size,
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
        activation = st.selectbox("Activation", ACTIVATIONS, ACTIVATIONS.index(model.activation))
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
            help="Normalise each conv layer's output: steadier training, slower epochs on a CPU.",
        )
        dense_units = st.number_input(
            "Dense units before the output (0: none)",
            value=float(model.dense_units),
            **WHOLE | {"step": 32.0},
        )
        architecture = {
            "kernel_size": kernel_size,
            "pooling": pooling,
            "batch_norm": batch_norm,
            "dense_units": dense_units,
        }
    dropout = st.slider("Dropout", 0.0, max(0.8, model.dropout), model.dropout, step=0.05)
    output_activation = st.selectbox(
        "Output layer",
        OUTPUT_ACTIVATIONS,
        OUTPUT_ACTIVATIONS.index(model.output_activation),
        help="Softmax turns the ten outputs into probabilities; sigmoid and tanh score "
        "each digit on its own (tanh needs the mean squared error loss).",
    )
    loss = st.selectbox(
        "Loss",
        LOSSES,
        LOSSES.index(model.loss),
        format_func={"crossentropy": "Cross-entropy", "mse": "Mean squared error"}.get,
    )
    augment = st.checkbox(
        "Augment: random shifts, turns and zooms",
        model.augment,
        help="Each epoch takes longer (1.2x for the CNN, 1.5x for the ANN), and on real "
        "people's handwriting it helped only the ANN's 1s (docs/benchmarks.md).",
    )
    styles = st.checkbox(
        "Also learn European handwriting: slashed 0s, 1s with an up-stroke, crossed 7s",
        training.styles > 0,
        help=f"{STYLE_SHARE:.0%} of MNIST's training 0s, 1s and 7s are written that way (its "
        "test digits stay as they are): much of Europe writes them so, MNIST's American "
        "writers never did, and the networks misread them otherwise.",
    )
    drawings, weight = drawings_views.drawings_choice(training)
    owner_name = drawings_views.leaderboard_name()
    name = st.text_input("Model name (optional)", start.name or "", placeholder=f"{kind}-DATE-TIME")
    # Every field is shown before anything is checked: a fault hides none of them.
    seconds = whole(seconds, "the time budget")
    if cap and not 1 <= seconds <= cap:
        raise ValueError(f"the teacher's limit on the time budget is {cap} s: choose 1-{cap} s")
    if seconds < 0:
        raise ValueError(f"the time budget must be 0 (no limit) or more seconds, got {seconds}")
    if kind == "cnn":
        architecture["dense_units"] = whole(dense_units, "dense units")
    layer_sizes = {"hidden_units" if kind == "ann" else "filters": parse_layer_sizes(layers)}
    chosen = dict(
        epochs=whole(epochs, "epochs"),
        time_budget=seconds or None,
        train_size=train_size if train_size < all_images else None,
        batch_size=batch_size,
        optimizer=optimizer,
        learning_rate=learning_rate,
        schedule=schedule,
        dropout=dropout,
        output_activation=output_activation,
        loss=loss,
        augment=augment,
        styles=(training.styles or STYLE_SHARE) if styles else 0.0,
        drawings_weight=weight,
        drawings_dir=str(ui.drawings_folder().root),
        owner_name=owner_name,
        name=name.strip() or None,
        data_path=data.reference,
        **layer_sizes,
        **architecture,
    )
    job = default_job(kind, **(job_settings(start) | chosen))  # keeps linked settings not shown
    job = replace(job, training=replace(job.training, drawings=drawings))  # None: none
    job.check()
    return job


WHOLE = {"step": 1.0, "format": "%g"}  # a whole number's input (see chosen_job)


def whole(value: float, what: str) -> int:
    """An input's value as a whole number; ``ValueError`` if it has a fraction."""
    if not float(value).is_integer():
        raise ValueError(f"{what} must be a whole number, got {shortened(f'{value:g}')}")
    return int(value)


# A link's settings are the fields' first values; after that the user's edits rule.
available = len(data.y_train) - validation_count(data, TrainingConfig())
linked, problems = job_from_query(st.query_params.to_dict(), available=available)
limits = Limits() if who.requester().teacher else ui.training_queue().limits
linked, capped = limits.clamp(linked)
if st.query_params.to_dict():
    problems += capped
elif capped:  # no link: the caps alone
    st.info("Within the teacher's limits: " + "; ".join(capped) + ".", icon=":material/school:")
if problems:
    ignored = "\n- ".join(markdown_literal(problem) for problem in problems)
    st.warning("Some settings of this link were changed or ignored:\n\n- " + ignored)
kind = (
    st.segmented_control(
        "Network",
        KINDS,
        default=linked.kind,
        key="kind",
        format_func={"ann": "ANN (dense)", "cnn": "CNN (convolutional)"}.get,
    )
    or "cnn"
)
settings, live = st.columns([1, 2], gap="large")
with settings:
    start = linked if linked.kind == kind else default_job(kind)
    with st.container(border=True):
        try:
            job, problem = chosen_job(kind, data, start, limits), None
        except ValueError as error:
            job, problem = start, str(error)
        if problem:  # beside Start, and gone once fixed
            st.error(f"Cannot start: {markdown_literal(problem)}.", icon=":material/error:")
        if st.button(
            "Start training",
            icon=":material/play_arrow:",
            type="primary",
            disabled=problem is not None,
        ):
            ui.start_training([job])
    drawings_views.finetune_form()
    st.markdown("**Link to these settings**")
    st.code(link(st.context.url or "/train", job), language=None, wrap_lines=True)
    st.caption("Copy it (button at its top right, on hover) to hand out these settings.")
with live:
    queue_views.interrupted_runs()
    # While a run trains, the numbers poll twice a second and the curves every two seconds
    # (redrawing the charts costs the server and the browser CPU that training needs on a
    # small machine); otherwise both poll now and then, to see others' runs start.
    ui.poll_training(queue_views.run_status, every=0.5, idle_every=3.0)
    newest = [entries[0] for entries in ui.entries_by_kind().values() if entries]
    ui.poll_training(lambda run: ui.run_curves_charts(run, newest), every=2.0, idle_every=3.0)
    with st.expander("The Keras code of this network", icon=":material/code:"):
        st.code(network_code(job), language="python")
        st.caption("The layers and settings as the app trains them, updated as you change them.")
        exported = job_export(job)
        ui.notebook_downloads(
            exported.name, lambda script: model_cells(exported, script), key="train-code"
        )
    st.subheader("The training queue")
    st.caption("Runs train in the order they were started; each browser may have one waiting.")
    ui.poll_training(queue_views.queue_board, every=2.0, idle_every=3.0)
