"""A class challenge: the teacher holds back some writers' drawings as its test and sets
caps; every model trained while it is open is scored on those drawings, on a leaderboard.

One challenge at a time, in ``.challenge.json`` of the drawings folder (written whole).
While it is open, the held-back writers' drawings are its test alone: training on the set
leaves them out (``training.class_digits``) and students see none of them (the pages
filter them with ``hidden_writers``). Closing it keeps the final board in the file.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .class_drawings import KeepRefused, check_set_name
from .drawings import DrawingSet, DrawingsFolder
from .files import write_whole
from .registry import ModelEntry
from .training_queue import Requester

CHALLENGE_FILE = ".challenge.json"
MAX_TITLE = 60


@dataclass(frozen=True)
class Caps:
    """What a model may use to be ranked (``None``: no cap)."""

    max_params: int | None = None
    max_seconds: float | None = None
    max_train_images: int | None = None

    def broken_by(self, entry: ModelEntry) -> str | None:
        """Why ``entry`` is outside the caps, in words, or ``None``."""
        meta = entry.meta
        params = meta.get("params") or 0
        seconds = meta.get("train_seconds") or 0
        images = (meta.get("data") or {}).get("train_images") or 0
        if self.max_params and params > self.max_params:
            return f"{params:,} parameters, over the cap of {self.max_params:,}"
        if self.max_seconds and seconds > self.max_seconds + 1:  # a batch's overrun
            return f"{seconds:.0f} s of training, over the cap of {self.max_seconds:g} s"
        if self.max_train_images and images > self.max_train_images:
            return f"{images:,} training images, over the cap of {self.max_train_images:,}"
        return None


@dataclass(frozen=True)
class Score:
    """One model's line on the leaderboard."""

    name: str
    owner_name: str
    kind: str
    accuracy: float  # on the held-back drawings
    mnist_accuracy: float
    params: int
    seconds: float
    rank: int = 0


@dataclass(frozen=True)
class Challenge:
    """The challenge: its set, the writers held back as its test, its caps, when it opened
    and closed, and (once closed) its final board."""

    title: str
    set_name: str
    held_back: tuple[str, ...]
    caps: Caps = field(default_factory=Caps)
    opened_at: float = 0.0
    closed_at: float | None = None
    final: tuple[Score, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def counts(self, entry: ModelEntry) -> bool:
        """Whether ``entry`` competes: trained here (not uploaded) while the challenge was
        open, by a student's browser or the teacher's."""
        created = entry.saved_at.timestamp()
        return "config" in entry.meta and self.opened_at <= created < (self.closed_at or math.inf)


def challenge_path(folder: DrawingsFolder) -> Path:
    return folder.root / CHALLENGE_FILE


def current(folder: DrawingsFolder) -> Challenge | None:
    """The challenge open now or closed last, or ``None``."""
    try:
        record = json.loads(challenge_path(folder).read_text(encoding="utf-8"))
        return Challenge(
            **{
                **record,
                "held_back": tuple(record["held_back"]),
                "caps": Caps(**record["caps"]),
                "final": tuple(Score(**score) for score in record.get("final", [])),
            }
        )
    except (OSError, ValueError, TypeError, KeyError):
        return None


def hidden_writers(folder: DrawingsFolder, set_name: str, requester: Requester | None) -> set[str]:
    """The writers of ``set_name`` a student may not see or train on now: the open
    challenge's held-back ones (the teacher sees them; ``None`` stands for training)."""
    challenge = current(folder)
    if challenge is None or not challenge.is_open or challenge.set_name != set_name:
        return set()
    if requester is not None and requester.teacher:
        return set()
    return set(challenge.held_back)


def without_writers(drawings: DrawingSet, writers: set[str]) -> DrawingSet:
    """``drawings`` less those of ``writers`` (an open challenge's held-back ones)."""
    if not writers:
        return drawings
    kept = tuple(d for d in drawings.drawings if d.writer not in writers)
    return replace(drawings, drawings=kept)


def open_challenge(
    folder: DrawingsFolder,
    set_name: str,
    held_back: list[str],
    caps: Caps,
    requester: Requester,
    title: str = "Class challenge",
    now: float | None = None,
) -> Challenge:
    """Open a challenge (the teacher's alone; one at a time) on ``set_name``, its test the
    drawings of the ``held_back`` writers."""
    if not requester.teacher:
        raise KeepRefused("Only the teacher may open a challenge.")
    previous = current(folder)
    if previous is not None and previous.is_open:
        raise KeepRefused(f"The challenge {previous.title!r} is open: close it first.")
    check_set_name(set_name)
    writers = set(folder.load(set_name, allow_empty=True).writers)
    if not held_back:
        raise KeepRefused("Hold back at least one writer's drawings as the challenge's test.")
    if unknown := sorted(set(held_back) - writers):
        raise KeepRefused(f"No drawings by {', '.join(unknown)} in {set_name!r}.")
    if set(held_back) == writers:
        raise KeepRefused("Leave some writers to learn from: every writer is held back.")
    title = " ".join(title.split())[:MAX_TITLE] or "Class challenge"
    challenge = Challenge(
        title, set_name, tuple(sorted(held_back)), caps, time.time() if now is None else now
    )
    _save(folder, challenge)
    return challenge


def close_challenge(
    folder: DrawingsFolder, board: list[Score], requester: Requester, now: float | None = None
) -> Challenge:
    """Close the open challenge, keeping ``board`` as its result."""
    if not requester.teacher:
        raise KeepRefused("Only the teacher may close the challenge.")
    challenge = current(folder)
    if challenge is None or not challenge.is_open:
        raise KeepRefused("No challenge is open.")
    closed = replace(challenge, closed_at=time.time() if now is None else now, final=tuple(board))
    _save(folder, closed)
    return closed


def ranked(scores: list[Score]) -> list[Score]:
    """Best accuracy on the held-back drawings first; ties to the smaller, then faster."""
    ordered = sorted(scores, key=lambda s: (-s.accuracy, s.params, s.seconds, s.name))
    return [replace(score, rank=place) for place, score in enumerate(ordered, start=1)]


def _save(folder: DrawingsFolder, challenge: Challenge) -> None:
    folder.root.mkdir(parents=True, exist_ok=True)
    write_whole(challenge_path(folder), json.dumps(asdict(challenge)))
