"""A class on one server, in real browsers: two students and a teacher, each their own
browser context (cookies included), trying to stop, cancel, rename and delete each other's
runs and models."""

import re
import shutil

import pytest
from playwright.sync_api import expect

from bench.browser import new_page, unlock_teacher

WAIT = 60_000  # ms: a busy two-core machine trains while these pages run


@pytest.fixture(scope="module")
def models_dir(trained_models, tmp_path_factory):
    copy = tmp_path_factory.mktemp("classroom") / "models"
    shutil.copytree(trained_models, copy)
    return copy


def main(page):
    return page.get_by_test_id("stMain")


def sidebar(page):
    return page.get_by_test_id("stSidebar")


def sees(where, text: str | re.Pattern) -> None:
    """Wait until ``where`` (a page or a part of one) shows ``text``."""
    expect(where.get_by_text(text)).to_be_visible(timeout=WAIT)


def test_students_act_only_on_their_own_runs_and_the_teacher_on_all(
    app_server, browser, teacher_passphrase
):
    with new_page(browser) as alice, new_page(browser) as bob, new_page(browser) as teacher:
        alice.goto(f"{app_server}/train?kind=ann&epochs=500&name=alices-net")
        alice.get_by_role("button", name="Start training").click()
        sees(alice, "Your run, ANN alices-net: training")
        alice.reload()  # a new session, as after a long sleep: the cookie keeps the run hers
        sees(alice, "Your run, ANN alices-net: training")
        expect(main(alice).get_by_role("button", name="Stop")).to_be_visible()

        bob.goto(f"{app_server}/train?kind=cnn&epochs=1&name=bobs-net")
        sees(bob, "Another browser's run, ANN alices-net")
        expect(main(bob).get_by_role("button", name="Stop")).to_have_count(0)
        bob.get_by_role("button", name="Start training").click()
        sees(bob, re.compile(r"Waiting in the queue: number 1, starts in"))
        expect(bob.get_by_text(re.compile(r"^1\. Your CNN bobs-net"))).to_be_visible()
        bob.get_by_label("Epochs").fill("2")  # a second run, not a double click
        bob.get_by_role("button", name="Start training").click()  # one may wait
        sees(bob, re.compile("already have a training waiting"))

        bob.goto(f"{app_server}/models")  # models bob did not train: locked for him
        sees(bob, re.compile("Only the browser that trained this model"))
        expect(bob.get_by_role("button", name="Delete this model...")).to_be_disabled()
        expect(bob.get_by_role("button", name="Rename")).to_be_disabled()

        teacher.goto(f"{app_server}/train")
        unlock_teacher(teacher, "guess")
        sees(teacher, "That is not the teacher's passphrase.")
        unlock_teacher(teacher, teacher_passphrase)
        sees(teacher, "Teacher controls on.")
        panel = sidebar(teacher)
        sees(panel, re.compile(r"^1\. Browser \w+'s CNN bobs-net"))
        panel.get_by_role("button", name="Cancel").click()
        sees(panel, "Clear the queue (0 waiting)")
        panel.get_by_role("button", name="Stop").click()
        sees(alice, re.compile(r"saved as alices-net \(stopped early\)"))

        teacher.goto(f"{app_server}/models")
        delete = teacher.get_by_role("button", name="Delete this model...")
        expect(delete).to_be_enabled(timeout=WAIT)
        expect(teacher.get_by_text("Only the browser that trained this model")).to_have_count(0)
