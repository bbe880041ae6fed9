"""``python -m benchmarks.run`` on a fresh clone: every mode runs and the ratios print."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


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


def test_benchmark_batches_continue_past_one_epoch() -> None:
    """A timing longer than one pass over a small subset gets full batches, never empty ones."""
    from benchmarks.common import batches
    from xane3.config import DataConfig
    from xane3.data.dataset import load_dataset

    real_ds = load_dataset(DataConfig(subset=30))  # the embedded FEFF10 set

    per_epoch = len(real_ds) // 4
    out = batches(real_ds, 3 * per_epoch + 1, 4)
    assert len(out) == 3 * per_epoch + 1 and all(len(b) == 4 for b in out)
    # one epoch covers each spectrum at most once; the next epoch is reshuffled
    first = np.concatenate(out[:per_epoch])
    assert len(set(first.tolist())) == len(first)
    assert not np.array_equal(first, np.concatenate(out[per_epoch:2 * per_epoch]))


def test_speed_options_times_the_trainers_step() -> None:
    """Issue 15: the benchmark runs ``xane3.train.step.train_step`` (amp, clip, E0 included),
    so its eager and amp rows are the trainer's; one tiny step of each (~15 s)."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.speed_options", "--preset", "tiny",
                          "--variants", "eager,amp", "--steps", "1", "--warmup", "0", "--subset", "16",
                          "--repeat", "1"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert re.search(r"^eager\s+cpu\s+[\d,]+ params\s+median [\d.]+ s/step", out.stdout, re.M), out.stdout
    assert re.search(r"^amp\s+cpu.*max\|pred - eager\| \S+", out.stdout, re.M), out.stdout
