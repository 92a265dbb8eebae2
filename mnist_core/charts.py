"""Charts for the pages: training curves (plotly) and probability bars (HTML).

Built here, not in the pages, so they can be tested without a browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from .data import NUM_CLASSES
from .protocol import CurvePoint, RunState
from .registry import ModelEntry

COLORS = {"ann": "#1f77b4", "cnn": "#d62728"}
SPARE_COLORS = ("#2ca02c", "#9467bd")
DIGITS = [str(digit) for digit in range(NUM_CLASSES)]  # the digits as axis labels
BAR_PIXELS = 150  # the height of a 100% bar
METRIC_TITLES = {"loss": "Loss (lower is better)", "accuracy": "Accuracy (higher is better)"}


@dataclass(frozen=True)
class Curves:
    """One model's curves, as ``training_curves`` draws them, in the colour of its kind."""

    label: str  # the legend's name
    kind: str
    batches: tuple[CurvePoint, ...]  # training metrics every few batches (may be empty)
    epochs: tuple[CurvePoint, ...]  # training and validation metrics at each epoch's end


def run_curves(state: RunState) -> list[Curves]:
    """The curves of a run's jobs that have begun, labelled by kind."""
    return [
        Curves(job.kind.upper(), job.kind, batches, epochs)
        for job, batches, epochs in zip(state.jobs, state.batches, state.epochs, strict=True)
        if batches
    ]


def saved_curves(entry: ModelEntry) -> Curves:
    """A saved model's validation curve, from its metadata."""
    return Curves(f"{entry.name} (saved)", entry.kind, (), tuple(entry.validation_curve))


def training_curves(live: Sequence[Curves], metric: str, saved: Sequence[Curves] = ()) -> go.Figure:
    """One chart of ``metric`` (``"loss"`` or ``"accuracy"``).

    ``live`` curves are drawn bold: training values as a line, validation values as
    markers at each epoch end. ``saved`` curves (validation only) are drawn faint, to
    compare with.
    """
    figure = go.Figure()
    for curves in saved:
        figure.add_scatter(
            x=[p.epochs_seen for p in curves.epochs],
            y=[getattr(p, f"val_{metric}") for p in curves.epochs],
            mode="lines+markers",
            name=curves.label,
            opacity=0.35,
            line={"color": COLORS[curves.kind], "dash": "dot"},
            marker={"size": 6},
        )
    for curves in live:
        color = COLORS[curves.kind]
        figure.add_scatter(
            x=[p.epochs_seen for p in curves.batches],
            y=[getattr(p, metric) for p in curves.batches],
            mode="lines",
            name=f"{curves.label} training",
            line={"color": color},
        )
        figure.add_scatter(
            x=[p.epochs_seen for p in curves.epochs],
            y=[getattr(p, f"val_{metric}") for p in curves.epochs],
            mode="lines+markers",
            name=f"{curves.label} validation",
            line={"color": color, "dash": "dot"},
            marker={"size": 9},
        )
    figure.update_layout(
        title=METRIC_TITLES[metric],
        xaxis_title="epochs",
        height=320,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.25},
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
    return (
        f'<div role="img" aria-label="{kind.upper()} probabilities, {summary}" '
        f'style="display:flex;gap:2px;height:{BAR_PIXELS + 60}px">{columns}</div>'
    )


def confusion_heatmap(confusion: np.ndarray, title: str, by_row: bool = False) -> go.Figure:
    """A confusion matrix (row = true digit, column = predicted) as a heatmap; ``by_row``
    shows each row's shares (what each true digit was read as) instead of counts."""
    values = (
        confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1) if by_row else confusion
    )
    text = [[f"{v:.0%}" if by_row else f"{v:,}" for v in row] for row in values]
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=DIGITS,
            y=DIGITS,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
            hovertemplate="true %{y}, read %{x}: %{text}<extra></extra>",
        )
    )
    figure.update_layout(
        title=title,
        height=420,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis_title="predicted digit",
        yaxis_title="true digit",
        yaxis={"autorange": "reversed", "tickmode": "array", "tickvals": DIGITS},
        xaxis={"tickmode": "array", "tickvals": DIGITS},
    )
    return figure


def per_digit_bars(accuracies: dict[str, tuple[str, np.ndarray]]) -> go.Figure:
    """Each model's accuracy on each digit, as grouped bars: ``{label: (kind, ten values)}``."""
    figure = go.Figure()
    spare, used = iter(SPARE_COLORS), set()  # a second model of the same kind: a spare colour
    for label, (kind, values) in accuracies.items():
        color = next(spare) if COLORS[kind] in used else COLORS[kind]
        used.add(color)
        figure.add_bar(
            x=DIGITS,
            y=values,
            name=label,
            marker_color=color,
            text=[f"{v:.1%}" for v in values],
            textposition="outside",
        )
    low = min(float(np.nanmin(values)) for _, values in accuracies.values())
    figure.update_layout(
        barmode="group",
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": "true digit", "tickmode": "array", "tickvals": DIGITS},
        yaxis={"tickformat": ".0%", "range": [max(0.0, low - 0.05), 1.01]},
        legend={"orientation": "h", "y": -0.2},
    )
    return figure
