"""Shared fixtures: where the real reference data lives, and small real data sets."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XANE3_SHARED", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session", autouse=True)
def ray_temp_dir() -> Iterator[Path]:
    """Ray's session files (logs, sockets, spilled objects) in the suite's own folder, removed at
    the end, instead of the system temp's ``ray/`` shared with every other run on the machine.
    Made directly under /tmp with a short name: Ray's Unix sockets end in
    ``ray/session_<date>_<pid>/sockets/plasma_store``, and a socket path must stay under 108 bytes
    (a pytest ``tmp_path`` or a macOS ``$TMPDIR`` can leave too little room)."""
    path = Path(tempfile.mkdtemp(prefix="x3ray-", dir="/tmp" if os.path.isdir("/tmp") else None))
    before = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = str(path)  # read by ray.init and by `ray start` subprocesses
    yield path
    if before is None:
        os.environ.pop("RAY_TMPDIR", None)
    else:
        os.environ["RAY_TMPDIR"] = before
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"reference data not found at {SHARED_DATA} (set XANE3_SHARED)")
    return SHARED_DATA


# --- small real data sets (lead) ---------------------------------------------------


@pytest.fixture(scope="session")
def xanesnet_records(shared_data):
    """40 real Fe complexes with FDMNES spectra from the XANESNET set."""
    from xane3.data.readers.xanesnet import read_xanesnet_dir

    return read_xanesnet_dir(shared_data / "xanesnet-fe-train", limit=40)


@pytest.fixture(scope="session")
def small_real_db(tmp_path_factory, xanesnet_records) -> Path:
    """An ASE DB of those 40 real spectra, made by the same ingest the CLI uses."""
    from xane3.data.database import ingest
    from xane3.data.normalize import default_grid

    path = tmp_path_factory.mktemp("db") / "xanesnet40.db"
    ingest(xanesnet_records, path, default_grid(), progress=False)
    return path
