"""Readers of FDMNES, FEFF and XANESNET files and of structures: each error names its file."""

from __future__ import annotations

from pathlib import Path


def read_text(path: Path, error: type[Exception]) -> str:
    """``path``'s text; an unreadable or non-text (binary, non-UTF-8) file is ``error``
    naming the file, not a bare OSError/UnicodeDecodeError naming none."""
    try:
        return path.read_text()
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not a text file (byte {exc.start} is not UTF-8)") from exc
