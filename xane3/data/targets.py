"""Training targets: which spectrum a model learns, on which energy axis.

``edge_step`` + ``relative`` is ours (the paper's): normalised mu on a grid
relative to E0. ``none`` + ``absolute`` is what XANESNET's users learn: raw
intensities on a fixed absolute grid (e.g. 7097-7172 eV in 226 points). Every
combination goes through the same normaliser and never extrapolates.
"""

from __future__ import annotations

import numpy as np

from xane3.config import DataConfig
from xane3.data.normalize import (
    NormalizedSpectrum,
    SpectrumError,
    check_spectrum,
    normalize_mu,
    normalize_record,
    record_e0,
    to_grid,
)
from xane3.data.record import SpectrumRecord


def grid_of(cfg: DataConfig) -> np.ndarray:
    return np.linspace(cfg.e_min, cfg.e_max, cfg.n_points)


def make_target(rec: SpectrumRecord, cfg: DataConfig) -> NormalizedSpectrum:
    """The record as a target on the configured grid (NaN + mask False where uncovered)."""
    grid = grid_of(cfg)
    if cfg.normalization == "edge_step" and cfg.energy_axis == "relative":
        return normalize_record(rec, grid)
    e, m = check_spectrum(rec.energy, rec.mu, rec.source)
    e0, kind = record_e0(rec, e, m)
    step = 1.0
    y = m
    if cfg.normalization == "edge_step":
        y, step = normalize_mu(e, m, e0, source=rec.source)
    x = e - e0 if cfg.energy_axis == "relative" else e
    if x.shape == grid.shape and np.max(np.abs(x - grid)) < 0.01:
        # the source already sits on this grid (files print energies rounded): take it as is
        spectrum, mask = np.asarray(y, float).copy(), np.ones(grid.shape, bool)
    else:
        spectrum, mask = to_grid(x, y, grid)
    if not mask.any():
        raise SpectrumError(f"{rec.source}: the grid [{grid[0]:g}, {grid[-1]:g}] eV misses the data")
    return NormalizedSpectrum(energy=grid, spectrum=spectrum, mask=mask, e0=e0, e0_kind=kind,
                              edge_step=float(step))
