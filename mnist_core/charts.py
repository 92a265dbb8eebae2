"""Plotly figures for the pages: training curves and probability bars.

Built here, not in the pages, so they can be tested without a browser.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

COLORS = {"ann": "#1f77b4", "cnn": "#d62728"}
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


def probability_bars(probabilities: np.ndarray, kind: str) -> go.Figure:
    """Ten bars, one per digit, the most likely one highlighted."""
    best = int(np.argmax(probabilities))
    colors = [COLORS[kind] if d == best else "#b0b0b0" for d in range(10)]
    figure = go.Figure(go.Bar(
        x=[str(d) for d in range(10)], y=probabilities, marker_color=colors,
        text=[f"{p:.0%}" if p >= 0.01 else "" for p in probabilities], textposition="outside",
    ))
    figure.update_layout(
        height=260, margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"type": "category", "dtick": 1, "tickfont": {"size": 18}},
        yaxis={"range": [0, 1.15], "tickformat": ".0%"},
    )
    return figure
