"""How well a model reads test digits that are moved, turned, resized, blurred, noisy or
partly hidden: the lesson of why convnets beat dense nets on images, measured.

A dense net sees 784 separate inputs: a digit moved two pixels lights other inputs than
the ones it learnt. A convnet looks for the same small strokes everywhere in the image.
The measurement puts a number on that for the two models the user trained, on a fixed,
balanced, seeded subset of the test set (the same digits for every model, so their
curves can be compared), one batch per amount, so a page can show a bar.

Each perturbation's random part (which way a digit moves or turns, where the patch
goes, the noise) is drawn from one seed per perturbation: every amount moves a digit the
same way, only further, and both models see exactly the same images.

``handwriting_reading`` says the other half of the lesson: how each reads other people's
handwriting (a drawings set), whichever way it goes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .data import IMAGE_SIZE, MnistData, stratified_subset
from .evaluation import Evaluation, TestDigits
from .models import INPUT_SHAPE, to_input
from .preprocessing import centre_by_mass

SUBSET_SIZE = 1000  # test digits measured: the CNN's whole sweep takes seconds on 2 cores
SEED = 0
BATCH = 1000  # images per prediction call: large enough to be fast, small enough for memory
CENTRE = (IMAGE_SIZE - 1) / 2  # the image's middle, in pixel coordinates: where digits turn

Transform = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


def _shift(images: np.ndarray, pixels: float, rng: np.random.Generator) -> np.ndarray:
    """Each digit moved ``pixels`` whole pixels left, right, up or down (its own way)."""
    steps = np.array([(0, 1), (0, -1), (1, 0), (-1, 0)])[rng.integers(4, size=len(images))]
    return translate(images, steps * round(pixels))


def _rotate(images: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """Each digit turned ``degrees`` about the image's middle, clockwise or not (its own way)."""
    signs = rng.choice([-1.0, 1.0], size=len(images))
    return _affine(images, angles=np.radians(degrees * signs), scales=np.ones(len(images)))


def _scale(images: np.ndarray, percent: float, rng: np.random.Generator) -> np.ndarray:
    """Every digit made ``percent`` % bigger (smaller if negative), about the image's middle."""
    return _affine(
        images, angles=np.zeros(len(images)), scales=np.full(len(images), 1 + percent / 100)
    )


def _blur(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur of ``sigma`` pixels, within each image only."""
    if sigma == 0:
        return images
    return ndimage.gaussian_filter(images, sigma=(0, sigma, sigma), mode="constant")


def _noise(images: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of standard deviation ``std`` (1 = black to white), kept in [0, 1]."""
    noisy = images + rng.normal(0.0, std, size=images.shape).astype(np.float32)
    return np.clip(noisy, 0.0, 1.0)


def _occlude(images: np.ndarray, side: float, rng: np.random.Generator) -> np.ndarray:
    """A black ``side``-pixel square over each digit, centred on one of its inked pixels
    (chosen at random), so that it always hides part of the stroke."""
    side = round(side)
    inked = images.reshape(len(images), -1) > 0.5
    centres = (rng.random(inked.shape) * inked).argmax(axis=1)  # a random inked pixel
    rows, cols = np.divmod(centres, IMAGE_SIZE)
    top, left = rows - side // 2, cols - side // 2
    grid = np.arange(IMAGE_SIZE)
    in_rows = (grid >= top[:, None]) & (grid < top[:, None] + side)
    in_cols = (grid >= left[:, None]) & (grid < left[:, None] + side)
    return np.where(in_rows[:, :, None] & in_cols[:, None, :], 0.0, images).astype(np.float32)


@dataclass(frozen=True)
class Perturbation:
    """One way of changing test digits, and the amounts to measure it at (0: unchanged)."""

    name: str  # an identifier: "shift"
    title: str  # what the charts and the page call it: "Moved"
    unit: str  # of the amounts: "px"
    axis: str  # the charts' axis title: "pixels moved"
    meaning: str  # what an amount does, for the page
    amounts: tuple[float, ...]  # from 0 outward
    example: float  # the amount the page's reading quotes
    transform: Transform

    def apply(self, images: np.ndarray, amount: float, seed: int = SEED) -> np.ndarray:
        """``images`` (N, 28, 28) float in [0, 1] changed by ``amount``, the same way for
        the same ``seed``; ``amount`` 0 returns them unchanged."""
        images = np.asarray(images, dtype=np.float32)
        if amount == 0:
            return images
        return self.transform(images, amount, np.random.default_rng(seed))

    def describe(self, amount: float) -> str:
        """``amount`` with its unit, as the page writes it: "4 px", "30°", "-30%"."""
        return f"{amount:g}{self.unit}" if self.unit in ("°", "%") else f"{amount:g} {self.unit}"


PERTURBATIONS: tuple[Perturbation, ...] = (
    Perturbation(
        name="shift",
        title="Moved",
        unit="px",
        axis="pixels moved",
        meaning="each digit moved left, right, up or down by that many pixels",
        amounts=tuple(range(9)),
        example=4,
        transform=_shift,
    ),
    Perturbation(
        name="rotation",
        title="Turned",
        unit="°",
        axis="degrees turned",
        meaning="each digit turned one way or the other by that many degrees",
        amounts=tuple(range(0, 46, 5)),
        example=30,
        transform=_rotate,
    ),
    Perturbation(
        name="scale",
        title="Resized",
        unit="%",
        axis="% bigger",
        meaning="every digit made that much bigger (smaller below 0), about the middle",
        amounts=tuple(range(-50, 51, 10)),
        example=-30,
        transform=_scale,
    ),
    Perturbation(
        name="blur",
        title="Blurred",
        unit="px",
        axis="blur width σ (px)",
        meaning="a Gaussian blur that wide (its standard deviation)",
        amounts=(0, 0.5, 1, 1.5, 2, 2.5, 3),
        example=1.5,
        transform=_blur,
    ),
    Perturbation(
        name="noise",
        title="Noise added",
        unit="std",
        axis="noise std",
        meaning="random speckle of that standard deviation (1 = from black to white)",
        amounts=(0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6),
        example=0.3,
        transform=_noise,
    ),
    Perturbation(
        name="patch",
        title="Patch hidden",
        unit="px",
        axis="square's side (px)",
        meaning="a black square that wide over part of the stroke",
        amounts=tuple(range(0, 15, 2)),
        example=8,
        transform=_occlude,
    ),
)
BY_NAME = {perturbation.name: perturbation for perturbation in PERTURBATIONS}


@dataclass(frozen=True)
class Sweep:
    """A model's accuracy at each amount of one perturbation."""

    perturbation: Perturbation
    accuracy: tuple[float, ...]  # one per amount of ``perturbation.amounts``

    def at(self, amount: float) -> float:
        return self.accuracy[self.perturbation.amounts.index(amount)]

    @property
    def mean(self) -> float:
        """The accuracy averaged over the amounts: the area under the curve, roughly."""
        return float(np.mean(self.accuracy))


@dataclass(frozen=True)
class Robustness:
    """A model's accuracy on changed test digits: one sweep per perturbation."""

    digits: int  # test digits each accuracy is measured on
    sweeps: tuple[Sweep, ...]

    def sweep(self, name: str) -> Sweep:
        return next(sweep for sweep in self.sweeps if sweep.perturbation.name == name)

    def accuracy(self, name: str, amount: float) -> float:
        return self.sweep(name).at(amount)

    @property
    def unchanged(self) -> float:
        """The accuracy on the digits as they are."""
        return self.sweeps[0].at(0)


def measured_digits(data: MnistData, digits: int = SUBSET_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The test digits the measurement uses: float (N, 28, 28) in [0, 1], and their labels;
    balanced over the ten digits and the same on every call."""
    images, labels = stratified_subset(data.x_test, data.y_test, digits, seed=SEED)
    return to_input(images)[..., 0], labels.astype(np.int64)


def measure(
    model,
    data: MnistData,
    on_progress: Callable[[float], None] = lambda done: None,
    digits: int = SUBSET_SIZE,
    perturbations: Sequence[Perturbation] = PERTURBATIONS,
) -> Robustness:
    """``model``'s accuracy on ``digits`` test digits changed by each amount of each
    perturbation; ``on_progress(share done)`` after each amount. The unchanged digits
    are read once, not once per perturbation."""
    images, labels = measured_digits(data, digits)
    steps = 1 + sum(amount != 0 for p in perturbations for amount in p.amounts)
    unchanged = accuracy_on(model, images, labels)
    on_progress(1 / steps)
    done, sweeps = 1, []
    for perturbation in perturbations:
        accuracies = []
        for amount in perturbation.amounts:
            if amount == 0:
                accuracies.append(unchanged)
                continue
            accuracies.append(accuracy_on(model, perturbation.apply(images, amount), labels))
            done += 1
            on_progress(done / steps)
        sweeps.append(Sweep(perturbation, tuple(accuracies)))
    return Robustness(digits=len(labels), sweeps=tuple(sweeps))


def accuracy_on(model, images: np.ndarray, labels: np.ndarray) -> float:
    """The share of ``images`` (float (N, 28, 28) in [0, 1]) that ``model`` reads right."""
    right = 0
    for start in range(0, len(images), BATCH):
        batch = images[start : start + BATCH].reshape(-1, *INPUT_SHAPE)
        predicted = np.asarray(model.predict_on_batch(batch)).argmax(axis=1)
        right += int((predicted == labels[start : start + BATCH]).sum())
    return right / len(images)


def translate(images: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Each image moved by whole pixels, ``steps[i] = (down, right)``; ink moved past the
    edge is lost, new pixels are black. One gather for the whole batch."""
    steps = np.asarray(steps, dtype=np.int64).reshape(len(images), 2)
    margin = max(int(np.abs(steps).max(initial=0)), 1)
    padded = np.pad(images, ((0, 0), (margin, margin), (margin, margin)))
    grid = np.arange(IMAGE_SIZE)
    rows = grid[None, :] - steps[:, :1] + margin  # (N, 28): the source row of each row
    cols = grid[None, :] - steps[:, 1:] + margin
    batch = np.arange(len(images))[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]]


def _affine(images: np.ndarray, angles: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Each image turned by ``angles[i]`` radians (positive: clockwise on screen) and
    scaled by ``scales[i]`` about the image's middle, bilinear; one ``map_coordinates``
    call for the whole batch."""
    grid = np.arange(IMAGE_SIZE, dtype=np.float32) - CENTRE
    y, x = np.meshgrid(grid, grid, indexing="ij")  # each output pixel, from the middle
    cos = (np.cos(angles) / scales)[:, None, None]
    sin = (np.sin(angles) / scales)[:, None, None]
    # The inverse map: the source pixel of each output pixel.
    source_y = cos * y - sin * x + CENTRE
    source_x = sin * y + cos * x + CENTRE
    batch = np.broadcast_to(np.arange(len(images), dtype=np.float32)[:, None, None], source_y.shape)
    coordinates = np.stack([batch, source_y, source_x])
    return ndimage.map_coordinates(images, coordinates, order=1, cval=0.0).astype(np.float32)


def move(image: np.ndarray, right: int, down: int, degrees: float, recentre: bool) -> np.ndarray:
    """One 28x28 image turned ``degrees`` (clockwise) about its middle, then moved, then,
    if ``recentre``, centred the MNIST way (centre of mass in the middle), as the Draw
    page prepares every drawing: recentring undoes any move."""
    images = np.asarray(image, dtype=np.float32)[None]
    if degrees:
        images = _affine(images, angles=np.radians([degrees]), scales=np.ones(1))
    moved = translate(images, np.array([[down, right]]))[0]
    return centre_by_mass(moved) if recentre else moved


def reading(by_kind: dict[str, Robustness]) -> list[str]:
    """What the measurements say, in plain sentences with their numbers, whichever way they
    go: with two models, which holds up better against which changes (by the accuracy
    averaged over the amounts); then each model's accuracy unchanged and at each
    perturbation's example amount, best first."""
    kinds = list(by_kind)
    sentences = []
    if len(kinds) == 2:
        first, second = kinds
        better: dict[str, list[str]] = {first: [], second: [], "": []}  # "": about even
        for perturbation in PERTURBATIONS:
            name = perturbation.name
            gap = by_kind[first].sweep(name).mean - by_kind[second].sweep(name).mean
            winner = "" if abs(gap) < EVEN else first if gap > 0 else second
            better[winner].append(perturbation.title.lower())
        sentences += [
            f"**The {kind.upper()} holds up better** against: {', '.join(titles)}."
            for kind, titles in better.items()
            if kind and titles
        ]
        if better[""]:
            sentences.append(f"**About even** against: {', '.join(better[''])}.")
    unchanged = {kind: measured.unchanged for kind, measured in by_kind.items()}
    sentences.append(_scores("Unchanged", unchanged, decimals=1))
    for p in PERTURBATIONS:
        changed = {kind: m.accuracy(p.name, p.example) for kind, m in by_kind.items()}
        sentences.append(_scores(f"{p.title} {p.describe(p.example)}", changed))
    return sentences


EVEN = 0.02  # accuracy gaps smaller than this (averaged over the amounts) are called even


def _scores(what: str, accuracies: dict[str, float], decimals: int = 0) -> str:
    """One line of scores, best first: ``What: CNN **84%**, ANN **33%**.``"""
    ranked = sorted(accuracies.items(), key=lambda item: -item[1])
    shown = ", ".join(f"{kind.upper()} **{value:.{decimals}%}**" for kind, value in ranked)
    return f"{what}: {shown}."


MIN_PER_SOURCE = 100  # digits a source needs before a sentence names it


def handwriting_reading(
    digits: TestDigits, by_kind: dict[str, Evaluation], mnist_accuracy: dict[str, float]
) -> list[str]:
    """What reading other people's handwriting (``digits``, a drawings set) says of each
    model, in sentences with their numbers, whichever way they go: each model's accuracy
    beside its accuracy on MNIST's test set, the gap between two models, each one's hardest
    digits and the hardest source of handwriting (``mnist_accuracy``: kind -> MNIST test)."""
    writers = len(set(digits.writers or ()))
    accuracy = {kind: result.accuracy for kind, result in by_kind.items()}
    sentences = [
        _scores(
            f"{len(digits.labels):,} digits by {writers:,} writer{'s' * (writers != 1)}",
            accuracy,
            decimals=1,
        )
    ]
    for kind, result in by_kind.items():
        if kind in mnist_accuracy:
            cost = (mnist_accuracy[kind] - result.accuracy) * 100
            change = f"costs it **{cost:.1f} points**" if cost > 0 else "costs it nothing"
            sentences.append(
                f"The {kind.upper()} reads {mnist_accuracy[kind]:.1%} of MNIST's test set: "
                f"other people's handwriting {change}."
            )
    if len(by_kind) == 2:
        (first, a), (second, b) = sorted(accuracy.items(), key=lambda item: -item[1])
        if a - b < EVEN / 4:
            sentences.append("The two read it **about as well**.")
        else:
            misread = {kind: round((1 - value) * 100, 1) for kind, value in accuracy.items()}
            sentences.append(
                f"**The {first.upper()} reads it better**: it misreads {misread[first]:g} digits "
                f"in 100, the {second.upper()} {misread[second]:g}."
            )
    for kind, result in by_kind.items():
        per_digit = result.per_class_accuracy
        hardest = [d for d in np.argsort(per_digit, kind="stable") if not np.isnan(per_digit[d])]
        shown = ", ".join(f"**{d}** ({per_digit[d]:.0%})" for d in hardest[:3])
        sentences.append(f"The {kind.upper()}'s hardest digits: {shown}.")
    sources = [s for s, n in Counter(digits.sources or ()).items() if n >= MIN_PER_SOURCE]
    if len(sources) > 1:
        per_source = {kind: r.accuracy_by(digits.sources) for kind, r in by_kind.items()}
        mean = {s: np.mean([shares[s] for shares in per_source.values()]) for s in sources}
        hardest_source = min(mean, key=mean.get)
        scores = {kind: shares[hardest_source] for kind, shares in per_source.items()}
        sentences.append(_scores(f"Hardest to read: the writers of {hardest_source}", scores))
    return sentences
