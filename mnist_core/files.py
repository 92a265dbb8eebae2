"""Files written whole: a reader sees the old content or the new, never part of either."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_whole(path: Path, text: str, sync: bool = True) -> None:
    """``text`` in ``path``, all of it or nothing: a temporary file beside it (hidden, so no
    listing takes it for an entry), synced to disk when ``sync`` (a power cut keeps it too),
    then renamed over ``path``. A failure leaves no temporary file behind."""
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=".", suffix=".tmp", delete=False, encoding="utf-8"
    ) as out:
        try:
            out.write(text)
            if sync:
                out.flush()
                os.fsync(out.fileno())
            out.close()
            os.replace(out.name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(out.name)
            raise
