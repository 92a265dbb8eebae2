"""Home: what the app is, where the data came from, a few real digits, where to go next."""

import streamlit as st

import ui
from mnist_core.data import examples_by_digit
from mnist_core.preprocessing import enlarge

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
    st.write(f"This app trains on {data.description}")

st.caption("A few of the test digits, two of each:")
images, labels = examples_by_digit(data)
st.image([enlarge(image, 56) for image in images], caption=[str(label) for label in labels])

st.subheader("Next")
left, right = st.columns(2)
left.page_link(
    "pages/train.py", label="Train a model and watch it learn", icon=":material/model_training:"
)
right.page_link(
    "pages/draw.py", label="Draw a digit and compare the networks", icon=":material/draw:"
)
