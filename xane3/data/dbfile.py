"""Opening a spectra database file safely: refuse foreign files, recover a killed writer's.

ASE's connect() creates its tables in any SQLite file it opens, so a file is looked at
through a read-only SQLite connection first. A writer killed mid-transaction (kill -9,
a power cut) leaves SQLite's rollback journal beside the file; only a read-write open
rolls it back, so every read-only open failed until the user deleted the database. It is
rolled back once here, under the database's lock (``DB.lock``, held by ingest), and said.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

from xane3 import lock

SCHEMA = "xane3-spectra/1"
WRITER = "another `python -m xane3.data ingest` writing it; wait for it"


def lock_path(db_path: str | Path) -> Path:
    """The writers' lock beside the database (the name ASE's own lock file had)."""
    return Path(f"{db_path}.lock")


def recover(path: Path) -> None:
    """Roll back what a killed writer left in ``path``-journal; a live writer's is left alone."""
    journal = Path(f"{path}-journal")
    if not journal.exists():
        return
    try:
        with lock.held(lock_path(path), WRITER, path, quiet=True):
            with closing(sqlite3.connect(path)) as con:  # the first read rolls a hot journal back
                con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except FileExistsError:
        return  # a live ingest holds it: its journal is its transaction's, not a leftover
    except (OSError, sqlite3.Error) as exc:
        raise ValueError(f"{path}: an interrupted write left {journal.name}, which only a read-write "
                         f"open can roll back ({exc})") from None
    if not journal.exists():
        print(f"{path}: rolled back the unfinished transaction of an interrupted ingest "
              "(rows it had committed are kept)", file=sys.stderr)


def check_db(db_path: str | Path, writing: bool = False) -> Path:
    """The path of an existing xane3 DB, checked read-only; a new file only when ``writing``.

    A foreign or corrupt file must carry this project's schema marker, or it is refused with
    a one-line reason and left untouched.
    """
    path = Path(db_path)
    if not path.exists():
        if writing:
            return path
        raise FileNotFoundError(f"{path}: no such database")
    if not path.is_file():
        raise ValueError(f"{path}: not a file")
    recover(path)
    try:
        with closing(sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)) as con:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            meta = {}
            if "information" in tables:
                row = con.execute("SELECT value FROM information WHERE name='metadata'").fetchone()
                meta = json.loads(row[0]) if row else {}
    except (sqlite3.DatabaseError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable SQLite database ({exc})") from None
    if "systems" not in tables:
        raise ValueError(f"{path}: an SQLite file but not an ASE database (no 'systems' table); "
                         "left untouched")
    if meta.get("schema") != SCHEMA:
        raise ValueError(f"{path}: an ASE database not written by `python -m xane3.data ingest` "
                         f"(schema {meta.get('schema')!r}, expected {SCHEMA!r}); left untouched")
    return path
