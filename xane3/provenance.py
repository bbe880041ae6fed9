"""Where a result's inputs came from, recorded so the record still means something elsewhere.

Absolute paths (``/home/alice/...``) say nothing on another machine or clone; a path
relative to the directory the command ran in (``../shared/data/...``) does, and a
file's SHA-256 names the exact checkpoint whatever it is called.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def portable_path(path: str | Path, start: str | Path | None = None) -> str:
    """``path`` relative to ``start`` (default: the working directory), POSIX-style.

    Falls back to the absolute path only where no relative one exists (another drive).
    """
    try:
        return Path(os.path.relpath(Path(path).resolve(), Path(start or Path.cwd()).resolve())).as_posix()
    except ValueError:
        return Path(path).resolve().as_posix()


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (checkpoints can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
