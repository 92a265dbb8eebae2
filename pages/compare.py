"""Compare: saved models side by side, their numbers in a table and their curves overlaid."""

import streamlit as st

import ui
from mnist_core.charts import X_AXES, model_curves, training_curves
from mnist_core.comparison import summarize, summary_table

ui.run_through_app_navigation()
st.title("Compare models")
st.markdown(
    "Pick two or more saved models: how accurate, how big and how fast each one is, and how "
    "each learned, epoch by epoch or second by second."
)
chosen = ui.saved_models_choice("Models to compare", placeholder="Choose saved models")
if not chosen:
    st.info("Pick two or more models above.")
    st.stop()
if len(chosen) == 1:
    st.info("Pick two or more models above to compare them; here is the one picked.")

table = summary_table([summarize(entry) for entry in chosen])
ui.model_table(table)
st.download_button(
    "Download the table (CSV)",
    table.csv(),
    file_name="model-comparison.csv",
    mime="text/csv",
    icon=":material/download:",
    on_click="ignore",
)

x_axis = st.radio("Curves against", list(X_AXES), horizontal=True, key="compare_x_axis")
curves = [model_curves(entry) for entry in chosen]
loss, accuracy = st.columns(2)
loss.plotly_chart(training_curves(curves, "loss", x_axis=x_axis), key="compare_loss")
accuracy.plotly_chart(training_curves(curves, "accuracy", x_axis=x_axis), key="compare_accuracy")
st.caption(
    "Lines: training, every few batches. Dotted lines with dots: validation, at each epoch's "
    "end. Seconds count the training itself, so a slow model's curves stretch to the right."
)
