"""One process at a time in a folder: ``<folder>/.lock`` taken by exclusive create.

Used where two runs on one folder would silently double its contents: a search or ablation
experiment (``search.claim``) and the FEFF data-set generation (``xane3.datagen spectra``,
whose shards would hold every spectrum twice). A lock whose process is gone (a crash,
kill -9) is taken over, with a message; the lock is released when the process exits.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(folder: Path, holder: str) -> Path:
    """Take ``folder/.lock`` for this process; FileExistsError naming the holding process (what
    ``holder`` describes) if another live one has it."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / ".lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid == os.getpid():
                return lock
            if pid and _alive(pid):
                raise FileExistsError(f"{folder} is in use by process {pid} ({holder})") from None
            print(f"{folder}: taking over the lock of process {pid or '?'}, which is gone")
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        atexit.register(release, lock)
        return lock
    raise FileExistsError(f"{lock}: could not take the lock")


def release(lock: Path) -> None:
    try:
        if lock.read_text().strip() == str(os.getpid()):
            lock.unlink()
    except OSError:
        pass
