"""Training callbacks: the one loop reports to whoever listens (Parquet, W&B, Ray).

A callback gets each epoch's flat metric dict. Raising ``StopTraining`` from one
ends the run cleanly (checkpoints are already written).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from xane3.atomic import write_parquet_atomic


class StopTraining(Exception):
    """Raised by a callback to end training early."""


class Callback:
    def on_epoch_end(self, epoch: int, metrics: dict[str, Any], checkpoint: Path | None) -> None:
        pass

    def on_train_end(self, result: dict[str, Any]) -> None:
        pass


class ParquetEpochLog(Callback):
    """Per-epoch metrics as ``metrics.parquet`` in the run directory."""

    def __init__(self, path: str | Path, keep: list[dict[str, Any]] | None = None) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = list(keep or [])

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any], checkpoint: Path | None) -> None:
        self.rows = [r for r in self.rows if r["epoch"] < epoch] + [dict(metrics)]
        write_parquet_atomic(pd.DataFrame(self.rows), self.path)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class SlowEpochHint(Callback):
    """One line on stderr when an epoch is slow for a reason outside the run: the load average
    well above the cores (other jobs share the CPU), or an epoch far slower than the fastest.
    A 12x slowdown beside another job once went unexplained for an hour.

    ``load``: where the 1-minute load average comes from (``os.getloadavg``, the machine's)."""

    def __init__(self, load: Callable[[], tuple[float, ...]] = os.getloadavg, cores: int | None = None,
                 every: int = 10) -> None:
        self.load, self.cores, self.every = load, cores or _cores(), every
        self.times: list[float] = []
        self.last_hint: int | None = None

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any], checkpoint: Path | None) -> None:
        took, fastest = float(metrics["epoch_time_s"]), min(self.times, default=None)
        self.times.append(took)
        load = float(self.load()[0])
        slow = fastest is not None and took > 3 * fastest
        if not (slow or load > 1.5 * self.cores):
            return
        if self.last_hint is not None and epoch - self.last_hint < self.every:
            return
        self.last_hint = epoch
        than = f", {took / fastest:.1f}x the fastest ({fastest:.1f} s)" if slow else ""
        tqdm.write(f"hint: epoch {epoch + 1} took {took:.1f} s{than}; load average {load:.1f} on "
                   f"{self.cores} cores: other processes share the CPU (fewer --threads, nice them, or "
                   "wait)", file=sys.stderr)
