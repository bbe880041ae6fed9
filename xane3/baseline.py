"""The mean-training-spectrum baseline: the floor every trained model must beat.

One implementation shared by ``xane3.evaluate`` and ``ablations.run`` so the
reference number printed beside Table 1 and beside an evaluation report is the same.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np


def mean_spectrum(energy: np.ndarray, spectra: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Pointwise mean over covered values; points no spectrum covers are filled by
    interpolation from their neighbours, so the baseline is defined on the whole grid."""
    spectra = np.asarray(spectra, dtype=float)
    if mask is not None:
        spectra = np.where(np.asarray(mask, dtype=bool), spectra, np.nan)
    with warnings.catch_warnings():  # grid points no spectrum covers stay NaN here
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(spectra, axis=0)
    ok = np.isfinite(mean)
    return np.interp(energy, energy[ok], mean[ok]) if ok.any() else np.zeros_like(energy, dtype=float)


def dataset_mean_spectrum(ds, idx: Sequence[int]) -> np.ndarray:
    """:func:`mean_spectrum` over the samples ``idx`` of an ``XASDataset``."""
    spec = np.stack([ds.samples[i].spectrum for i in idx])
    mask = np.stack([ds.samples[i].mask for i in idx])
    return mean_spectrum(np.asarray(ds.energy), spec, mask)


def dataset_e0s(ds, idx: Sequence[int]) -> np.ndarray:
    """The finite E0s (eV, float64) of the samples ``idx``: what the trainer standardises the
    E0 head by and what the evaluation's E0 baseline (their mean) predicts."""
    e0 = np.array([ds.samples[i].e0 for i in idx], dtype=float)
    return e0[np.isfinite(e0)]


def baseline_scores(ds, train_idx: Sequence[int], idx: Sequence[int], lambda_grad: float,
                    lambda_curv: float) -> dict[str, float]:
    """The mean training spectrum's spectrum / gradient / curvature MSE and total on ``idx``,
    by the same loss terms the trainer reports (covered points only)."""
    import torch

    from xane3.train.loss import combine, loss_terms

    mean = torch.as_tensor(dataset_mean_spectrum(ds, train_idx), dtype=torch.float64)
    ref = torch.as_tensor(np.nan_to_num(np.stack([ds.samples[i].spectrum for i in idx])))
    mask = torch.as_tensor(np.stack([ds.samples[i].mask for i in idx]))
    terms = {k: float(s / max(float(n), 1.0))
             for k, (s, n) in loss_terms(mean.expand_as(ref), ref, mask).items()}
    terms["total"] = combine(terms, lambda_grad, lambda_curv, 0.0)  # the trainer's one formula
    return terms
