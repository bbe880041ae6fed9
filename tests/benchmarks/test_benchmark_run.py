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


@pytest.mark.parametrize("module,argv,message", [
    ("speed_options", ["--variants", "bogus"], "--variants: unknown bogus"),
    ("speed_options", ["--steps", "0"], "--steps"), ("speed_options", ["--preset", "nosuch"], "unknown preset"),
    ("train_step", ["--steps", "0"], "--steps"), ("train_step", ["--facet", "1x4"], "three-digit Miller"),
    ("train_step", ["--phase", "FeX"], "unknown phase"),
    ("xanesnet", ["--train", "x", "--out", "y", "--n-molecules", "-5"], "--n-molecules"),
])
def test_bad_benchmark_arguments_are_one_line(module, argv, message, capsys) -> None:
    """Each was a traceback (or an error not naming the option) before 2026-12-03."""
    import importlib

    with pytest.raises(SystemExit) as exc:
        importlib.import_module(f"benchmarks.{module}").main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_benchmark_run_with_a_missing_db_is_one_line(tmp_path, capsys) -> None:
    from benchmarks.run import main

    assert main(["--db", str(tmp_path / "missing.db")]) == 2
    assert "missing.db: no such database" in capsys.readouterr().err
