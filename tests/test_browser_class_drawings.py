"""The class's own handwriting in a real browser: two students keep drawings on the Draw
page, see them on the class's drawings page, delete their own and only their own, and the
board shows the drawing that fooled the networks."""

from __future__ import annotations

import re
import shutil

import pytest

from bench.browser import (
    browser_missing,
    clear_of_toolbar,
    draw,
    new_page,
    open_draw_page,
    predictions,
    settle,
)
from bench.synthetic_digits import DIGITS
from mnist_core.class_drawings import ClassSet
from mnist_core.drawings import DrawingsFolder

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))


@pytest.fixture(scope="module")
def models_dir(trained_models, tmp_path_factory):
    return shutil.copytree(trained_models, tmp_path_factory.mktemp("class") / "models")


def keep(page, digit: int, meant: int, writer: str, first_unlabelled: bool = False) -> None:
    """Draw ``digit``, say it is ``meant``, type the writer's name, Keep; return once the
    fresh canvas is back. ``first_unlabelled``: press Keep before choosing, and be told."""
    strokes = [[(0.2 + 0.6 * x, 0.15 + 0.7 * y) for x, y in s] for s in DIGITS[digit]]
    draw(page, clear_of_toolbar(strokes))
    predictions(page, f"the drawn {digit}")
    form = page.get_by_test_id("stMain").get_by_test_id("stForm")  # not the Teacher panel's
    if first_unlabelled:
        form.get_by_role("button", name="Keep").click()
        refusal = page.get_by_text("Say which digit you meant (0-9) before keeping the drawing.")
        playwright.expect(refusal).to_be_visible(timeout=20_000)
    form.get_by_test_id("stButtonGroup").locator("button").nth(meant).click()
    form.locator("input[type=text]").fill(writer)
    form.get_by_role("button", name="Keep").click()
    playwright.expect(page.get_by_text(f"Kept as a {meant}")).to_be_visible(timeout=20_000)
    page.get_by_text("Draw a digit on the black square").wait_for(timeout=20_000)
    settle(page)


def shown_count(page) -> int:
    metric = page.get_by_test_id("stMetric").first  # "Drawings", then writers, rarest digit
    playwright.expect(metric).to_be_visible(timeout=30_000)
    return int(re.search(r"Drawings\s+([\d,]+)", metric.inner_text())[1].replace(",", ""))


def test_two_students_keep_see_delete_and_are_fooled(app_server, browser, served_drawings):
    expect = playwright.expect
    with new_page(browser) as ana, new_page(browser) as ben:
        open_draw_page(ana, app_server)
        keep(ana, 7, meant=7, writer="Ana <b>**x**</b>", first_unlabelled=True)
        keep(ana, 4, meant=9, writer="Ana <b>**x**</b>")  # a label that fools any network
        open_draw_page(ben, app_server)
        keep(ben, 1, meant=1, writer="Ben")

        kept = ClassSet(DrawingsFolder(served_drawings)).read().drawings
        assert sorted((d.digit, d.writer) for d in kept) == [
            (1, "Ben"),
            (7, "Ana <b>**x**</b>"),
            (9, "Ana <b>**x**</b>"),
        ]
        assert all(len(d.strokes) == len(DIGITS[d.digit if d.digit != 9 else 4]) for d in kept)

        ben.goto(f"{app_server}/drawings")
        assert shown_count(ben) == 3
        expect(ben.get_by_text("7 by Ana <b>**x**</b>")).to_be_visible(timeout=30_000)  # as typed
        delete = ben.get_by_role("button", name="Delete")
        expect(delete).to_have_count(1)  # Ben's own drawing only
        delete.click()
        expect(ben.get_by_test_id("stMetric").first).to_contain_text("2")
        assert {d.writer for d in ClassSet(DrawingsFolder(served_drawings)).read().drawings} == {
            "Ana <b>**x**</b>"
        }

        ana.goto(f"{app_server}/fooled")
        expect(ana.get_by_text(re.compile(r"^9 by Ana"))).to_be_visible(timeout=30_000)
        assert ana.get_by_test_id("stException").count() == 0
