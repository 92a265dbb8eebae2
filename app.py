"""MNIST live: train a dense net and a convnet, then draw digits and compare them.

Run with ``streamlit run app.py``.
"""

import streamlit as st

import ui

st.set_page_config(page_title="MNIST live: ANN vs CNN", page_icon=":material/draw:", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("pages/draw.py", title="Draw", icon=":material/draw:", url_path="draw"),
]
ui.training_service()  # starts the warm training worker with the server, not at first Start
st.navigation(pages).run()
