"""They fooled the networks: the class's drawings that the ANN, the CNN or both misread,
newest first, live while the class draws."""

import streamlit as st

import ui
from classroom import drawings_views
from mnist_core.models import KINDS

ui.run_through_app_navigation()
st.title("They fooled the networks")
st.markdown(
    "Each drawing the class kept, read by the chosen ANN and CNN: here are the ones either "
    "network got wrong, the newest first. Which digits fool the dense net but not the convnet?"
)
chosen = drawings_views.set_choice()
entries = ui.entries_by_kind()
picked = {}
for column, kind in zip(st.columns(len(KINDS)), KINDS, strict=True):
    with column:
        if (entry := ui.entry_choice(kind, entries[kind])) is not None:
            picked[kind] = entry
if not picked:
    ui.ask_to_train("No model yet")
    st.stop()


@st.fragment(run_every=3.0)  # live on the projector while the class keeps drawings
def board() -> None:
    drawings_views.fooled_board(chosen, picked)


board()
