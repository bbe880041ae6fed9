"""Many absorber sites of one structure: which are equivalent, and their average.

Magnetite's unit cell holds 24 Fe sites; a measurement sees their average. Sites whose
predicted spectra agree within ``tol`` (relative to the largest intensity) are grouped,
so symmetry-equivalent sites, which a rotation-invariant model predicts alike, fall
into one group without a symmetry search. The site average is taken on absolute
energies when every site has an E0 (each site's spectrum shifted by its own E0 and
interpolated onto the mean E0's grid), on the model's axis otherwise.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np


def equivalent_groups(spectra: np.ndarray, tol: float = 1e-3) -> list[list[int]]:
    """Indices of sites grouped by equal spectra (max |difference| <= tol x max |spectrum|)."""
    spectra = np.asarray(spectra, float)
    scale = max(float(np.nanmax(np.abs(spectra))) if spectra.size else 0.0, 1e-12)
    groups: list[list[int]] = []
    for i, y in enumerate(spectra):
        for g in groups:
            if np.nanmax(np.abs(spectra[g[0]] - y)) <= tol * scale:
                g.append(i)
                break
        else:
            groups.append([i])
    return groups


def site_average(energy: np.ndarray, spectra: np.ndarray,
                 e0: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """(energy, mean spectrum, on_absolute_axis) over every site."""
    spectra = np.asarray(spectra, float)
    e0 = None if e0 is None else np.asarray(e0, float)
    if e0 is None or not np.all(np.isfinite(e0)) or len(e0) != len(spectra):
        return energy, spectra.mean(axis=0), False
    grid = energy + float(e0.mean())
    shifted = [np.interp(grid, energy + e, y, left=np.nan, right=np.nan) for y, e in zip(spectra, e0)]
    with warnings.catch_warnings():  # points no site covers stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return grid, np.nanmean(np.stack(shifted), axis=0), True


def group_label(labels: Sequence[str], group: Sequence[int]) -> str:
    names = [labels[i] for i in group]
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    return f"{shown} (x{len(group)})" if len(group) > 1 else shown
