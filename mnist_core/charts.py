"""Charts for the pages: training curves (plotly) and probability bars (HTML).

Built here, not in the pages, so they can be tested without a browser.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

COLORS = {"ann": "#1f77b4", "cnn": "#d62728"}
BAR_PIXELS = 150  # the height of a 100% bar
METRIC_TITLES = {"loss": "Loss (lower is better)", "accuracy": "Accuracy (higher is better)"}


def training_curves(runs: list[tuple[str, list[dict], list[dict]]], metric: str,
                    saved: list[tuple[str, str, list[dict]]] = ()) -> go.Figure:
    """One chart of ``metric`` for each (kind, batch events, epoch events) in ``runs``.

    Training values are drawn as a line (every few batches), validation values as
    markers at each epoch end, in the colour of the model's kind. ``saved`` holds
    (name, kind, epoch events) of saved models, drawn faint, to compare with.
    """
    figure = go.Figure()
    for name, kind, epochs in saved:
        figure.add_scatter(
            x=[e["epochs_seen"] for e in epochs], y=[e[f"val_{metric}"] for e in epochs],
            mode="lines+markers", name=f"{name} (saved)", opacity=0.35,
            line={"color": COLORS[kind], "dash": "dot"}, marker={"size": 6},
        )
    for kind, batches, epochs in runs:
        color, label = COLORS[kind], kind.upper()
        figure.add_scatter(
            x=[e["epochs_seen"] for e in batches], y=[e[metric] for e in batches],
            mode="lines", name=f"{label} training", line={"color": color},
        )
        figure.add_scatter(
            x=[e["epochs_seen"] for e in epochs], y=[e[f"val_{metric}"] for e in epochs],
            mode="lines+markers", name=f"{label} validation",
            line={"color": color, "dash": "dot"}, marker={"size": 9},
        )
    figure.update_layout(
        title=METRIC_TITLES[metric], xaxis_title="epochs", height=320,
        margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h", "y": -0.25},
    )
    if metric == "accuracy":
        figure.update_yaxes(tickformat=".0%")
    return figure


def probability_bars(probabilities: np.ndarray, kind: str) -> str:
    """Ten bars, one per digit, the most likely one highlighted, as plain HTML.

    Not a plotly chart: the browser lays this out at once, where a chart held the Draw
    page's main thread ~100 ms at every stroke (measured on 2 cores).
    """
    best = int(np.argmax(probabilities))
    columns = "".join(
        f'<div title="{digit}: {p:.1%}" style="flex:1;display:flex;flex-direction:column;'
        f'align-items:center;justify-content:flex-end">'
        f'<span style="font-size:0.85rem">{f"{p:.0%}" if p >= 0.01 else "&nbsp;"}</span>'
        f'<div style="width:70%;height:{max(p * BAR_PIXELS, 2):.0f}px;'
        f'background:{COLORS[kind] if digit == best else "#b0b0b0"}"></div>'
        f'<b style="font-size:1.4rem">{digit}</b></div>'
        for digit, p in enumerate(probabilities)
    )
    summary = ", ".join(f"{digit}: {p:.0%}" for digit, p in enumerate(probabilities))
    return (f'<div role="img" aria-label="{kind.upper()} probabilities, {summary}" '
            f'style="display:flex;gap:2px;height:{BAR_PIXELS + 60}px">{columns}</div>')
