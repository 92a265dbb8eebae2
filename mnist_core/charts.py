"""Charts for the pages: training curves (plotly), probability bars and image strips (HTML).

Built here, not in the pages, so they can be tested without a browser.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from .data import NUM_CLASSES
from .preprocessing import scaled_size
from .protocol import CurvePoint, RunState
from .registry import ModelEntry
from .robustness import Robustness
from .text import plotly_literal

COLORS = {"ann": "#1f77b4", "cnn": "#d62728"}
SPARE_COLORS = ("#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
DIGITS = [str(digit) for digit in range(NUM_CLASSES)]  # the digits as axis labels
BAR_PIXELS = 150  # the height of a 100% bar
METRIC_TITLES = {"loss": "Loss (lower is better)", "accuracy": "Accuracy (higher is better)"}
# What the curves' x axis can be: the CurvePoint field it reads and the axis title.
X_AXES = {"epochs": ("epochs_seen", "epochs"), "seconds": ("elapsed", "seconds of training")}


@dataclass(frozen=True)
class Curves:
    """One model's curves, as ``training_curves`` draws them."""

    label: str  # the legend's name
    kind: str
    batches: tuple[CurvePoint, ...]  # training metrics every few batches (may be empty)
    epochs: tuple[CurvePoint, ...]  # training and validation metrics at each epoch's end


def run_curves(state: RunState) -> list[Curves]:
    """The curves of a run's jobs that have begun, labelled by kind (by name in an
    experiment, where several are of one kind)."""
    return [
        Curves(job.name if job.experiment else job.kind.upper(), job.kind, batches, epochs)
        for job, batches, epochs in zip(state.jobs, state.batches, state.epochs, strict=True)
        if batches
    ]


def saved_curves(entry: ModelEntry) -> Curves:
    """A saved model's validation curve, from its metadata."""
    return Curves(f"{entry.name} (saved)", entry.kind, (), tuple(entry.validation_curve))


def model_curves(entry: ModelEntry) -> Curves:
    """A saved model's full curves, training and validation, from its metadata."""
    return Curves(
        entry.name, entry.kind, tuple(entry.training_curve), tuple(entry.validation_curve)
    )


def model_colors(kinds: Sequence[str]) -> list[str]:
    """A colour for each of several models: its kind's for the first of a kind, so an ANN
    and a CNN look as everywhere else, then spare colours in turn."""
    spare = itertools.cycle(SPARE_COLORS)
    used: set[str] = set()
    colors = []
    for kind in kinds:
        colors.append(next(spare) if COLORS[kind] in used else COLORS[kind])
        used.add(colors[-1])
    return colors


def training_curves(
    live: Sequence[Curves], metric: str, saved: Sequence[Curves] = (), x_axis: str = "epochs"
) -> go.Figure:
    """One chart of ``metric`` (``"loss"`` or ``"accuracy"``) against ``x_axis`` (a key
    of ``X_AXES``).

    ``live`` curves are drawn bold, a colour each: training values as a line, validation
    values as markers at each epoch end. ``saved`` curves (validation only) are drawn
    faint in their kind's colour, to compare with.
    """
    x_field, x_title = X_AXES[x_axis]
    figure = go.Figure()
    for curves in saved:
        figure.add_scatter(
            x=[getattr(p, x_field) for p in curves.epochs],
            y=[getattr(p, f"val_{metric}") for p in curves.epochs],
            mode="lines+markers",
            name=plotly_literal(curves.label),
            opacity=0.35,
            line={"color": COLORS[curves.kind], "dash": "dot"},
            marker={"size": 6},
        )
    for curves, color in zip(live, model_colors([c.kind for c in live]), strict=True):
        figure.add_scatter(
            x=[getattr(p, x_field) for p in curves.batches],
            y=[getattr(p, metric) for p in curves.batches],
            mode="lines",
            name=f"{plotly_literal(curves.label)} training",
            line={"color": color},
        )
        figure.add_scatter(
            x=[getattr(p, x_field) for p in curves.epochs],
            y=[getattr(p, f"val_{metric}") for p in curves.epochs],
            mode="lines+markers",
            name=f"{plotly_literal(curves.label)} validation",
            line={"color": color, "dash": "dot"},
            marker={"size": 9},
        )
    figure.update_layout(
        title=METRIC_TITLES[metric],
        xaxis_title=x_title,
        height=320 + 20 * len(live),  # room below for the legend's rows
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.22},
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


def image_strip(images: Sequence[tuple[np.ndarray, str]], size: int = 160) -> str:
    """Small images (values in [0, 1] or uint8) side by side, each ``size`` pixels on its
    longer side with its caption (shown as written) below, as plain HTML with the images inline.

    One element, not ``st.image`` in columns: the Draw page shows its preprocessing steps at
    every stroke, and each ``st.image`` is a PNG enlarged and encoded on the server, a file
    the browser then fetches and a few more messages per rerun (measured with 30 sessions
    drawing: the server's CPU is what the training on the same cores loses). Here each image
    is encoded at its own size and the browser enlarges it with crisp pixels.
    """
    figures = "".join(
        f'<figure style="margin:0;display:flex;flex-direction:column;align-items:center">'
        f'<img src="{_png_data_url(image, size)}" alt="{text}" style="width:{width}px;'
        f'height:{height}px;image-rendering:pixelated;background:#000">'
        f'<figcaption style="font-size:0.875rem;opacity:0.6;text-align:center;'
        f'max-width:{size}px">{text}</figcaption></figure>'
        for image, caption in images
        for width, height in [scaled_size(image.shape, size)]
        for text in [html.escape(caption)]
    )
    return f'<div style="display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-end">{figures}</div>'


def _png_data_url(image: np.ndarray, size: int) -> str:
    """``image`` as a grey PNG data URL, shrunk to ``size`` if larger (never enlarged)."""
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.max(initial=0.0) > 1.0:
        pixels = pixels / 255.0
    picture = Image.fromarray((pixels.clip(0, 1) * 255).astype(np.uint8))
    if max(picture.size) > size:
        picture = picture.resize(scaled_size(pixels.shape, size), Image.Resampling.BOX)
    encoded = io.BytesIO()
    picture.save(encoded, format="PNG")
    return "data:image/png;base64," + base64.b64encode(encoded.getvalue()).decode("ascii")


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
        title=plotly_literal(title),
        height=420,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis_title="predicted digit",
        yaxis_title="true digit",
        yaxis={"autorange": "reversed", "tickmode": "array", "tickvals": DIGITS},
        xaxis={"tickmode": "array", "tickvals": DIGITS},
    )
    return figure


def accuracy_bars(
    accuracies: dict[str, tuple[str, np.ndarray]],
    categories: Sequence[object] = DIGITS,
    axis_title: str = "true digit",
) -> go.Figure:
    """Each model's accuracy on each of ``categories`` (each digit, each source of
    handwriting), as grouped bars: ``{label: (kind, a value per category)}``."""
    figure = go.Figure()
    colors = model_colors([kind for kind, _ in accuracies.values()])
    for (label, (_, values)), color in zip(accuracies.items(), colors, strict=True):
        figure.add_bar(
            x=[plotly_literal(category) for category in categories],
            y=values,
            name=plotly_literal(label),
            marker_color=color,
            text=[f"{v:.1%}" for v in values],
            textposition="outside",
        )
    low = min(float(np.nanmin(values)) for _, values in accuracies.values())
    figure.update_layout(
        barmode="group",
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": axis_title, "type": "category"},
        yaxis={"tickformat": ".0%", "range": [max(0.0, low - 0.05), 1.01]},
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


ROBUSTNESS_COLUMNS = 3  # panels per row: six perturbations in two rows


def robustness_curves(by_kind: dict[str, Robustness]) -> go.Figure:
    """Accuracy against the amount of each perturbation, one small panel each, every
    model of ``by_kind`` (kind -> its measurement) on the same axes in its kind's colour.

    Large type and thick lines: it is meant to be read from the back of a classroom (show
    it with ``theme=None``: Streamlit's chart theme shrinks the type).
    """
    sweeps = next(iter(by_kind.values())).sweeps
    rows = -(-len(sweeps) // ROBUSTNESS_COLUMNS)
    figure = make_subplots(
        rows=rows,
        cols=ROBUSTNESS_COLUMNS,
        subplot_titles=[f"<b>{sweep.perturbation.title}</b>" for sweep in sweeps],
        vertical_spacing=0.25,
        horizontal_spacing=0.05,
        shared_yaxes=True,
    )
    for index, sweep in enumerate(sweeps):
        row, col = divmod(index, ROBUSTNESS_COLUMNS)
        perturbation = sweep.perturbation
        for kind, measured in by_kind.items():
            figure.add_scatter(
                x=perturbation.amounts,
                y=measured.sweep(perturbation.name).accuracy,
                mode="lines+markers",
                name=kind.upper(),
                legendgroup=kind,
                showlegend=index == 0,
                line={"color": COLORS[kind], "width": 4},
                marker={"size": 8},
                hovertemplate="%{y:.1%}",
                row=row + 1,
                col=col + 1,
            )
        figure.update_xaxes(title_text=perturbation.axis, row=row + 1, col=col + 1)
    figure.update_xaxes(zeroline=False)
    figure.update_yaxes(range=[0, 1.03], tickformat=".0%", dtick=0.25, zeroline=False)
    figure.update_annotations(font_size=22)  # the panel titles
    figure.update_layout(
        template="plotly_white",
        height=360 * rows,
        font={"size": 17},
        margin={"l": 70, "r": 20, "t": 50, "b": 10},
        legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right", "font": {"size": 18}},
        hovermode="x unified",
    )
    return figure


SET_COLORS = {"training": "#5f5f5f", "test": "#b3b3b3"}  # grey: not a model's colour


def class_count_bars(counts: dict[str, np.ndarray]) -> go.Figure:
    """How many examples of each digit each set has (``{set name: ten counts}``): bar
    heights are shares of their set, so sets of any size compare; labels give the counts."""
    figure = go.Figure()
    for name, digit_counts in counts.items():
        shares = digit_counts / max(int(digit_counts.sum()), 1)
        figure.add_bar(
            x=DIGITS,
            y=shares,
            name=f"{name} ({int(digit_counts.sum()):,} digits)",
            marker_color=SET_COLORS[name],
            text=[f"{int(count):,}" for count in digit_counts],
            textposition="inside",  # upright in the bar: side by side, they would overlap
            textangle=-90,
            insidetextanchor="end",
            hovertemplate="digit %{x}: %{text} (%{y:.1%})<extra></extra>",
        )
    figure.update_layout(
        barmode="group",
        height=380,
        font={"size": 15},
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": "digit", "tickmode": "array", "tickvals": DIGITS, "tickfont_size": 20},
        yaxis={"title": "share of its set", "tickformat": ".0%"},
        legend={"orientation": "h", "y": 1.1, "x": 1, "xanchor": "right"},
    )
    return figure


def pixel_values(image: np.ndarray, title: str) -> go.Figure:
    """A digit's 28x28 grey values (0 black - 255 white) written in its pixels, as the
    network gets them before scaling; blank pixels stay unlabelled so the digit shows."""
    values = np.asarray(image, dtype=np.uint8)
    figure = go.Figure(
        go.Heatmap(
            z=values,
            text=[[str(v) if v else "" for v in row] for row in values],
            texttemplate="%{text}",
            textfont={"size": 12},
            colorscale="Greys_r",
            zmin=0,
            zmax=255,
            showscale=False,
            hovertemplate="row %{y}, column %{x}: %{z}<extra></extra>",
        )
    )
    figure.update_layout(
        title=plotly_literal(title),
        height=820,
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
        xaxis={"side": "top", "constrain": "domain"},
        yaxis={"autorange": "reversed", "scaleanchor": "x", "constrain": "domain"},
    )
    return figure


DIVERGING = "RdBu_r"  # blue below zero, white at zero, red above: weights and saliency
TILE_GAP = 1  # blank cells between the small images of an image_grid


def image_grid(
    images: np.ndarray,
    name: str,
    numbers: Sequence[int],
    columns: int,
    diverging: bool,
    tile_pixels: int,
) -> go.Figure:
    """Small images (n, height, width) in a grid, each on its own scale, as one heatmap,
    ``tile_pixels`` wide each (less if the page is narrower), from the top left corner.

    One trace, not a subplot per image: a block of 96 feature maps draws at once.
    ``diverging``: each image is scaled by its largest absolute value onto a red-white-blue
    scale (zero is white), for weights and gradients; else from its own lowest (black) to
    highest (white) value, for activations. Hovering a pixel says "``name`` number: value".
    """
    count, height, width = images.shape
    rows = -(-count // columns)
    step_y, step_x = height + TILE_GAP, width + TILE_GAP
    shown = np.full((rows * step_y - TILE_GAP, columns * step_x - TILE_GAP), np.nan)
    hover = np.full((*shown.shape, 2), np.nan)  # each pixel's image number and raw value
    for index, (image, number) in enumerate(zip(images, numbers, strict=True)):
        row, col = divmod(index, columns)
        if diverging:
            scaled = image / max(float(np.abs(image).max()), 1e-12)
        else:
            low, high = float(image.min()), float(image.max())
            scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
        top, left = row * step_y, col * step_x
        shown[top : top + height, left : left + width] = scaled
        hover[top : top + height, left : left + width] = np.stack(
            [np.full(image.shape, number), image], axis=-1
        )
    figure = go.Figure(
        go.Heatmap(
            z=shown,
            customdata=hover,  # numbers, not strings: plotly copies a string per pixel slowly
            hovertemplate=f"{name} %{{customdata[0]}}: %{{customdata[1]:.3g}}<extra></extra>",
            colorscale=DIVERGING if diverging else "gray",
            zmin=-1 if diverging else 0,
            zmax=1,
            showscale=False,
        )
    )
    figure.update_layout(
        height=round(tile_pixels * shown.shape[0] / width) + 10,
        margin={"l": 0, "r": 0, "t": 5, "b": 5},
        xaxis={"visible": False, "constrain": "domain", "constraintoward": "left"},
        yaxis={
            "visible": False,
            "autorange": "reversed",
            "scaleanchor": "x",
            "constrain": "domain",
            "constraintoward": "top",
        },
        plot_bgcolor="rgba(0,0,0,0)",
    )
    return figure


def saliency_heatmap(values: np.ndarray, image: np.ndarray, title: str) -> go.Figure:
    """One 28x28 saliency map on the diverging scale (red: more ink there raises the
    prediction's probability, blue: lowers it), with the digit's outline drawn over it.

    No colour bar: a sure model's gradients are tiny (1e-9 at 100%), and what a class
    compares is where they are large, so the scale is each map's own largest value."""
    limit = max(float(np.abs(values).max()), 1e-12)
    figure = go.Figure(
        go.Heatmap(
            z=values,
            colorscale=DIVERGING,
            zmin=-limit,
            zmax=limit,
            showscale=False,
            hovertemplate="row %{y}, column %{x}: %{z:.2e}<extra></extra>",
        )
    )
    figure.add_contour(
        z=image,
        contours={"start": 0.5, "end": 0.5, "coloring": "none"},
        line={"color": "#404040", "width": 2},
        showscale=False,
        hoverinfo="skip",
    )
    figure.update_layout(
        title={"text": plotly_literal(title), "font": {"size": 20}},
        height=420,
        margin={"l": 0, "r": 0, "t": 50, "b": 0},
        xaxis={"visible": False, "constrain": "domain"},
        yaxis={"visible": False, "autorange": "reversed", "scaleanchor": "x"},
    )
    return figure
