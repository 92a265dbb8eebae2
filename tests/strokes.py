"""The digits the browser tests draw, kept where they import them from."""

from mnist_core.pen_strokes import DIGITS  # noqa: F401
