"""Scores of the XANESNET Fe benchmark, in the numbers a XANESNET user reads.

Targets are raw FDMNES intensities on the files' absolute grid, so scores are too:

- ``mse_raw``: MSE on raw intensities, pooled over spectra and grid points;
- ``mse_tail1``: MSE after scaling *each* spectrum (prediction and reference
  separately) so the mean of its last 20 points is 1, which removes the overall
  intensity scale and scores the shape;
- ``pearson_mean/median/min``: Pearson r per spectrum over the grid.

Beside every model: the mean training spectrum, the floor a useful model beats.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xane3.metrics import pearson_rows
from xane3.train.metadata import metadata_of

TAIL = 20  # points at the high-energy end that scaling sets to a mean of 1
SPLIT_NAMES = {"val": "val", "test": "holdout"}  # the trainer's test split is our untouched holdout
COLUMNS = {"mse_raw": "MSE raw", "mse_tail1": "MSE tail=1", "pearson_mean": "Pearson mean",
           "pearson_median": "Pearson median", "pearson_min": "Pearson min"}


def scale_tail(y: np.ndarray, tail: int = TAIL) -> np.ndarray:
    """Each row divided by the mean of its last ``tail`` points (NaN where that mean is ~0)."""
    y = np.asarray(y, float)
    s = y[..., -tail:].mean(axis=-1, keepdims=True)
    return np.divide(y, s, out=np.full_like(y, np.nan), where=np.abs(s) > 1e-12)


def spectrum_scores(pred: np.ndarray, ref: np.ndarray) -> pd.DataFrame:
    """One row per spectrum: raw MSE, tail-scaled MSE, Pearson r ([S, n_E] inputs)."""
    pred, ref = np.asarray(pred, float), np.asarray(ref, float)
    if pred.shape != ref.shape:
        raise ValueError(f"prediction {pred.shape} and reference {ref.shape} differ in shape")
    return pd.DataFrame({
        "mse_raw": ((pred - ref) ** 2).mean(1),
        "mse_tail1": ((scale_tail(pred) - scale_tail(ref)) ** 2).mean(1),
        "pearson": pearson_rows(pred, ref),
    })


def summarize_scores(df: pd.DataFrame) -> dict[str, float]:
    """Pooled MSEs (every spectrum has the same grid) and the Pearson distribution."""
    r = df["pearson"].to_numpy(float)
    return {"n": int(len(df)), "mse_raw": float(df["mse_raw"].mean()),
            "mse_tail1": float(np.nanmean(df["mse_tail1"])),
            "pearson_mean": float(np.nanmean(r)), "pearson_median": float(np.nanmedian(r)),
            "pearson_min": float(np.nanmin(r))}


def split_arrays(ds: Any, idx: list[int], source: str) -> np.ndarray:
    """Reference spectra of ``idx``; the benchmark's targets cover the whole grid."""
    ref = np.stack([ds.samples[i].spectrum for i in idx])
    mask = np.stack([ds.samples[i].mask for i in idx])
    if not mask.all():
        raise ValueError(f"{source}: some targets do not cover the whole grid; the XANESNET "
                         "benchmark expects every spectrum on the files' own grid")
    return ref


def evaluate_checkpoints(checkpoints: dict[str, Path], db: Path,
                         splits: tuple[str, ...] = ("val", "test")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary rows, per-spectrum rows) for each named checkpoint and the mean baseline.

    Every checkpoint must have been trained on ``db`` with the same split (same data
    hash and split indices), so all predictors are scored on the same spectra.
    """
    from xane3.baseline import dataset_mean_spectrum
    from xane3.data.dataset import XASDataset
    from xane3.evaluate import predict_samples
    from xane3.train.checkpoint import load_checkpoint

    summary, per_spectrum = [], []
    ds, ref_splits, by_cutoff = None, None, {}
    for name, path in checkpoints.items():
        model = load_checkpoint(path)
        meta = metadata_of(model)
        data_cfg = dataclasses.replace(meta.config.data, db=str(db))
        if data_cfg.r_max not in by_cutoff:  # graphs at each model's own cutoff (searched r_max)
            by_cutoff[data_cfg.r_max] = XASDataset.from_db(db, data_cfg)
        ds = by_cutoff[data_cfg.r_max]
        ref_splits = ref_splits or meta.splits
        if ds.data_hash() != meta.data_hash or meta.splits != ref_splits:
            raise ValueError(f"{path}: trained on other data or another split than {db}")
        for split in splits:
            idx = list(ref_splits[split])
            ref = split_arrays(ds, idx, str(db))
            pred, _ = predict_samples(model, ds, idx)
            _collect(summary, per_spectrum, name, split, pred, ref, idx, ds)
    assert ds is not None and ref_splits is not None
    train = list(ref_splits["train"])
    split_arrays(ds, train, str(db))  # the training targets too must cover the whole grid
    mean = dataset_mean_spectrum(ds, train)  # the same baseline evaluate and ablations print
    for split in splits:
        idx = list(ref_splits[split])
        ref = split_arrays(ds, idx, str(db))
        _collect(summary, per_spectrum, "mean training spectrum", split,
                 np.broadcast_to(mean, ref.shape), ref, idx, ds)
    return pd.DataFrame(summary), pd.concat(per_spectrum, ignore_index=True)


def _collect(summary: list, per_spectrum: list, name: str, split: str, pred: np.ndarray,
             ref: np.ndarray, idx: list[int], ds: Any) -> None:
    df = spectrum_scores(pred, ref)
    split = SPLIT_NAMES.get(split, split)
    summary.append({"predictor": name, "split": split, **summarize_scores(df)})
    df.insert(0, "source", [Path(str(ds.samples[i].meta.get("source", ""))).stem for i in idx])
    df.insert(0, "split", split)
    df.insert(0, "predictor", name)
    per_spectrum.append(df)


def markdown_table(summary: pd.DataFrame) -> str:
    """The validation table as Markdown (what benchmarks/README.md quotes)."""
    head = "| predictor | split | spectra | " + " | ".join(COLUMNS.values()) + " |"
    rule = "| --- | --- | ---: | " + " | ".join("---:" for _ in COLUMNS) + " |"
    rows = [f"| {r.predictor} | {r.split} | {r.n} | "
            + " | ".join(_fmt(getattr(r, k), k) for k in COLUMNS) + " |"
            for r in summary.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def _fmt(v: float, key: str) -> str:
    return f"{v:.3f}" if key.startswith("pearson") else f"{v:.3e}"
