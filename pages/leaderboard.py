"""Leaderboard: the class challenge, made for the projector. Every model trained while it
is open is scored on the drawings the teacher held back, and ranked as it finishes."""

import streamlit as st

import ui
from classroom import challenge_views

ui.run_through_app_navigation()
st.title("Leaderboard")
current = challenge_views.challenge()
challenge_views.teacher_form(current)
if current is None:
    st.info(
        "No challenge yet. The teacher opens one here: some writers' drawings held back as "
        "its test, and caps on parameters, seconds and training images."
    )
    st.stop()


@st.fragment(run_every=3.0)  # a model that finishes joins the board within seconds
def live_board() -> None:
    one = challenge_views.challenge()
    if one is None:
        return
    state = "open" if one.is_open else "closed: the final board"
    st.subheader(f"{one.title} ({state})")
    st.markdown(challenge_views.rules(one))
    if not one.is_open:
        challenge_views.leaderboard_table(one.final)
        return
    scores, outside = challenge_views.board(one)
    challenge_views.leaderboard_table(scores)
    challenge_views.outside_caps(outside)
    st.caption("Train a model on the Train page: it joins the board when it finishes.")


live_board()
