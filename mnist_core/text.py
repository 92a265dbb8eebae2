"""Text a user chose (a job's name, an experiment tag, a link's parameter, an imported model's
metadata, an error quoting them) made safe to show as itself, never as formatting.

Streamlit reads Markdown in far more places than ``st.markdown``: captions, alerts, subheaders,
progress texts, widget labels and help, and the cells of ``st.table``. Besides Markdown it turns
``$...$`` into LaTeX, ``:red[...]`` into colour, ``:material/x:`` into an icon, ``:smile:`` into
an emoji and ``->`` into an arrow. Plotly reads a few HTML tags (``<b>``, ``<br>``, ``<a>``) and
entities in every title, legend and label. Either way a name like ``**x** <br> :red[y]`` would
show as something else; these functions make it show letter for letter.
"""

from __future__ import annotations

import html
import re
import string

# CommonMark lets any ASCII punctuation be backslash-escaped, and an escaped character is never
# syntax: escaping them all also covers Streamlit's own syntax ($ for LaTeX, :colour[...] for
# colours) and GFM's autolinks (no "http://" or "www." is left to find).
_PUNCTUATION = re.compile(f"([{re.escape(string.punctuation)}])")
# Streamlit finds these in the text *after* the escapes are read, so a backslash does not stop
# them: ":material/x:" icons, ":streamlit:" and emoji shortcodes, and the typographic pairs
# "<-", "->", "<->", "--", ">=", "<=", "~=". An invisible word joiner between the two
# characters breaks each pattern without changing what the reader sees.
_PATTERN_PAIRS = re.compile(r"(?<=:)(?=\S)|(?<=[-<>~])(?=[-<>=])")
WORD_JOINER = "\u2060"
_ESCAPED = re.compile(f"\\\\([{re.escape(string.punctuation)}])")
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")
MAX_SHOWN = 40  # characters of a bad name or value repeated in a message: enough to know it


def markdown_literal(text: object) -> str:
    """``text`` for any Streamlit element that reads Markdown, so that it shows exactly as
    written (line breaks become spaces: a name stays on its line, and cannot open a list or a
    heading). Use it on the user's text only, inside the app's own Markdown:
    ``st.success(f"Saved as **{markdown_literal(name)}**")``.
    """
    one_line = _LINE_BREAKS.sub(" ", str(text))
    return _PUNCTUATION.sub(r"\\\1", _PATTERN_PAIRS.sub(WORD_JOINER, one_line))


def as_read(markdown: str) -> str:
    """What a reader sees of ``markdown_literal``'s output: the text without its escapes and
    word joiners (for tests and the load benchmark, which read what the page says)."""
    return _ESCAPED.sub(r"\1", markdown).replace(WORD_JOINER, "")


def plotly_literal(text: object) -> str:
    """``text`` for a plotly title, legend entry or label, so that its ``<``, ``>`` and ``&``
    show as written instead of making tags or entities (quotes are left alone: plotly does not
    read ``&quot;``)."""
    return html.escape(str(text), quote=False)


def shortened(text: object, length: int = MAX_SHOWN) -> str:
    """``text`` cut to ``length`` characters, an ellipsis at the cut: what a message repeats
    of the user's input (a link, a form field can carry thousands of characters)."""
    text = str(text)
    return text if len(text) <= length else f"{text[: length - 1]}…"
