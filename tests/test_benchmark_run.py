"""``python -m benchmarks.run`` on a fresh clone: every mode runs and the ratios print."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # three default-model subprocesses, one step each (~1-2 min)
def test_benchmark_prints_figures_and_ratios() -> None:
    out = subprocess.run([sys.executable, "-m", "benchmarks.run", "--steps", "1", "--slow-steps", "1",
                          "--warmup", "0", "--batch-size", "4"], cwd=REPO, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    for mode in ("structure", "absorber", "plain"):
        assert re.search(rf"^{mode}\s+train_spectra_per_s\s+[\d.,]+", text, re.M), text
    ratios = dict(re.findall(r"^ratio (.+?)\s+([\d.]+)x$", text, re.M))
    assert len(ratios) == 3 and all(float(v) > 0 for v in ratios.values()), text
    # structure-level batching predicts what one graph per absorber predicts
    diff = float(re.search(r"max \|structure - absorber\| prediction\s+(\S+)", text).group(1))
    assert diff < 1e-5
