"""Class drawings: every digit the class kept on the Draw page, by digit and writer, with
deletion, the teacher's lock, export and import."""

import tempfile
from pathlib import Path

import streamlit as st

import ui
from classroom import drawings_views, who
from mnist_core.class_drawings import MAX_IMPORT_MB, KeepRefused, export_jsonl, export_npz
from mnist_core.data import NUM_CLASSES
from mnist_core.drawings import DrawingsError

ui.run_through_app_navigation()
st.title("The class's drawings")
st.markdown(
    "Every digit kept on the Draw page, with the digit its writer meant: the class's own "
    "handwriting set. Train or fine-tune on it (Train page), and see which drawings fool the "
    "networks (Fooled page)."
)
chosen = drawings_views.set_choice()
drawings_views.delete_refused()
drawings_views.lock_control(chosen)


@st.fragment(run_every=5.0)  # new drawings appear while the class draws
def browse() -> None:
    drawings = drawings_views.read_set(chosen)
    drawings_views.counts(drawings)
    if not drawings.drawings:
        st.info("No drawings kept yet: draw a digit on the Draw page, say which it is, Keep.")
        return
    digit_column, writer_column = st.columns(2)
    digit = digit_column.pills("Digit", list(range(NUM_CLASSES)), key="drawings_digit")
    writers = sorted(set(drawings.writers))
    writer = writer_column.selectbox(
        "Writer", writers, index=None, placeholder="Every writer", key="drawings_writer"
    )
    drawings_views.gallery(chosen, drawings, digit, writer)


browse()

st.subheader("Take it away, bring one in")
drawings = drawings_views.read_set(chosen)
as_strokes, as_images = st.columns(2)
as_strokes.download_button(
    "Download as strokes (JSON lines)",
    lambda: export_jsonl(drawings),
    file_name=f"{chosen.name}.jsonl",
    mime="application/jsonl",
    icon=":material/download:",
    disabled=not drawings.drawings,
    on_click="ignore",
    help="One digit a line: digit, writer, strokes. The same format as UNIPEN's digits here.",
)
as_images.download_button(
    "Download as images (.npz, Keras's MNIST layout)",
    lambda: export_npz(drawings, drawings_views.seen_images(chosen)),
    file_name=f"{chosen.name}.npz",
    mime="application/octet-stream",
    icon=":material/download:",
    disabled=not drawings.drawings,
    on_click="ignore",
    help="x_train, y_train, x_test, y_test as keras.datasets.mnist.load_data() gives them; "
    "a fifth of the writers in the test half, never a writer in both.",
)
upload = st.file_uploader(
    "Import a drawings file (JSON lines: digit, writer, strokes)",
    type=["jsonl"],
    max_upload_size=MAX_IMPORT_MB,
    key=f"import-{st.session_state.get('imports', 0)}",
)
if upload is not None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, Path(upload.name).name)
        path.write_bytes(upload.getvalue())
        try:
            added = chosen.import_file(path, owner=who.requester().owner)
        except (DrawingsError, KeepRefused) as error:
            st.error(f"Nothing imported. {error}", icon=":material/block:")
        else:
            st.session_state["imports"] = st.session_state.get("imports", 0) + 1
            st.toast(f"Imported {added:,} drawings into {chosen.name}.", icon=":material/upload:")
            st.rerun()
