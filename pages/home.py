"""Home: what the app is, where the data came from, a few real digits, a lesson's steps."""

import streamlit as st

import ui
from mnist_core.data import examples_by_digit
from mnist_core.preprocessing import enlarge
from mnist_core.text import markdown_literal

ui.run_through_app_navigation()
st.title("MNIST live: dense net vs convnet")
st.markdown(
    "Train a **dense network (ANN)** and a **convolutional network (CNN)** on handwritten "
    "digits, watch their loss and accuracy curves grow while they learn, then **draw a digit** "
    "and see what each network reads, side by side."
)

data = ui.mnist()
ui.data_banner(data)
st.subheader("The data")
if not data.is_sample:  # the banner above has said it for the sample
    st.markdown(f"This app trains on {markdown_literal(data.description)}")

st.caption("A few of the test digits, two of each:")
images, labels = examples_by_digit(data)
st.image([enlarge(image, 56) for image in images], caption=[str(label) for label in labels])

st.subheader("A lesson in six steps")
LESSON = [
    ("pages/train.py", "Train an ANN and a CNN, and watch them learn", "model_training"),
    ("pages/draw.py", "Draw digits: do the two networks read them alike?", "draw"),
    ("pages/robustness.py", "Move and turn a digit: which network still reads it?", "open_with"),
    ("pages/inspect.py", "Look inside: filters, feature maps, where each looks", "visibility"),
    ("pages/evaluate.py", "Find the test digits each network gets wrong", "grid_on"),
    ("pages/experiments.py", "Experiment: neurons, activations, optimizers", "science"),
]
for number, (path, label, icon) in enumerate(LESSON, start=1):
    st.page_link(path, label=f"{number}. {label}", icon=f":material/{icon}:")
