"""Shared fixtures: where the real reference data lives, and small real data sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XANE3_SHARED", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"reference data not found at {SHARED_DATA} (set XANE3_SHARED)")
    return SHARED_DATA
