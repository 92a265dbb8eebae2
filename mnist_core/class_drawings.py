"""The class's own handwriting: digits kept from the Draw page into a set of the drawings
folder, deleted by their owner or the teacher, locked, imported and exported.

A class's set is a folder (``drawings/NAME/``): each kept digit is one small JSON file
written whole (to a temporary name, synced, then renamed), so thirty students keeping at
once never write the same file, and a server killed mid-write leaves the set as it was.
The file's name starts with the time and the owner (``MS-OWNER-RANDOM.json``), so the
limits below are counted from the folder's listing, not by reading every drawing. An import
is one ``.jsonl`` file in the folder, written the same way: all of it or none.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .data import IMAGE_SIZE, NUM_CLASSES
from .drawings import (
    Drawing,
    DrawingsError,
    DrawingSet,
    DrawingsFolder,
    checked_strokes,
    read_drawings,
    seen_by_networks,
    to_record,
    writer_split,
)
from .files import write_whole
from .training_queue import Requester

CLASS_SET = "class"  # the set the Draw page keeps into
SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
MAX_WRITER_NAME = 40
KEPT_PER_MINUTE = 20  # per browser: a student draws one every few seconds at most
KEPT_PER_BROWSER = 300  # per browser, per set
MAX_SET_SIZE = 5_000
MAX_IMPORT = 20_000  # drawings in one imported file
MAX_IMPORT_MB = 20  # the file's size, uploaded on the class's drawings page
LOCK_FILE = ".locked"
EXPORT_TEST_SHARE = 0.2  # of the writers, in the exported .npz's test half


class KeepRefused(ValueError):
    """A drawing that is not kept, or a change refused: the message says why, for the user."""


@dataclass(frozen=True)
class Counts:
    """How many drawings a set holds, per digit and per writer."""

    total: int
    per_digit: tuple[int, ...]
    per_writer: dict[str, int]


def check_set_name(name: str) -> str:
    """``name`` if it can name a set (a file name: letters, digits, ``-`` and ``_``, no
    path separators), else ``KeepRefused`` saying so."""
    if not isinstance(name, str) or not SET_NAME.fullmatch(name):
        raise KeepRefused(
            f"A set's name is 1-40 letters, digits, '-' or '_', starting with a letter or a "
            f"digit (no '/', '\\' or '.'): {name!r} is not one."
        )
    return name


def writer_name(name: str | None, owner: str) -> str:
    """The writer a kept drawing is filed under: the name the student gave, checked, or
    one made from the browser (``student-1a2b3c``), so a split by writer still holds."""
    name = unicodedata.normalize("NFC", name or "").strip()
    if not name:
        return f"student-{owner[:6]}"
    if len(name) > MAX_WRITER_NAME:
        raise KeepRefused(
            f"A writer's name has at most {MAX_WRITER_NAME} characters; this one has "
            f"{len(name):,}. A first name or initials will do."
        )
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise KeepRefused("A writer's name cannot hold line breaks or control characters.")
    return name


class ClassSet:
    """One of the class's sets in the drawings folder, kept into from the Draw page."""

    def __init__(self, folder: DrawingsFolder, name: str = CLASS_SET):
        self.name = check_set_name(name)
        self.path = folder.root / name
        clash = folder.paths().get(name)
        if clash is not None and clash != self.path:
            raise KeepRefused(
                f"{clash.name} in {folder.root} is a drawings file, not a class's set: "
                "choose another name."
            )

    # --- reading ---------------------------------------------------------------------

    def read(self) -> DrawingSet:
        """Every drawing in the set (none yet: an empty set)."""
        if not self.path.is_dir():
            return DrawingSet(self.name, self.path, ())
        return read_drawings(self.path, self.name, allow_empty=True)

    def version(self) -> int:
        """Changes whenever a drawing is kept, deleted or imported: for caches."""
        try:
            return self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    @property
    def locked(self) -> bool:
        return (self.path / LOCK_FILE).exists()

    def counts(self) -> Counts:
        drawings = self.read().drawings
        per_digit = np.bincount([d.digit for d in drawings], minlength=NUM_CLASSES)
        per_writer: dict[str, int] = {}
        for drawing in drawings:
            per_writer[drawing.writer] = per_writer.get(drawing.writer, 0) + 1
        return Counts(len(drawings), tuple(int(n) for n in per_digit), per_writer)

    # --- keeping, deleting, locking ------------------------------------------------------

    def keep(
        self,
        digit: int | None,
        strokes: list,
        image: np.ndarray | None,
        requester: Requester,
        writer: str | None = None,
        now: float | None = None,
    ) -> Drawing:
        """Keep one drawing: ``digit`` is the student's word for it (never the network's
        guess), ``strokes`` the canvas's points, ``image`` its 28x28 as the networks saw it.

        Refused (``KeepRefused``, saying why) for a missing label, a blank or a dot, a
        locked set, or a browser past its limits; nothing is written then.
        """
        if digit is None or isinstance(digit, bool) or digit not in range(NUM_CLASSES):
            raise KeepRefused("Say which digit you meant (0-9) before keeping the drawing.")
        if image is None or not np.asarray(image).any():
            raise KeepRefused("There is no digit to keep: the canvas is blank.")
        try:
            checked = checked_strokes([np.asarray(s, float).tolist() for s in strokes])
        except ValueError as error:
            raise KeepRefused(f"This drawing cannot be kept: {error}.") from None
        name = writer_name(writer, requester.owner)
        if self.locked and not requester.teacher:
            raise KeepRefused("The teacher has locked this set: nothing more is kept in it.")
        now = time.time() if now is None else now
        self._check_limits(requester, now)
        image = np.asarray(image, dtype=np.float32).reshape(IMAGE_SIZE, IMAGE_SIZE)
        drawing = Drawing(
            int(digit),
            name,
            checked,
            source=self.name,
            owner=requester.owner,
            kept_at=round(now, 3),
            image=np.round(np.clip(image, 0, 1) * 255).astype(np.uint8),
        )
        key = f"{int(now * 1000):013d}-{requester.owner}-{secrets.token_hex(4)}.json"
        self.path.mkdir(parents=True, exist_ok=True)
        write_whole(self.path / key, json.dumps(to_record(drawing)) + "\n")
        return replace(drawing, key=key)

    def _check_limits(self, requester: Requester, now: float) -> None:
        names = [p for p in _listing(self.path) if p.endswith(".json")]
        kept = sum(_count_lines(self.path / p) for p in _listing(self.path) if p.endswith(".jsonl"))
        if len(names) + kept >= MAX_SET_SIZE:
            raise KeepRefused(
                f"The set {self.name!r} is full ({MAX_SET_SIZE:,} drawings): the teacher can "
                "export it and start another."
            )
        if requester.teacher:
            return
        mine = [n for n in names if n.split("-")[1:2] == [requester.owner]]
        if len(mine) >= KEPT_PER_BROWSER:
            raise KeepRefused(
                f"This browser has kept {len(mine):,} drawings in {self.name!r}, the most one "
                "browser may: delete some first."
            )
        recent = [n for n in mine if now * 1000 - int(n.split("-")[0]) < 60_000]
        if len(recent) >= KEPT_PER_MINUTE:
            raise KeepRefused(
                f"{KEPT_PER_MINUTE} drawings kept in the last minute: wait a moment before "
                "keeping more (so every drawing is a real one)."
            )

    def delete(self, key: str, requester: Requester) -> None:
        """Delete the drawing at ``key``: the browser that kept it, or the teacher, may."""
        drawing = next((d for d in self.read().drawings if d.key == key), None)
        if drawing is None:
            raise KeepRefused("That drawing is no longer in the set (deleted already?).")
        if not requester.may_act_on(drawing.owner):
            raise KeepRefused("Only the student who kept a drawing, or the teacher, may delete it.")
        if self.locked and not requester.teacher:
            raise KeepRefused("The teacher has locked this set: nothing in it changes now.")
        file, _, line = key.partition(":")
        if not line:
            (self.path / file).unlink(missing_ok=True)
            return
        lines = (self.path / file).read_text(encoding="utf-8").splitlines(keepends=True)
        del lines[int(line) - 1]
        if any(text.strip() for text in lines):
            write_whole(self.path / file, "".join(lines))
        else:
            (self.path / file).unlink()

    def set_locked(self, locked: bool, requester: Requester) -> None:
        """Lock the set (nothing more kept, nothing deleted by students) or unlock it:
        the teacher's alone."""
        if not requester.teacher:
            raise KeepRefused("Only the teacher may lock or unlock a set.")
        self.path.mkdir(parents=True, exist_ok=True)
        if locked:
            (self.path / LOCK_FILE).touch()
        else:
            (self.path / LOCK_FILE).unlink(missing_ok=True)

    # --- import and export -------------------------------------------------------------

    def import_file(self, path: str | os.PathLike, owner: str | None = None) -> int:
        """Add every digit of a drawings file (checked line by line; a file with a bad line
        adds nothing) as one file of the set, owned by ``owner`` (who may delete them).
        Returns how many were added."""
        incoming = read_drawings(path)
        total = len(incoming.drawings)
        if total > MAX_IMPORT:
            raise DrawingsError(
                f"{Path(path).name} holds {total:,} drawings; one import takes at most "
                f"{MAX_IMPORT:,}."
            )
        held = len(self.read().drawings)
        if held + total > MAX_SET_SIZE * 4:
            raise DrawingsError(
                f"{Path(path).name}'s {total:,} drawings would make {self.name!r} hold more "
                f"than {MAX_SET_SIZE * 4:,}: import them into a new set."
            )
        lines = "".join(
            json.dumps(to_record(replace(d, owner=d.owner or owner))) + "\n"
            for d in incoming.drawings
        )
        self.path.mkdir(parents=True, exist_ok=True)
        write_whole(self.path / f"{int(time.time() * 1000):013d}-import.jsonl", lines)
        return total


def export_jsonl(drawings: DrawingSet) -> bytes:
    """The set in the shared strokes format (digit, writer, source, strokes), one JSON
    object a line: who kept each and when stay here."""
    return "".join(json.dumps(to_record(d, kept=False)) + "\n" for d in drawings.drawings).encode()


def export_npz(drawings: DrawingSet, images: np.ndarray) -> bytes:
    """The set in the Keras MNIST layout (``x_train``, ``y_train``, ``x_test``, ``y_test``;
    uint8 28x28, white on black), a fifth of the writers in the test half, never a writer in
    both; ``images`` are the drawings as the networks see them (0-1)."""
    pixels = np.round(np.clip(images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE), 0, 1) * 255)
    pixels = pixels.astype(np.uint8)
    labels = drawings.labels.astype(np.uint8)
    if len({d.writer for d in drawings.drawings}) > 1:
        test, train = writer_split(drawings.drawings, EXPORT_TEST_SHARE)
    else:
        train, test = np.arange(len(labels)), np.array([], dtype=int)
    out = io.BytesIO()
    np.savez_compressed(
        out,
        x_train=pixels[train],
        y_train=labels[train],
        x_test=pixels[test],
        y_test=labels[test],
    )
    return out.getvalue()


def _listing(folder: Path) -> list[str]:
    try:
        return [name for name in os.listdir(folder) if not name.startswith(".")]
    except FileNotFoundError:
        return []


def _count_lines(path: Path) -> int:
    with contextlib.suppress(OSError), path.open("rb") as lines:
        return sum(1 for line in lines if line.strip())
    return 0


def as_seen(
    drawings: DrawingSet, on_progress: Callable[[float], None] = lambda done: None
) -> np.ndarray:
    """Each drawing's 28x28 (float, 0-1) as the networks saw it: a kept one as it was kept,
    an imported one drawn on the canvas as ``drawings.seen_by_networks`` draws it (telling
    ``on_progress`` how far it is)."""
    images = np.zeros((len(drawings.drawings), IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    missing = [i for i, d in enumerate(drawings.drawings) if d.image is None]
    for index, drawing in enumerate(drawings.drawings):
        if drawing.image is not None:
            images[index] = drawing.image / 255.0
    if missing:
        unkept = [drawings.drawings[i] for i in missing]
        images[missing] = seen_by_networks(unkept, on_progress=on_progress).images
    return images


@dataclass(frozen=True)
class Fooled:
    """A drawing at least one network misread: its place in the set and what each read."""

    index: int
    digit: int
    writer: str
    read: dict[str, int]  # by network kind, only those that misread it
    kept_at: float | None


def fooled(drawings: DrawingSet, predicted: dict[str, np.ndarray]) -> list[Fooled]:
    """The drawings that ``predicted`` (each network's reading, by kind) got wrong, newest
    first (imported ones, which have no time, last)."""
    labels = drawings.labels
    wrong = {kind: reading != labels for kind, reading in predicted.items()}
    found = [
        Fooled(
            index,
            drawing.digit,
            drawing.writer,
            {kind: int(predicted[kind][index]) for kind in predicted if wrong[kind][index]},
            drawing.kept_at,
        )
        for index, drawing in enumerate(drawings.drawings)
        if any(wrong[kind][index] for kind in wrong)
    ]
    return sorted(found, key=lambda f: -(f.kept_at or 0))
