"""Training callbacks: the one loop reports to whoever listens (Parquet, W&B, Ray).

A callback gets each epoch's flat metric dict. Raising ``StopTraining`` from one
ends the run cleanly (checkpoints are already written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

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
