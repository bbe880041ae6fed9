"""Atomic file writes: one mechanism for every file the project writes.

Write to a temp file beside the target, then rename over it; on any error the temp
file goes and the target is untouched, so a reader (or a resumed run) never sees
half a file. Temp names are hidden (``.NAME.XXXX.tmp``), so globs such as
``*.npz`` or ``*.parquet`` never pick one up. A write that fails (disk full, folder not
writable) raises :class:`WriteError`, so a command tells a job that ran and could not keep
its results (exit 1) from an input it refused (exit 2).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported by the caller that passes a frame
    import pandas as pd


def _new_file_mode(path: Path) -> int:
    """The mode a plain ``open(path, "w")`` would give: the existing file's, else 0666 & ~umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mask = os.umask(0o022)
        os.umask(mask)
        return 0o666 & ~mask


class WriteError(OSError):
    """A result file could not be written: the job ran and failed (an OSError still, for callers
    that catch those)."""


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; renamed over ``path`` when the block succeeds."""
    path = Path(path)
    try:
        with _atomic_path(path) as tmp:
            yield tmp
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(f"{path}: could not write it ({exc.strerror or exc})") from exc


@contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, _new_file_mode(path))  # mkstemp makes 0600; results must stay readable by others
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)  # on disk before the rename: a power cut leaves the old file,
        try:                            # not an empty new one
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_csv_atomic(df: pd.DataFrame, path: str | Path) -> Path:
    """``df.to_csv(path, index=False)``, atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return Path(path)


def write_parquet_atomic(df: pd.DataFrame, path: str | Path) -> Path:
    """``df.to_parquet(path, index=False)``, atomically."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)
