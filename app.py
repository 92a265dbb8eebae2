"""MNIST live: train a dense net and a convnet, then draw digits and compare them.

Run with ``streamlit run app.py``. This file declares the pages and runs the one asked for.
"""

import streamlit as st

import ui
from classroom import queue_views, who

st.set_page_config(page_title="MNIST live: ANN vs CNN", page_icon=":material/draw:", layout="wide")
ui.keep_keras_state_between_runs()  # served models stay fast: Streamlit would reset Keras
try:
    ui.training_queue().start_workers()  # TensorFlow loads in the workers now, not at Start
except ValueError as error:  # MNIST_QUEUE names no queue this app can use
    st.error(f"The training queue is set wrong: {ui.markdown_literal(error)}.")
    st.stop()
who.remember_this_browser()  # its runs and models stay its own across reconnects and restarts


def page(name: str, title: str, icon: str, **options) -> st.Page:
    """``pages/NAME.py``, served at ``/NAME``, with a Material icon."""
    return st.Page(
        f"pages/{name}.py", title=title, icon=f":material/{icon}:", url_path=name, **options
    )


pages = {
    "Try it": [
        page("home", "Home", "home", default=True),
        page("train", "Train", "model_training"),
        page("draw", "Draw", "draw"),
    ],
    "See why": [
        page("compare", "Compare", "compare"),
        page("evaluate", "Evaluate", "grid_on"),
        page("robustness", "Robustness", "open_with"),
        page("inspect", "Inspect", "visibility"),
    ],
    "Our class": [
        page("drawings", "Class drawings", "collections_bookmark"),
        page("fooled", "Fooled the networks", "psychology_alt"),
        page("leaderboard", "Class challenge", "leaderboard"),
    ],
    "Go further": [
        page("experiments", "Experiments", "science"),
        page("data", "Data", "dataset"),
        page("models", "Models", "inventory_2"),
    ],
}
navigation = st.navigation(pages, expanded=True)  # every page in sight, not "View more"
queue_views.teacher_controls()
navigation.run()
