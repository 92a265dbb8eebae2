"""MNIST live: train a dense net and a convnet, then draw digits and compare them.

Run with ``streamlit run app.py``. This file declares the pages and runs the one asked for.
"""

import streamlit as st

import ui

st.set_page_config(page_title="MNIST live: ANN vs CNN", page_icon=":material/draw:", layout="wide")
ui.keep_keras_state_between_runs()  # served models stay fast: Streamlit would reset Keras
ui.training_service().start_worker()  # TensorFlow loads in the worker now, not at first Start

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("pages/draw.py", title="Draw", icon=":material/draw:", url_path="draw"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/grid_on:", url_path="evaluate"),
    st.Page(
        "pages/robustness.py",
        title="Robustness",
        icon=":material/open_with:",
        url_path="robustness",
    ),
    st.Page("pages/inspect.py", title="Inspect", icon=":material/visibility:", url_path="inspect"),
    st.Page(
        "pages/experiments.py",
        title="Experiments",
        icon=":material/science:",
        url_path="experiments",
    ),
    st.Page("pages/data.py", title="Data", icon=":material/dataset:", url_path="data"),
    st.Page("pages/models.py", title="Models", icon=":material/inventory_2:", url_path="models"),
]
st.navigation(pages).run()
