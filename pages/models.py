"""Models: every saved model with its metadata; rename, delete, download one."""

import streamlit as st

import ui
from classroom import who
from mnist_core.comparison import history_csv, summarize, summary_table
from mnist_core.network_code import network_code, saved_job
from mnist_core.notebooks import model_cells, model_export
from mnist_core.registry import MAX_MODEL_BYTES, ModelLoadError, sanitize_name
from mnist_core.text import markdown_literal

ui.run_through_app_navigation()
st.title("Saved models")
st.markdown(
    "Every model trained on this server, newest first. Pick one below to see all it saved, "
    "download it, rename it or delete it."
)


def add_model_from_file() -> None:
    """Upload a ``.keras`` file and add it to the models, owned by this browser."""
    st.header("Add a model from a file")
    st.markdown(
        "A `.keras` file saved by this app (a model's download button) or by Keras, reading 28×28 "
        "digits into ten outputs. It is loaded in Keras's safe mode and measured on the test set."
    )
    upload = st.file_uploader(
        "Model file", type=["keras"], max_upload_size=MAX_MODEL_BYTES // 2**20, key="model_upload"
    )
    if upload is not None:
        wanted = st.text_input("Save it as", upload.name.removesuffix(".keras"), key="upload_name")
        if st.button("Add this model", icon=":material/upload:"):
            try:
                with st.spinner("Checking the model and measuring it on the test set..."):
                    added = ui.registry().import_model(
                        upload.getvalue(), wanted, ui.mnist(), {"owner": who.requester().owner}
                    )
            except (ModelLoadError, ValueError) as error:
                st.error(f"Cannot add this file: {markdown_literal(error)}.")
            else:
                st.session_state["models_notice"] = f"Added {added.name}."
                st.session_state["models_pick"] = added.name
                st.rerun()


registry = ui.registry()
entries = {entry.name: entry for entry in registry.entries()}
if notice := st.session_state.pop("models_notice", None):
    st.success(markdown_literal(notice), icon=":material/check_circle:")
if not entries:
    ui.ask_to_train("No saved model yet")
    add_model_from_file()
    st.stop()

summaries = {name: summarize(entry) for name, entry in entries.items()}
ui.model_table(summary_table(list(summaries.values())))

# No key: a renamed or deleted model changes the options, which makes a new selector,
# showing the renamed model or else the newest (a keyed one shows a deleted name on).
names = list(entries)
picked = st.session_state.get("models_pick")
name = st.selectbox(
    "Model",
    names,
    index=names.index(picked) if picked in names else 0,
    format_func=lambda n: entries[n].label,
)
entry, summary = entries[name], summaries[name]

accuracy, loss, params, seconds = st.columns(4)
accuracy.metric("Test accuracy", f"{summary.test_accuracy:.2%}")
loss.metric("Test loss", ui.MISSING if summary.test_loss is None else f"{summary.test_loss:.4f}")
params.metric("Parameters", ui.MISSING if summary.params is None else f"{summary.params:,}")
seconds.metric(
    "Training time",
    ui.MISSING if summary.train_seconds is None else f"{summary.train_seconds:.0f} s",
)
facts = [
    f"**{summary.kind.upper()}**: {markdown_literal(summary.settings or 'settings not saved')}"
]
if summary.train_images and summary.epochs:
    facts.append(f"{summary.epochs:g} epochs on {summary.train_images:,} training images")
if summary.stopped_by:
    facts.append(f"stopped early ({markdown_literal(summary.stopped_by)})")
if summary.experiment:
    facts.append(f"experiment **{markdown_literal(summary.experiment)}**")
facts.append(f"saved {summary.created.replace('T', ' ')[:16]} UTC")
st.markdown("; ".join(facts) + ".")
with st.expander("The Keras code of this network", icon=":material/code:"):
    try:
        st.code(network_code(saved_job(entry.meta)), language="python")
        st.caption("The layers and settings exactly as the app trained it: copy it (top right).")
    except ValueError as error:
        st.info(f"No code to show: {markdown_literal(error)}.")
    st.markdown(
        "Or take it home as a notebook (or a script) that loads MNIST, trains this network as "
        "the app did, draws its curves and confusion matrix and saves it."
    )
    ui.notebook_downloads(  # an upload's architecture: from its model, loaded once
        name,
        lambda script: model_cells(model_export(entry, registry, ui.load_model), script),
        key=name,
    )
with st.expander("All its metadata"):
    st.json({key: value for key, value in entry.meta.items() if key != "history"})

model_file, history = st.columns(2)
model_file.download_button(
    "Download the model (.keras)",
    entry.model_path.read_bytes,  # read on click only: a model is megabytes
    file_name=f"{name}.keras",
    mime="application/octet-stream",
    icon=":material/download:",
    on_click="ignore",
)
history.download_button(
    "Download its training history (CSV)",
    lambda: history_csv(entry),
    file_name=f"{name}-history.csv",
    mime="text/csv",
    icon=":material/download:",
    on_click="ignore",
)

allowed = who.may_change(entry)
if not allowed:
    st.info(
        "Only the browser that trained this model, or the teacher, may rename or delete it.",
        icon=":material/lock:",
    )
rename, delete = st.columns(2, gap="large")
with rename:
    st.subheader("Rename")
    wanted = st.text_input("New name", key=f"new-name-{name}", placeholder=name)
    try:
        new_name = sanitize_name(wanted) if wanted else None
    except ValueError as error:
        st.error(f"Cannot use this name: {markdown_literal(error)}.")
        new_name = None
    if new_name and new_name != wanted:
        st.caption(
            f"Saved as **{markdown_literal(new_name)}**: letters, digits, `.`, `_` and `-` only."
        )
    if st.button("Rename", icon=":material/edit:", disabled=not (new_name and allowed)):
        try:
            renamed = registry.rename(name, new_name)
        except ValueError as error:
            st.error(f"Cannot rename: {markdown_literal(error)}.")
        else:
            st.session_state["models_notice"] = f"Renamed {name} to {renamed.name}."
            st.session_state["models_pick"] = renamed.name
            st.rerun()
with delete:
    st.subheader("Delete")
    if st.session_state.get("models_deleting") != name or not allowed:
        if st.button("Delete this model...", icon=":material/delete:", disabled=not allowed):
            st.session_state["models_deleting"] = name
            st.rerun()
    else:
        st.warning(
            f"Delete **{markdown_literal(name)}** for good? Its model file and its history go, "
            "for every user of this server. This cannot be undone.",
            icon=":material/warning:",
        )
        confirm, cancel = st.columns(2)
        if confirm.button(
            f"Yes, delete {markdown_literal(name)}",
            type="primary",
            icon=":material/delete_forever:",
        ):
            del st.session_state["models_deleting"]
            try:
                registry.delete(name)
            except ValueError as error:
                st.error(f"Cannot delete: {markdown_literal(error)}.")
            else:
                st.session_state["models_notice"] = f"Deleted {name}."
                st.rerun()
        if cancel.button("Cancel"):
            del st.session_state["models_deleting"]
            st.rerun()

add_model_from_file()
