"""Fixtures for the reader/normalisation/database tests (imported by those modules).

``feff_small`` is a real FEFF10 output committed under tests/data (generated once by
the same input as ``feff_run``); ``feff_run`` reruns FEFF10 on it (a few seconds).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SHARED_DATA = Path(os.environ.get("XANE3_SHARED", TESTS.parents[1] / "shared")) / "data"
FDMNES_OUTPUTS = SHARED_DATA / "fdmnes-outputs"
TIO2 = FDMNES_OUTPUTS / "tio2-2025"
XANESNET = SHARED_DATA / "xanesnet-fe-train"
FEFF_SMALL = TESTS / "data" / "feff_small"


def require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"reference data not found at {path} (set XANE3_SHARED)")
    return path


def fdmnes_spectrum_files() -> list[Path]:
    """Every FDMNES spectrum file (per-site and convolved) under fdmnes-outputs/."""
    skip = {"fdmfile.txt", "fdmnes_in.txt", "fdmnes_stdout.txt", "README.txt"}
    return sorted(p for p in FDMNES_OUTPUTS.rglob("*")
                  if p.suffix in {".txt", ".dat"} and p.name not in skip and "structures" not in p.parts)


@pytest.fixture(scope="session")
def feff_small() -> Path:
    """Committed real FEFF10 run: feff.inp + xmu.dat (FeO rocksalt, 19-atom cluster)."""
    return require(FEFF_SMALL)


@pytest.fixture(scope="session")
def feff_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """One cheap real FEFF10 calculation (no SCF, FMS 3.2 Å) -> (run dir, seconds)."""
    feff10 = pytest.importorskip("feff10")
    work = tmp_path_factory.mktemp("feff_run")
    shutil.copy(FEFF_SMALL / "feff.inp", work / "feff.inp")
    t0 = time.perf_counter()
    feff10.run(str(work / "feff.inp"), str(work))
    return work, time.perf_counter() - t0
