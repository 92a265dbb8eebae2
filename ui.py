"""Streamlit glue shared by the pages: server-wide resources and a few repeated widgets.

Resources cached with ``st.cache_resource`` are shared by every session of the server
(the data, the trained models, the one training worker); per-user choices live in
``st.session_state``.
"""

from __future__ import annotations

import gc
import warnings

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import script_runner

from mnist_core.data import DataError, MnistData, load_mnist
from mnist_core.registry import ModelEntry, ModelRegistry
from mnist_core.worker import TrainingService


def _run_through_app_navigation() -> None:
    """Make a fresh server whose first visitor opens ``/draw`` run app.py, not the page alone.

    Streamlit sees the ``pages/`` folder and, until some run reaches ``st.navigation``,
    runs page files on their own (old-style multipage: no layout, file names in the
    sidebar). Rerunning with that mode off sends this visit through app.py.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


_run_through_app_navigation()


def _keep_keras_state_between_runs() -> None:
    """Stop Streamlit from calling ``keras.backend.clear_session()`` after every run.

    Streamlit does it for scripts that build models at each run. Here models are built in
    the training worker and only served, and the call costs ~250 ms of CPU per run (a full
    ``gc.collect()``), makes the next prediction ~10x slower (TensorFlow's kernel cache is
    emptied) and resets Keras state under other sessions' predictions. Streamlit's only
    other clean-up there is for matplotlib's pyplot, which this app does not use.
    """
    script_runner._clean_problem_modules = lambda: None


_keep_keras_state_between_runs()


@st.cache_resource(show_spinner="Looking for MNIST...")
def _load_data() -> MnistData:
    with warnings.catch_warnings(record=True):  # kept in MnistData.notes, shown below
        return load_mnist()


def mnist() -> MnistData:
    """The data set, or a clear error on the page (and the page stops) if it is broken."""
    try:
        return _load_data()
    except DataError as error:
        st.error(f"MNIST could not be loaded: {error}")
        st.stop()


@st.cache_resource(show_spinner="Starting the training process...")
def training_service() -> TrainingService:
    """The server's one training worker, warmed up at first use."""
    return TrainingService()


def registry() -> ModelRegistry:
    return ModelRegistry()


@st.cache_resource(max_entries=16, show_spinner="Loading model...")
def _load_model(name: str, modified: float):
    # Python's full garbage collections walk every object TensorFlow and Keras hold,
    # pausing predictions ~200 ms now and then (measured on the Draw page): freeze them
    # all once a model is loaded. Unfreezing first lets models evicted from this cache go.
    gc.unfreeze()
    gc.collect()
    model = registry().load(registry().get(name))
    gc.freeze()
    return model


def load_model(entry: ModelEntry):
    """The Keras model of ``entry``, loaded once per file version for all sessions."""
    return _load_model(entry.name, entry.model_path.stat().st_mtime)


def data_banner(data: MnistData) -> None:
    """Say plainly when the app runs on the small offline sample."""
    if data.is_sample:
        st.warning(f"Running on {data.description}", icon=":material/warning:")
    for note in data.notes:
        st.caption(note)


def canvas_key() -> str:
    """The canvas widget's key: a new key is a new, empty canvas."""
    return f"canvas-{st.session_state.setdefault('canvas_version', 0)}"


def clear_canvas() -> None:
    st.session_state["canvas_version"] = st.session_state.get("canvas_version", 0) + 1


def rerun_when_run_changes(run, state: dict) -> None:
    """From a polling fragment: rerun the whole page when a run starts or ends.

    A fragment's polling rate is fixed when the page runs, and a finished run brings
    new models that the rest of the page must list.
    """
    now = (run.id, state["active"])
    before = st.session_state.get("watched_run")
    st.session_state["watched_run"] = now
    if before is not None and before != now:
        st.rerun()
