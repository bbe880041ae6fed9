"""A database outlives a killed ingest, and the same spectra are never stored twice (issue 31)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ase.db import connect
from data_fixtures import XANESNET

from xane3.data.cli import main
from xane3.data.database import iter_rows, summarize


def _head(path: Path) -> bytes:
    try:
        return path.read_bytes()[:8]
    except OSError:
        return b""


@pytest.mark.parametrize("first", ["info", "ingest"])
def test_an_ingest_killed_mid_write_is_recovered_and_its_lock_taken_over(first, tmp_path, capsys) -> None:
    """Issue 31: kill -9 during ingest left SQLite's rollback journal, which a read-only open
    cannot roll back ("not a readable SQLite database"), and a DB.lock to delete by hand."""
    import os
    import signal
    import subprocess
    import sys
    import time

    db = tmp_path / "x.db"
    args = ["ingest", "--xanesnet", str(XANESNET), "--db", str(db), "--no-progress"]
    assert main([*args, "--limit", "3"]) == 0
    capsys.readouterr()
    journal = Path(f"{db}-journal")
    writer = subprocess.Popen([sys.executable, "-m", "xane3.data", *args, "--limit", "500"],
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    deadline = time.monotonic() + 60
    hot = bytes.fromhex("d9d505f920a163d7")  # a journal's magic, once SQLite spilled rows to the DB
    while not _head(journal) == hot and writer.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    lock_left = Path(f"{db}.lock").exists()
    assert journal.exists()  # what the killed writer left, with its lock
    if first == "ingest":
        assert main([*args, "--limit", "4"]) == 0
        out = capsys.readouterr()
        assert "1 added, 3 replaced" in out.out and out.err.splitlines() == [
            f"{db}: taking over the lock of process {writer.pid}, which is gone",
            f"{db}: rolled back the unfinished transaction of an interrupted ingest (rows it had "
            "committed are kept)"]
    assert main(["info", "--db", str(db), "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["rows"] == 3 + (first == "ingest")  # none of the killed run's rows
    assert ("rolled back" in out.err and len(out.err.splitlines()) == 1) == (first == "info")
    assert not journal.exists() and lock_left and not Path(f"{db}.lock").exists()


def test_a_copied_folder_is_not_stored_twice(tmp_path, capsys) -> None:
    """Issue 31: rows were keyed on the path, so the same spectra ingested from a copied folder
    were stored twice (400 rows for 200 structures) and a random split put copies on both sides."""
    import shutil

    from xane3.data.readers.xanesnet import xanesnet_pairs

    first = tmp_path / "first"
    for sub in ("xyz", "xanes"):
        (first / sub).mkdir(parents=True)
    for x, s in xanesnet_pairs(XANESNET, 5):
        shutil.copy(x, first / "xyz")
        shutil.copy(s, first / "xanes")
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    db = tmp_path / "x.db"
    assert main(["ingest", "--xanesnet", str(first), "--db", str(db), "--no-progress"]) == 0
    with connect(str(db)) as con:  # a DB written before rows carried their spectrum_id
        for row in con.select():
            con.update(row.id, delete_keys=["spectrum_id"])
    capsys.readouterr()
    assert main(["ingest", "--xanesnet", str(copy), "--db", str(db), "--no-progress"]) == 0
    out = capsys.readouterr().out
    name = sorted((first / "xanes").iterdir())[0].name
    assert "0 added, 0 replaced, 0 skipped, 5 duplicates skipped" in out
    assert f"{copy / 'xanes' / name} = {first / 'xanes' / name}" in out
    assert len(list(iter_rows(db))) == 5 and summarize(db)["structures"] == 5
    assert main(["ingest", "--xanesnet", str(first), "--db", str(db), "--no-progress", "--strict"]) == 0
    assert "0 added, 5 replaced, 0 skipped" in capsys.readouterr().out  # its own files: replaced
    changed = first / "xanes" / name  # edited: the copy's file of that name is no longer the stored one
    head, last = changed.read_text().rstrip("\n").rsplit("\n", 1)
    changed.write_text(f"{head}\n{last.split()[0]} {1.001 * float(last.split()[1]):.7E}\n")
    assert main(["ingest", "--xanesnet", str(first), str(copy), "--db", str(db), "--no-progress"]) == 0
    assert "1 added, 5 replaced, 0 skipped, 4 duplicates skipped" in capsys.readouterr().out
