"""The views of the training queue every browser shares, and the teacher's controls: the
watched run's status, the queue board, the runs a server restart cut short, and the
sidebar's Teacher panel.

Each acts only for whom ``who.requester()`` allows (a run's owner or the teacher). This
module imports ``ui`` for the server's resources; ``ui`` never imports it.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import streamlit as st

import ui
from classroom import drawings_views, who
from mnist_core.text import markdown_literal
from mnist_core.training_queue import (
    NotAllowed,
    QueueRefused,
    Requester,
    TrainingQueue,
    TrainingRun,
)


def run_actions(run: TrainingRun, key: str) -> None:
    """Stop (a training run) or Cancel (a waiting one), for its owner and the teacher."""
    me = who.requester()
    if not me.may_act_on(run.owner) or run.state.ended:
        return
    if run.state.waiting:
        label, icon, tip = "Cancel", ":material/close:", "Takes it out of the queue."
    else:
        label, icon, tip = "Stop", ":material/stop:", "Stops after this batch; keeps the model."
    if st.button(label, icon=icon, help=tip, key=f"{key}-{run.id}"):
        try:
            ui.training_queue().cancel(run.id, me)
        except (QueueRefused, NotAllowed) as error:
            st.warning(f"{markdown_literal(error)}.")
        else:
            st.rerun()  # the whole page: the queue shows in more than this fragment


def whose(run: TrainingRun) -> str:
    if run.owner == who.requester().owner:
        return "Your"
    return f"Browser {run.owner[:6]}'s" if who.requester().teacher else "Another browser's"


def no_run_yet() -> str:
    """What is true when this browser has no run to watch and nothing trains."""
    me = who.requester()
    if any(run.owner == me.owner for run in ui.queue_snapshot().interrupted):
        return "Your run was cut short when the server stopped: resume it above, or start anew."
    saved = ui.registry().count()
    if not saved:
        return "No model on this server yet: choose the settings and press Start."
    models = "1 model is" if saved == 1 else f"{saved:,} models are"
    return (
        f"No run of yours yet; {models} saved on this server (the Models page lists them). "
        "Choose the settings and press Start."
    )


def run_status(run: TrainingRun | None) -> None:
    """The watched run in full: progress or place in the queue, time, speed, Stop or
    Cancel (for its owner and the teacher), and each model it saved."""
    if run is None:
        st.info(no_run_yet())
        return
    state = run.state
    st.subheader(f"{whose(run)} run, {markdown_literal(run.label)}: {state.status}")
    if state.waiting:
        waiting = ui.queue_snapshot().waiting_of(run.id)
        if waiting is not None:
            st.info(
                f"Waiting in the queue: number {waiting.position}, starts in about "
                f"{ui.duration(waiting.starts_in)}. Closing this page does not cancel it.",
                icon=":material/hourglass_top:",
            )
        run_actions(run, "status")
        return
    st.progress(state.overall_progress, text=state.message)
    elapsed, speed, stop = st.columns(3)
    elapsed.metric("Elapsed", f"{state.elapsed:.1f} s")
    speed.metric("Images per second", f"{state.images_per_s:,.0f}")
    with stop:
        run_actions(run, "status")
    for model in state.saved:
        stopped = " (stopped early)" if model.stopped else ""
        st.success(
            f"{model.kind.upper()} saved as **{markdown_literal(model.name)}**{stopped}: "
            f"test accuracy **{model.test_accuracy:.2%}** after {model.epochs:g} epochs in "
            f"{model.train_seconds:.0f} s." + drawings_views.held_out_sentence(model)
        )
    if state.status == "failed":
        st.error(f"Training failed: {markdown_literal(state.error)}")
    if state.saved and not state.active:
        st.page_link("pages/draw.py", label="Draw a digit and try it", icon=":material/draw:")


def queue_board(watched: TrainingRun | None = None) -> None:
    """Every run training or waiting, in order, with Stop or Cancel for its owner and the
    teacher (but for ``watched``, whose own status shows them); the queue is the same for
    every browser."""
    snapshot = ui.queue_snapshot()
    if problem := ui.training_queue().storage_error:
        st.warning(f"{markdown_literal(problem)}.", icon=":material/save:")
    if not (snapshot.training or snapshot.waiting):
        st.caption("The training queue is empty: a Start trains at once.")
        return
    for run in snapshot.training:
        text, action = st.columns([4, 1], vertical_alignment="center")
        state = run.state
        text.markdown(
            f"**Training**: {whose(run)} {markdown_literal(run.label)}, "
            f"{state.overall_progress:.0%} done"
        )
        if run is not watched:
            with action:
                run_actions(run, "board")
    for waiting in snapshot.waiting:
        run = waiting.run
        text, action = st.columns([4, 1], vertical_alignment="center")
        text.markdown(
            f"**{waiting.position}.** {whose(run)} {markdown_literal(run.label)}, starts in about "
            f"{ui.duration(waiting.starts_in)}"
        )
        if run is not watched:
            with action:
                run_actions(run, "board")


def interrupted_runs() -> None:
    """Runs a server restart cut short that this browser (or the teacher) may resume
    from their last epoch checkpoint or discard."""
    queue, me = ui.training_queue(), who.requester()
    runs = [run for run in ui.queue_snapshot().interrupted if me.may_act_on(run.owner)]
    with st.container():  # one element however many: the pollers below keep their place
        for run in runs:
            _interrupted_run(queue, me, run)


def _interrupted_run(queue: TrainingQueue, me: Requester, run: TrainingRun) -> None:
    epochs = queue.resumable_epochs(run)
    job = run.jobs[run.first]
    where = f"after epoch {epochs} of {job.training.epochs}" if epochs else "before an epoch ended"
    with st.container(border=True):
        st.warning(
            f"{whose(run)} run, {markdown_literal(run.label)}, was cut short when the "
            f"server stopped, {where}.",
            icon=":material/restart_alt:",
        )
        resume, discard = st.columns(2)
        if resume.button(
            f"Resume from epoch {epochs + 1}" if epochs else "Start it again",
            key=f"resume-{run.id}",
            type="primary",
        ):
            try:
                queue.resume(run.id, me)
            except (QueueRefused, NotAllowed) as error:
                st.warning(f"{markdown_literal(error)}.")
            else:
                st.rerun()
        if discard.button("Discard it", key=f"discard-{run.id}"):
            queue.discard(run.id, me)
            st.rerun()


@contextmanager
def said_if_refused() -> Iterator[None]:
    """A request the queue cannot take now (its Redis away, say) said on the page."""
    try:
        yield
    except QueueRefused as error:
        st.warning(f"{markdown_literal(error)}.", icon=":material/cloud_off:")


def teacher_controls() -> None:
    """The sidebar's Teacher panel: the passphrase, then the queue with Stop and Cancel
    for every run, Clear, and the caps on what students may ask for."""
    passphrase = who.teacher_passphrase()
    teacher = who.requester().teacher
    if error := st.session_state.pop("teacher_error", None):
        st.sidebar.error(error)  # outside the panel, which a rerun folds
    with st.sidebar.expander("Teacher", icon=":material/school:", expanded=teacher):
        if passphrase is None:
            st.caption(
                f"Set {who.PASSPHRASE_VARIABLE} (or teacher_passphrase in .streamlit/secrets.toml) "
                "before starting the app to turn on the teacher's controls."
            )
        elif not teacher:
            with st.form("teacher-login", border=False, clear_on_submit=True):
                st.text_input("Passphrase", type="password", key="passphrase_given")
                st.form_submit_button(
                    "Unlock", icon=":material/lock_open:", on_click=_check_passphrase
                )
        else:
            _teacher_panel()


def _check_passphrase() -> None:
    given = st.session_state.get("passphrase_given", "")
    if hmac.compare_digest(given.encode(), (who.teacher_passphrase() or "").encode()) and given:
        who.unlock_teacher()
        return
    time.sleep(1)  # slows guessing
    st.session_state["teacher_error"] = "That is not the teacher's passphrase."


def _teacher_panel() -> None:
    queue, me = ui.training_queue(), who.requester()
    st.success("Teacher controls on.", icon=":material/school:")
    st.fragment(run_every=2.0)(queue_board)()  # live, whatever page the teacher is on
    waiting = len(ui.queue_snapshot().waiting)
    if st.button(f"Clear the queue ({waiting} waiting)", disabled=not waiting):
        with said_if_refused():
            queue.clear(me)
            st.rerun()
    limits = queue.limits
    with st.form("caps", border=False):
        seconds = st.number_input(
            "Longest time budget for students (s, 0: none)", 0, 3600, int(limits.max_seconds or 0)
        )
        images = st.number_input(
            "Most training images for students (0: all)",
            0,
            len(ui.mnist().y_train),
            limits.max_train_size or 0,
            step=1000,
        )
        if st.form_submit_button("Apply the limits"):
            with said_if_refused():
                changed = replace(
                    limits, max_seconds=seconds or None, max_train_size=images or None
                )
                queue.set_limits(changed, me)
                st.rerun()
    st.caption("You may rename or delete any model on the Models page.")
    if st.button("Lock the teacher controls", icon=":material/lock:"):
        who.lock_teacher()
        st.rerun()
