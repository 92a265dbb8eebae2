"""Inspect: saliency, CNN filters and feature maps, ANN weights, layers, on one digit."""

import numpy as np
import streamlit as st

import ui
from mnist_core import inspection
from mnist_core.charts import image_grid, saliency_heatmap
from mnist_core.data import NUM_CLASSES
from mnist_core.models import KINDS, to_input
from mnist_core.preprocessing import enlarge
from mnist_core.text import markdown_literal

ui.run_through_app_navigation()
st.title("Inspect the networks")
st.markdown(
    "Look inside the ANN and the CNN while they read one digit: which pixels their answer "
    "depends on, what the CNN's filters look for and find, what the ANN's first layer weighs."
)
data = ui.mnist()
ui.data_banner(data)
entries = ui.entries_by_kind()
if not any(entries.values()):
    ui.ask_to_train("No saved model yet")
    st.stop()

SOURCES = ["Your drawing", "A test digit"]
drawing = ui.current_drawing()
source = st.segmented_control(
    "Input",
    SOURCES,
    default=SOURCES[0] if drawing is not None else SOURCES[1],
    key="inspect_source",
)
image = None
input_column, *model_columns = st.columns([2, 3, 3], gap="medium")
with input_column:
    if source == "A test digit":

        def random_test_digit() -> None:
            digit = st.session_state["inspect_random_digit"]
            pool = (
                np.arange(len(data.y_test))
                if digit is None
                else np.flatnonzero(data.y_test == digit)
            )
            st.session_state["inspect_index"] = int(np.random.default_rng().choice(pool))

        index = st.number_input(
            f"Test digit number (0-{len(data.y_test) - 1:,})",
            0,
            len(data.y_test) - 1,
            key="inspect_index",
        )
        st.selectbox(
            "Random pick: which digit",
            [None, *range(NUM_CLASSES)],
            format_func=lambda digit: "any" if digit is None else str(digit),
            key="inspect_random_digit",
        )
        st.button(
            "Pick at random", icon=":material/casino:", on_click=random_test_digit, width="stretch"
        )
        image = to_input(data.x_test[index : index + 1])[0, :, :, 0]
        st.image(enlarge(image, 140), caption=f"Test digit {index:,}: a {data.y_test[index]}")
    elif source is None:
        st.info("Choose the input above: your drawing or a test digit.")
    elif drawing is None:
        st.info("No drawing yet: draw a digit on the Draw page, then come back.")
        st.page_link("pages/draw.py", label="Draw a digit", icon=":material/draw:")
    else:
        image = drawing.image
        st.image(enlarge(image, 140), caption="Your drawing, as the networks see it")
models = {}
for column, kind in zip(model_columns, KINDS, strict=True):
    with column:
        models[kind] = ui.model_choice(kind, entries[kind])
if image is None:
    st.stop()


ann, cnn = models["ann"], models["cnn"]
saliency_tab, filters_tab, maps_tab, weights_tab, layers_tab = st.tabs(
    ["Saliency", "CNN filters", "CNN feature maps", "ANN weights", "Layers"]
)
with saliency_tab:
    times_input = st.toggle(
        "Gradient × input (only the pixels with ink)",
        value=True,
        key="inspect_times_input",
        help="Off: the gradient everywhere, also where ink would change the answer.",
    )
    for column, (kind, model) in zip(st.columns(len(KINDS)), models.items(), strict=True):
        with column:
            if model is None:
                ui.ask_to_train(f"No {kind.upper()} model to inspect")
                continue
            saliency = inspection.saliency(model, image)
            values = saliency.gradient_times_input if times_input else saliency.gradient
            title = f"{kind.upper()} reads {saliency.digit} ({saliency.probability:.0%} sure)"
            st.plotly_chart(saliency_heatmap(values, image, title), key=f"saliency-{kind}")
    st.caption(
        "How the probability of each model's answer changes with each pixel: red, more ink "
        "there makes it surer; blue, less sure; white, no matter. The grey line is the digit."
    )
with filters_tab:
    if cnn is None:
        ui.ask_to_train("No CNN model to inspect")
    else:
        kernels = inspection.first_conv_kernels(cnn)
        st.markdown(
            f"The **{len(kernels)} filters** of the first conv layer, {kernels.shape[1]}×"
            f"{kernels.shape[2]} pixels each: each one slides over the image and lights up "
            "where the image looks like it (red weights: ink wanted, blue: ink unwanted)."
        )
        numbers = range(1, len(kernels) + 1)
        st.plotly_chart(
            image_grid(kernels, "filter", numbers, columns=8, diverging=True, tile_pixels=110),
            key="filters",
        )
with maps_tab:
    if cnn is None:
        ui.ask_to_train("No CNN model to inspect")
    else:
        st.markdown(
            "What each conv block (convolution, pooling, normalisation) makes of the digit: one "
            "map per filter, white where the filter found its pattern. Each block sees the "
            "maps of the one before, so deeper maps are smaller and about larger shapes."
        )
        for block in inspection.feature_maps(cnn, image):
            count, height, width = block.maps.shape
            st.subheader(f"Block {block.block}: {count} maps of {height}×{width}")
            st.caption(
                " → ".join(markdown_literal(layer) for layer in block.layers)
            )  # the file's names
            columns = 8 if count <= 16 else 16
            st.plotly_chart(
                image_grid(
                    block.maps,
                    "map",
                    range(1, count + 1),
                    columns,
                    diverging=False,
                    tile_pixels=880 // columns,
                ),
                key=f"maps-{block.block}",
            )
with weights_tab:
    if ann is None:
        ui.ask_to_train("No ANN model to inspect")
    else:
        units = inspection.strongest_units(ann, image)
        st.markdown(
            f"The incoming weights of the **{len(units)} units of the ANN's first hidden layer "
            "that answer this digit most** (strongest first), one 28×28 image each: red pixels "
            "push the unit up when inked, blue ones push it down. Hover for the values."
        )
        weights = np.stack([unit.weights for unit in units])
        numbers = [unit.unit for unit in units]
        st.plotly_chart(
            image_grid(weights, "unit", numbers, columns=8, diverging=True, tile_pixels=110),
            key="ann-weights",
        )
with layers_tab:
    for column, (kind, model) in zip(st.columns(len(KINDS)), models.items(), strict=True):
        with column:
            if model is None:
                ui.ask_to_train(f"No {kind.upper()} model to inspect")
                continue
            rows = inspection.layer_table(model)
            st.subheader(f"{kind.upper()}: {model.count_params():,} parameters")
            st.dataframe(
                [
                    {
                        "Layer": row.name,
                        "Type": row.type,
                        "Output shape": " × ".join(str(n) for n in row.output_shape),
                        "Parameters": row.parameters,
                    }
                    for row in rows
                ],
                hide_index=True,
                height=(len(rows) + 1) * 35 + 3,  # every layer, no scrolling
                column_config={"Parameters": st.column_config.NumberColumn(format="localized")},
            )
