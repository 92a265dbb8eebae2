"""Models: placeholder while it is being written."""

import streamlit as st

import ui

ui.run_through_app_navigation()
st.title("Models")
