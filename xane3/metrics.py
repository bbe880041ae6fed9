"""Per-spectrum metrics a spectroscopist reads, not only pointwise MSE.

The paper's Figure 3 shows that a lower spectrum MSE can hide a shifted main peak
or wrong relative intensities, so every spectrum is also scored on the features
one reads off a XANES plot. Definitions (all on the covered grid points only,
energies in eV on the grid's own axis, i.e. relative to each spectrum's E0):

- **edge** (``edge_ev``): the energy where the spectrum crosses half its edge jump
  on the main rise, linearly interpolated between grid points. The jump runs from
  ``low`` (median of the first points) to ``high`` (mean of the last 30 % of the
  covered range); for edge-step normalised spectra that is the 0.5 crossing. The
  crossing taken is the last upward one before the white line, so a pre-edge peak
  (which stays below half the jump) never counts.
- **edge by derivative** (``edge_deriv_ev``): the maximum of the first derivative
  within 8 eV of the half crossing, refined by a parabola through three points.
- **white line** (``wl_ev``, ``wl_height``): the highest point within
  ``WL_WINDOW`` eV above the edge, refined by a parabola (the main peak).
- **pre-edge** (``pre_ev``, ``pre_height``): the most prominent local maximum
  below the edge (``PRE_GAP`` to ``PRE_WINDOW`` eV below it, below half the jump) with
  prominence >= ``PRE_PROMINENCE`` of the jump; NaN where there is none.
- **spectrum / gradient / curvature MSE**: the training loss's definitions (plain
  finite differences on the grid, a difference counts only where all its points
  are covered), per spectrum.
- **Pearson / Spearman** correlation over covered points; **E0 error** in eV.

Errors are ``pred - ref``: a positive edge error is a prediction shifted up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.signal import find_peaks
from scipy.stats import spearmanr

from xane3.config import TrainConfig
from xane3.objective import combine

WL_WINDOW = 40.0  # eV above the edge searched for the white line
PRE_GAP = 2.0  # eV: a pre-edge peak lies at least this far below the edge
PRE_WINDOW = 15.0  # eV: ... and at most this far (1s->3d sits ~5-12 eV below the Fe K rise)
PRE_PROMINENCE = 0.02  # fraction of the edge jump
FEATURES = ("edge_ev", "edge_deriv_ev", "wl_ev", "wl_height", "pre_ev", "pre_height")


@dataclass
class Features:
    edge_ev: float = np.nan
    edge_deriv_ev: float = np.nan
    wl_ev: float = np.nan
    wl_height: float = np.nan
    pre_ev: float = np.nan
    pre_height: float = np.nan


def _parabola(x: np.ndarray, y: np.ndarray, i: int) -> tuple[float, float]:
    """Vertex (x, y) of the parabola through points i-1, i, i+1 (or the point itself)."""
    if i <= 0 or i >= len(x) - 1:
        return float(x[i]), float(y[i])
    y0, y1, y2 = y[i - 1], y[i], y[i + 1]
    den = y0 - 2 * y1 + y2
    if den >= 0:  # not a maximum
        return float(x[i]), float(y1)
    h = 0.5 * (x[i + 1] - x[i - 1])
    t = float(np.clip(0.5 * (y0 - y2) / den, -1.0, 1.0))
    return float(x[i] + t * h), float(y1 - 0.25 * (y0 - y2) * t)


def _covered_run(mask: np.ndarray) -> np.ndarray:
    """Indices of the longest contiguous run of covered points (features need one)."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return idx
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    return max(runs, key=len)


def spectral_features(energy: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> Features:
    """Edge, white line and pre-edge of one spectrum (NaN where not determinable)."""
    energy = np.asarray(energy, float)
    y = np.asarray(y, float)
    mask = np.isfinite(y) if mask is None else (np.asarray(mask, bool) & np.isfinite(y))
    run = _covered_run(mask)
    out = Features()
    if run.size < 8:
        return out
    e, s = energy[run], y[run]
    k = max(2, len(s) // 20)
    low = float(np.median(s[:k]))
    high = float(np.mean(s[-max(k, int(0.3 * len(s))):]))
    if not high - low > 1e-6:
        return out
    level = low + 0.5 * (high - low)
    # the main rise: the last upward half crossing before the highest point of the spectrum
    i_max = int(np.argmax(s))
    up = np.flatnonzero((s[:-1] < level) & (s[1:] >= level))
    up = up[up < max(i_max, 1)]
    if up.size == 0:
        return out
    i = int(up[-1])
    out.edge_ev = float(e[i] + (level - s[i]) * (e[i + 1] - e[i]) / (s[i + 1] - s[i]))
    d = np.gradient(s, e)
    win = np.flatnonzero(np.abs(e - out.edge_ev) <= 8.0)
    j = int(win[np.argmax(d[win])])
    out.edge_deriv_ev = _parabola(e, d, j)[0]
    above = np.flatnonzero((e >= out.edge_ev) & (e <= out.edge_ev + WL_WINDOW))
    if above.size:
        w = int(above[np.argmax(s[above])])
        out.wl_ev, out.wl_height = _parabola(e, s, w)
    below = np.flatnonzero(e <= out.edge_ev - PRE_GAP)
    if below.size >= 3:
        jump = high - low
        peaks, props = find_peaks(s[: below[-1] + 1], prominence=PRE_PROMINENCE * jump)
        ok = (s[peaks] < level) & (e[peaks] >= out.edge_ev - PRE_WINDOW)
        peaks, prom = peaks[ok], props["prominences"][ok]
        if peaks.size:
            p = int(peaks[np.argmax(prom)])
            out.pre_ev, out.pre_height = _parabola(e, s, p)
    return out


def curve_mse(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> dict[str, tuple[float, int]]:
    """(MSE, points) of spectrum, first and second differences, as in the loss."""
    pred, ref, mask = np.asarray(pred, float), np.asarray(ref, float), np.asarray(mask, bool)
    ref = np.where(mask, ref, 0.0)
    d1p, d1r, m1 = np.diff(pred), np.diff(ref), mask[1:] & mask[:-1]
    d2p, d2r, m2 = np.diff(d1p), np.diff(d1r), m1[1:] & m1[:-1]
    out = {}
    for name, (a, b, m) in {"spectrum": (pred, ref, mask), "gradient": (d1p, d1r, m1),
                            "curvature": (d2p, d2r, m2)}.items():
        n = int(m.sum())
        out[name] = (float(np.sum((a - b)[m] ** 2) / n) if n else np.nan, n)
    return out


def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of two [S, n] arrays (NaN for a constant row), vectorised."""
    a = np.atleast_2d(np.asarray(a, float))
    b = np.atleast_2d(np.asarray(b, float))
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.divide((a * b).sum(1), den, out=np.full(len(a), np.nan), where=den > 0)


def compare(energy: np.ndarray, pred: np.ndarray, ref: np.ndarray, mask: np.ndarray,
            pred_e0: float = np.nan, ref_e0: float = np.nan) -> dict[str, float]:
    """Every metric of one predicted spectrum against its reference (a flat dict)."""
    mask = np.asarray(mask, bool) & np.isfinite(ref)
    row: dict[str, float] = {}
    for name, (mse, n) in curve_mse(pred, ref, mask).items():
        row[f"mse_{name}"] = mse
        row[f"n_{name}"] = n
    p, r = np.asarray(pred, float)[mask], np.asarray(ref, float)[mask]
    varied = p.size >= 3 and np.ptp(p) > 0 and np.ptp(r) > 0
    row["pearson"] = float(pearson_rows(p, r)[0]) if varied else np.nan
    row["spearman"] = float(spearmanr(p, r)[0]) if varied else np.nan
    fp = spectral_features(energy, pred, mask)
    fr = spectral_features(energy, ref, mask)
    for name in FEATURES:
        row[f"ref_{name}"] = getattr(fr, name)
        row[f"pred_{name}"] = getattr(fp, name)
        row[f"err_{name}"] = getattr(fp, name) - getattr(fr, name)
    row["pre_edge_ref"] = float(np.isfinite(fr.pre_ev))
    row["pre_edge_missed"] = float(np.isfinite(fr.pre_ev) and not np.isfinite(fp.pre_ev))
    row["pred_e0"], row["ref_e0"] = float(pred_e0), float(ref_e0)
    row["err_e0"] = float(pred_e0) - float(ref_e0)
    # shape error plus E0 error: where the edge lands on the absolute axis
    row["err_edge_abs_ev"] = row["err_edge_ev"] + row["err_e0"]
    return row


def metrics_table(energy: np.ndarray, pred: np.ndarray, ref: np.ndarray, mask: np.ndarray,
                  pred_e0: np.ndarray | None = None, ref_e0: np.ndarray | None = None) -> pd.DataFrame:
    """One row per spectrum ([S, n_E] arrays) with every metric of :func:`compare`."""
    n = len(pred)
    pe = np.full(n, np.nan) if pred_e0 is None else np.asarray(pred_e0, float)
    re = np.full(n, np.nan) if ref_e0 is None else np.asarray(ref_e0, float)
    return pd.DataFrame([compare(energy, pred[i], ref[i], mask[i], pe[i], re[i]) for i in range(n)])


def summarize(df: pd.DataFrame, lambda_grad: float = TrainConfig.lambda_grad,
              lambda_curv: float = TrainConfig.lambda_curv) -> dict[str, float]:
    """Data-set numbers: pooled MSEs (as the trainer's), MAE of each feature, medians."""
    out: dict[str, float] = {"n_spectra": float(len(df))}
    for name in ("spectrum", "gradient", "curvature"):
        n = df[f"n_{name}"].to_numpy(float)
        v = df[f"mse_{name}"].to_numpy(float)
        ok = np.isfinite(v) & (n > 0)
        out[f"mse_{name}"] = float(np.sum(v[ok] * n[ok]) / np.sum(n[ok])) if ok.any() else np.nan
    out["total"] = combine({k: out[f"mse_{k}"] for k in ("spectrum", "gradient", "curvature")},
                           lambda_grad, lambda_curv)
    for name in ("pearson", "spearman"):
        out[f"{name}_mean"] = float(df[name].mean())
        out[f"{name}_median"] = float(df[name].median())
    for name in (*FEATURES, "e0", "edge_abs_ev"):
        err = df[f"err_{name}"].to_numpy(float)
        ok = np.isfinite(err)
        out[f"mae_{name}"] = float(np.mean(np.abs(err[ok]))) if ok.any() else np.nan
        out[f"bias_{name}"] = float(np.mean(err[ok])) if ok.any() else np.nan
    out["pre_edge_found_frac"] = float(df["pre_edge_ref"].mean()) if len(df) else np.nan
    refs = df["pre_edge_ref"].sum()
    out["pre_edge_missed_frac"] = float(df["pre_edge_missed"].sum() / refs) if refs else np.nan
    return out


def feature_dict(f: Features) -> dict[str, float]:
    return {k: float(v) for k, v in asdict(f).items()}
