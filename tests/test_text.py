"""User text shows as itself: Markdown, Streamlit's own syntax and plotly's HTML are escaped.

The exact escaped forms are checked first; then a CommonMark renderer reads them back to the
original text; then a real page shows a model whose legal name Markdown would otherwise turn
into an em dash and bold type.
"""

from __future__ import annotations

import html
import re
import shutil

import pytest

from mnist_core.registry import ModelRegistry, sanitize_name
from mnist_core.text import WORD_JOINER, as_read, markdown_literal, plotly_literal

WJ = WORD_JOINER
TRICKY = [
    "**bold** _it_ [link](http://x.org) `code` # h",
    "<b>bold</b> <img src=x onerror=alert(1)> <http://a.b>",
    "a -> b <- c -- d >= e <= f ~= g <-> h",
    ":smile: :material/home: :red[x] :streamlit: :blue-badge[b] :100:",
    "$x^2$ and $$ cost $5",
    "Tom &amp; Jerry &lt;b&gt; &copy;",
    "www.evil.com a@b.com https://x.y/z?q=1 | pipe | ~~strike~~",
    r"back\slash \*not* 1. ünï côdé 数字 🙂",
]


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain words 123", "plain words 123"),
        ("**x**", r"\*\*x\*\*"),
        ("<b>&amp;", r"\<b\>\&amp\;"),
        ("$5 and $6", r"\$5 and \$6"),
        ("a->b", f"a\\-{WJ}\\>b"),
        ("ann--v2", f"ann\\-{WJ}\\-v2"),
        (":red[x]", f"\\:{WJ}red\\[x\\]"),
        (":material/home:", f"\\:{WJ}material\\/home\\:"),
        ("ends with: ", r"ends with\: "),  # no pattern can follow
        (r"C:\path", f"C\\:{WJ}\\\\path"),
        ("- one\n\n# two\r\n3", r"\- one \# two 3"),
    ],
)
def test_markdown_literal_escapes_every_syntax_character(text, escaped):
    assert markdown_literal(text) == escaped


def test_markdown_literal_takes_any_object():
    assert markdown_literal(ValueError("bad *x*")) == r"bad \*x\*"


@pytest.mark.parametrize("text", TRICKY)
def test_a_markdown_renderer_reads_the_escaped_text_back_letter_for_letter(text):
    markdown_it = pytest.importorskip("markdown_it")
    renderer = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"])
    rendered = renderer.render(markdown_literal(text))
    body = re.fullmatch(r"<p>(.*)</p>\n", rendered, flags=re.DOTALL)
    assert body, rendered  # one paragraph: no list, heading, quote or code block
    shown = body.group(1).replace(WJ, "")
    assert "<" not in shown.replace("&lt;", "")  # no tag: no bold, link, code or image
    assert html.unescape(shown) == text.replace("\n", " ")


@pytest.mark.parametrize("text", TRICKY)
def test_as_read_gives_back_the_text_markdown_literal_was_given(text):
    assert as_read(markdown_literal(text)) == text.replace("\n", " ")


def test_plotly_literal_escapes_tags_and_entities_but_not_quotes():
    assert plotly_literal("<b>A</b> & <br> &amp; \"q\" 'a'") == (
        "&lt;b&gt;A&lt;/b&gt; &amp; &lt;br&gt; &amp;amp; \"q\" 'a'"
    )


def test_charts_show_model_names_as_plotly_text():
    import numpy as np

    from mnist_core.charts import Curves, accuracy_bars, confusion_heatmap, training_curves
    from mnist_core.protocol import CurvePoint

    name = "<b>x</b> & y"
    point = CurvePoint(**{f: 0.5 for f in CurvePoint.__dataclass_fields__})
    curves = training_curves([Curves(name, "ann", (point,), (point,))], "loss")
    assert {trace.name for trace in curves.data} == {
        "&lt;b&gt;x&lt;/b&gt; &amp; y training",
        "&lt;b&gt;x&lt;/b&gt; &amp; y validation",
    }
    bars = accuracy_bars({name: ("ann", np.full(10, 0.9))})
    assert bars.data[0].name == "&lt;b&gt;x&lt;/b&gt; &amp; y"
    heatmap = confusion_heatmap(np.eye(10, dtype=int), f"{name}: 90% right")
    assert heatmap.layout.title.text == "&lt;b&gt;x&lt;/b&gt; &amp; y: 90% right"


# A name the registry accepts as it is, which Markdown would show as "ann—**v2**.b".
MARKDOWN_NAME = "ann--__v2__.b"


@pytest.fixture(scope="module")
def models_dir(trained_models, tmp_path_factory):
    """The session's trained models, the ANN renamed to MARKDOWN_NAME."""
    directory = shutil.copytree(trained_models, tmp_path_factory.mktemp("text") / "models")
    registry = ModelRegistry(directory)
    registry.rename(registry.entries("ann")[0].name, MARKDOWN_NAME)
    return directory


def test_a_name_that_is_markdown_shows_literally_on_the_evaluate_page(app_server, page):
    from playwright.sync_api import expect

    assert sanitize_name(MARKDOWN_NAME) == MARKDOWN_NAME
    page.goto(f"{app_server}/evaluate")
    tab = page.get_by_role("tab", name="Mistakes")
    expect(tab).to_be_visible(timeout=120_000)  # after both models' evaluation
    tab.click()
    heading = page.get_by_role("heading", name=re.compile(r"mistakes, most confident first"))
    expect(heading.first).to_be_visible(timeout=60_000)
    names = [text.split(":")[0].replace(WJ, "") for text in heading.all_inner_texts()]
    assert MARKDOWN_NAME in names, names
    assert not page.locator("h3 strong, h3 em").count()  # no bold, no italics
