"""Evaluate: where each model goes wrong on the 10,000 test digits or on a set of real
people's drawings, one model or two."""

import streamlit as st

import ui
from mnist_core.charts import accuracy_bars, confusion_heatmap
from mnist_core.data import NUM_CLASSES
from mnist_core.evaluation import disagreements, mistakes, writer_table
from mnist_core.text import markdown_literal

ui.run_through_app_navigation()
st.title("Evaluate a model")
st.markdown(
    "Every test digit read by one model, or two side by side: which digits each confuses, "
    "how well it reads each digit, its most confident mistakes, and where the two disagree."
)
data = ui.mnist()
ui.data_banner(data)
models_column, digits_column = st.columns([3, 2])
with models_column:
    chosen = ui.saved_models_choice("Models (one, or two to compare)", max_selections=2)
with digits_column:
    test_set = ui.test_digits_choice("evaluate_digits")
if test_set is None:
    st.stop()
results = {
    entry.name: result for entry in chosen if (result := ui.evaluation(entry, test_set)) is not None
}
chosen = [entry for entry in chosen if entry.name in results]
if not results:
    st.info("Pick a model above.")
    st.stop()
if test_set.writers is not None:
    writers = len(set(test_set.writers))
    st.caption(
        f"{len(test_set.labels):,} digits by {writers:,} writers, each drawn on the canvas and "
        "read as the Draw page reads a drawing: the galleries show them as the networks saw them."
    )

tabs = ["Confusions", "Per digit", "Mistakes", "Where they disagree"]
confusion_tab, digits_tab, mistakes_tab, disagree_tab, *writers_tab = st.tabs(
    tabs + (["Per writer"] if test_set.writers is not None else [])
)
with confusion_tab:
    by_row = st.toggle("Shares of each true digit (not counts)", key="by_row")
    for column, entry in zip(st.columns(len(chosen)), chosen, strict=True):
        result = results[entry.name]
        title = f"{entry.name}: {result.accuracy:.2%} right, loss {result.loss:.3f}"
        column.plotly_chart(
            confusion_heatmap(result.confusion, title, by_row), key=f"confusion-{entry.name}"
        )
with digits_tab:
    bars = {e.name: (e.kind, results[e.name].per_class_accuracy) for e in chosen}
    st.plotly_chart(accuracy_bars(bars), key="per_digit")
with mistakes_tab:
    digits = [None, *range(NUM_CLASSES)]  # None: any digit

    def shown(digit: int | None) -> str:
        return "any" if digit is None else str(digit)

    true, predicted = st.columns(2)
    true_digit = true.selectbox("True digit", digits, format_func=shown)
    read_as = predicted.selectbox("Read as", digits, format_func=shown)
    for entry in chosen:
        result = results[entry.name]
        found = mistakes(result, true_digit, read_as)
        st.subheader(
            f"{markdown_literal(entry.name)}: {len(found):,} mistakes, most confident first"
        )
        ui.digit_gallery(found, result, test_set.images)
with disagree_tab:
    if len(chosen) < 2:
        st.info("Pick two models above to see the digits only one of them reads.")
    else:
        first, second = chosen
        only_first, only_second = disagreements(results[first.name], results[second.name])
        for entry, other, found in ((first, second, only_first), (second, first, only_second)):
            right, wrong = markdown_literal(entry.name), markdown_literal(other.name)
            st.subheader(f"{right} right, {wrong} wrong: {len(found):,} digits")
            ui.digit_gallery(found, results[other.name], test_set.images)
            st.caption(f"Captions: what {wrong} read.")
if writers_tab:
    with writers_tab[0]:
        table = writer_table(test_set, {e.name: results[e.name] for e in chosen})
        st.dataframe(
            table,
            hide_index=True,
            column_config={
                name: st.column_config.ProgressColumn(name, format="percent", min_value=0.0)
                for name in results
            },
        )
        st.caption("Each writer's share of digits read right, the hardest to read first.")
