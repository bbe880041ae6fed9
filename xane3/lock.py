"""One process at a time: a lock file held with ``flock`` and naming its holder's PID.

Used where two runs would silently double or corrupt their output: a search or ablation
experiment (``search.claim``), the FEFF data-set generation (``xane3.datagen spectra``,
whose shards would hold every spectrum twice) and an ingest into a spectra database.
The kernel's ``flock`` is the lock: it is held while the holder lives and dropped when
it dies however it dies (kill -9), so a lock left behind is taken over, with a message,
by exactly one process; the PID in the file is only for messages (and a live PID written
by a holder that did not flock, an older xane3, still refuses). Released at exit.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_held: dict[str, tuple[int, int]] = {}  # lock path -> (owning pid, fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid(fd: int) -> int:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0)
    except (OSError, ValueError, UnicodeDecodeError):
        return 0


def _open(lock: Path) -> tuple[int, bool] | None:
    """(fd, whether the file was there before), or None if it vanished meanwhile."""
    try:
        return os.open(lock, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644), False
    except FileExistsError:
        try:
            return os.open(lock, os.O_RDWR), True
        except FileNotFoundError:
            return None


def acquire(lock: Path, holder: str, name: str | Path | None = None, quiet: bool = False) -> Path:
    """Take the lock file ``lock`` for this process; FileExistsError naming the holding process
    (what ``holder`` describes) if another live one has it. ``name``: what messages call the
    locked thing (default: the lock's folder); ``quiet``: a takeover is the caller's to say.
    Taking it again in the holding process is a no-op."""
    lock = Path(lock).absolute()
    name = lock.parent if name is None else name
    if str(lock) in _held and _held[str(lock)][0] == os.getpid():
        return lock
    while True:
        opened = _open(lock)
        if opened is None:
            continue
        fd, existed = opened
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _pid(fd)
            os.close(fd)
            raise FileExistsError(f"{name} is in use by process {pid or '?'} ({holder})") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if not same:  # its holder released (unlinked) it between our open and flock: a new file
            os.close(fd)
            continue
        pid = _pid(fd)
        if pid and pid != os.getpid() and _alive(pid):
            os.close(fd)
            raise FileExistsError(f"{name} is in use by process {pid} ({holder})")
        if existed and not quiet:
            print(f"{name}: taking over the lock of process {pid or '?'}, which is gone", file=sys.stderr)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _held[str(lock)] = (os.getpid(), fd)
        return lock


def claim(folder: Path, holder: str) -> Path:
    """Take ``folder/.lock`` for the rest of this process's life (released at exit)."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = acquire(folder / ".lock", holder, folder)
    atexit.register(release, lock)
    return lock


@contextmanager
def held(lock: Path, holder: str, name: str | Path | None = None, quiet: bool = False) -> Iterator[Path]:
    """``acquire`` for the ``with`` block; a lock this process already holds stays held after."""
    mine = str(Path(lock).absolute()) in _held
    path = acquire(lock, holder, name, quiet)
    try:
        yield path
    finally:
        if not mine:
            release(path)


def release(lock: Path) -> None:
    """Remove and unlock ``lock`` if this process holds it (unlinked first, so a process that
    opened it meanwhile sees a stale file and retries on a new one)."""
    key = str(Path(lock).absolute())
    owner, fd = _held.get(key, (0, -1))
    if owner != os.getpid():
        return
    del _held[key]
    try:
        if os.path.samestat(os.fstat(fd), os.stat(key)):
            os.unlink(key)
    except OSError:
        pass
    finally:
        os.close(fd)
