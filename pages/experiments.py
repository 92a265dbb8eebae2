"""Experiments: train several models in a row, each changing one setting, and compare them."""

from urllib.parse import urlencode

import streamlit as st

import ui
from classroom import queue_views
from mnist_core.charts import model_curves, training_curves
from mnist_core.comparison import summarize, summary_table
from mnist_core.experiments import COLUMNS, PRESETS, experiment_tag, jobs_of, prepared, table_of
from mnist_core.links import job_from_query, query_from_job
from mnist_core.models import ACTIVATIONS, KINDS, LOSSES, OPTIMIZERS, OUTPUT_ACTIVATIONS
from mnist_core.notebooks import experiment_cells, experiment_export
from mnist_core.protocol import RunState
from mnist_core.text import markdown_literal

ui.run_through_app_navigation()
st.title("Experiments")
st.markdown(
    "Train several networks one after another, each changing a setting, and see what it "
    "does. Pick a ready-made experiment, change the table if you like, and run it."
)
data = ui.mnist()
ui.data_banner(data)


def linked_preset() -> tuple[str, dict[str, str], list[str]]:
    """The preset a link asks for (``?preset=neurons``), the settings it changes in every
    row (``&epochs=2``), and what of it was ignored."""
    query = st.query_params.to_dict()
    problems = []
    preset = query.pop("preset", "neurons")
    if preset not in PRESETS:
        problems.append(f"preset={preset!r} ignored: must be one of {', '.join(PRESETS)}")
        preset = "neurons"
    for name in ("kind", "name"):  # each row has its own
        if name in query:
            problems.append(f"{name}={query.pop(name)!r} ignored: each row sets its own")
    return preset, query, problems


def preset_table(preset: str, changes: dict[str, str]):
    """The preset's jobs with a link's ``changes`` applied to each, as the editable table."""
    jobs, problems = [], []
    for job in PRESETS[preset].jobs:
        job, ignored = job_from_query(changes, base=job)
        jobs.append(job)
        problems += [problem for problem in ignored if problem not in problems]
    return table_of(jobs), problems


def shared_changes(preset: str, table) -> dict[str, str] | None:
    """The settings changed alike in every row of the preset, as link parameters; ``None``
    if the table was changed in other ways (rows added or removed, one row edited)."""
    try:
        jobs = jobs_of(table)
    except ValueError:
        return None
    presets = PRESETS[preset].jobs
    if [job.name for job in jobs] != [job.name for job in presets]:
        return None
    changes = [
        {k: v for k, v in query_from_job(job, base).items() if k != "kind"}
        for job, base in zip(jobs, presets, strict=True)
    ]
    shared = {k: v for k, v in changes[0].items() if all(c.get(k) == v for c in changes)}
    return shared if all(c == shared for c in changes) else None


def sweep_progress(run) -> None:
    """The sweep's progress and every model's curves so far, the current one growing."""
    if run is None or not any(job.experiment for job in run.jobs):
        return
    state: RunState = run.state
    total = len(run.jobs)
    if state.waiting:
        queue_views.run_status(run)
        return
    if state.active:
        job = state.current_job
        text = (
            f"Model {state.current + 1} of {total}: {markdown_literal(job.name)}, {state.message}"
        )
        st.progress(state.overall_progress, text=text)
    elif state.status == "failed":
        st.error(f"The experiment stopped: {markdown_literal(state.error)}")
    else:
        st.success(
            f"Experiment {markdown_literal(run.jobs[0].experiment)} {state.status}: "
            f"{len(state.saved)} models."
        )
    ui.run_curves_charts(run, compare_with=[])


linked, changes, problems = linked_preset()
preset = st.selectbox(
    "Experiment", list(PRESETS), list(PRESETS).index(linked), key="preset",
    format_func=lambda name: f"{name}: {PRESETS[name].question}",
)  # fmt: skip
table, ignored = preset_table(preset, changes if preset == linked else {})
if problems + ignored:
    st.warning(
        "Some settings of this link were ignored:\n\n- "
        + "\n- ".join(markdown_literal(p) for p in problems + ignored)
    )
choices = {"kind": KINDS, "activation": ACTIVATIONS, "output": OUTPUT_ACTIVATIONS}
choices |= {"loss": LOSSES, "optimizer": OPTIMIZERS}
column_config = {
    name: st.column_config.SelectboxColumn(name, help=COLUMNS[name], options=list(options))
    for name, options in choices.items()
}
for name in ("epochs", "batch", "images"):
    column_config[name] = st.column_config.NumberColumn(
        name, help=COLUMNS[name], step=1, width="small"
    )
for name in ("name", "layers", "dropout", "learning rate", "seconds"):
    column_config[name] = st.column_config.Column(name, help=COLUMNS[name])
edited = st.data_editor(
    table,
    column_config=column_config,
    num_rows="dynamic",
    hide_index=True,
    key=f"table-{preset}",
)
shared = shared_changes(preset, edited)
base = (st.context.url or "/experiments").split("?")[0]
st.caption("Link to this experiment, to hand out:")
st.code(f"{base}?{urlencode({'preset': preset, **(shared or {})}, safe=',')}", language=None)
if shared is None:
    st.caption("The link carries the preset and changes made to every row alike, not these edits.")

try:
    table_jobs = jobs_of(edited)
except ValueError:
    table_jobs = []  # the Run button says what is wrong
if table_jobs:
    st.caption("These models as one notebook, trained in a loop, to run at home:")
    ui.notebook_downloads(
        preset,
        lambda script: experiment_cells(preset, PRESETS[preset].question, table_jobs, script),
        key=f"table-{preset}",
    )
if st.button(f"Run these {len(edited)} models", type="primary", disabled=edited.empty):
    try:
        jobs = prepared(jobs_of(edited), experiment_tag(preset), data_path=data.reference)
    except ValueError as error:
        st.error(f"Cannot run: {markdown_literal(error)}")
    else:
        if ui.start_training(jobs):
            st.session_state["experiment"] = jobs[0].experiment
st.caption(
    "The experiment goes through the training queue, as one run: if others are training, "
    "it waits its turn."
)
ui.poll_training(sweep_progress, every=2.0)

st.header("Results")
entries = ui.registry().entries()
experiments = list(dict.fromkeys(e.meta["experiment"] for e in entries if e.meta.get("experiment")))
if not experiments:
    st.info("No experiment has finished a model yet: results appear here as each one is saved.")
    st.stop()
mine = st.session_state.get("experiment")
shown = st.selectbox(
    "Results of", experiments, experiments.index(mine) if mine in experiments else 0
)
models = [entry for entry in reversed(entries) if entry.meta.get("experiment") == shown]
results = summary_table([summarize(entry) for entry in models]).without("Experiment")
ui.model_table(results, sortable=True)
st.caption(
    "Click a column's heading to sort by it. Test loss is each model's own loss: "
    "mean squared error is on a smaller scale than cross-entropy, so compare accuracy "
    "across the two."
)
st.download_button(
    "Download the results (CSV)",
    results.csv(),
    file_name=f"{shown}.csv",
    mime="text/csv",
    icon=":material/download:",
    on_click="ignore",
)
try:
    exported = experiment_export(shown, ui.registry())
except ValueError as error:
    st.info(f"No notebook of this experiment: {markdown_literal(error)}.")
else:
    ui.notebook_downloads(
        shown,
        lambda script: experiment_cells(exported.title, exported.question, exported.jobs, script),
        key=f"results-{shown}",
    )
curves = [model_curves(entry) for entry in models]
loss, accuracy = st.columns(2)
loss.plotly_chart(training_curves(curves, "loss"), key="results_loss")
accuracy.plotly_chart(training_curves(curves, "accuracy"), key="results_accuracy")
