"""Edge-step normalisation and the common energy grid (paper 2.1.2).

mu_norm = (mu - pre(E)) / step with pre a linear fit below the edge, post a
polynomial fit above it and step = post(E0) - pre(E0); then linear interpolation
onto a grid relative to E0. Grid points outside the source's energy range are
never extrapolated: they are NaN in ``spectrum`` and False in ``mask``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from xane3.data.record import SpectrumRecord

MIN_POINTS = 10


class SpectrumError(ValueError):
    """A spectrum that cannot be normalised; the message names its file."""


@dataclass
class NormalizedSpectrum:
    """A spectrum on the relative grid: NaN and mask False where not covered."""

    energy: np.ndarray  # grid, eV relative to e0
    spectrum: np.ndarray
    mask: np.ndarray
    e0: float  # absolute eV
    e0_kind: str
    edge_step: float


@dataclass(frozen=True)
class EdgeWindows:
    """Fit windows in eV relative to E0 (clipped to the data).

    post_order None picks the polynomial order from the post window's span as
    Larch's pre_edge does: 0 below 50 eV, 1 below 350 eV, else 2 (a short window
    cannot pin a slope, and a slope extrapolated back to E0 tilts the step). pre_order None is
    linear (the paper's) when the pre window spans >= 20 eV, else constant: the
    slope of a few eV of edge tail, extrapolated 50 eV, would tilt the whole spectrum.
    The pre window also ends at the baseline's end (``onset``: mu up by
    ``onset_fraction`` of the jump), so pre-edge peaks never tilt the line.
    If a window holds too few points it is widened toward E0 up to
    ``pre_min_gap`` / ``post_min_gap`` before giving up.
    """

    pre: tuple[float, float] = (-np.inf, -10.0)
    post: tuple[float, float] = (30.0, np.inf)
    post_order: int | None = None
    pre_order: int | None = None
    min_pre_points: int = 3
    min_post_points: int = 5
    pre_min_gap: float = 3.0
    post_min_gap: float = 10.0
    onset_fraction: float | None = 0.05


def default_grid(e_min: float = -30.0, e_max: float = 100.0, n: int = 150) -> np.ndarray:
    """The paper's grid: ``n`` uniform points on [e_min, e_max] eV relative to E0."""
    if n < 2 or not e_max > e_min:
        raise ValueError(f"bad grid: e_min={e_min}, e_max={e_max}, n={n}")
    return np.linspace(e_min, e_max, int(n))


def parse_grid(spec: str) -> np.ndarray:
    """``"-30,100,150"`` -> default_grid(-30, 100, 150)."""
    try:
        lo, hi, n = spec.split(",")
        return default_grid(float(lo), float(hi), int(n))
    except ValueError as exc:
        raise ValueError(f"grid must be 'e_min,e_max,n' (e.g. -30,100,150), got {spec!r}") from exc


def check_spectrum(energy: np.ndarray, mu: np.ndarray, source: str = "",
                   min_points: int = MIN_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Float arrays, or SpectrumError for: shape mismatch, too few points, NaN/inf,
    non-increasing energies."""
    e = np.asarray(energy, dtype=float)
    m = np.asarray(mu, dtype=float)
    if e.ndim != 1 or e.shape != m.shape:
        raise SpectrumError(f"{source}: energy {e.shape} and mu {m.shape} must be equal-length 1-D")
    if len(e) < min_points:
        raise SpectrumError(f"{source}: too few points ({len(e)} < {min_points})")
    for name, arr in (("energy", e), ("mu", m)):
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise SpectrumError(f"{source}: {name} has {bad.size} NaN/inf values (first at row {bad[0]})")
    steps = np.diff(e)
    if np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0])
        raise SpectrumError(f"{source}: energies not strictly increasing at row {i + 1} "
                            f"({e[i]:.4f} -> {e[i + 1]:.4f} eV)")
    return e, m


def _smoothed(e: np.ndarray, m: np.ndarray, smooth_ev: float) -> tuple[np.ndarray, np.ndarray]:
    """mu resampled on a uniform grid and Gaussian-smoothed (sigma ``smooth_ev``)."""
    step = float(np.clip(np.median(np.diff(e)), 0.02, 0.5))
    u = np.arange(e[0], e[-1] + step / 2, step)
    return u, gaussian_filter1d(np.interp(u, e, m), smooth_ev / step, mode="nearest")


def _levels(s: np.ndarray) -> tuple[float, float]:
    """(start level, end level): means of the first 5 % and last 20 % of points."""
    k = max(3, len(s) // 20)
    return float(s[:k].mean()), float(s[-max(k, len(s) // 5):].mean())


def find_e0(energy: np.ndarray, mu: np.ndarray, source: str = "", smooth_ev: float = 1.0) -> float:
    """Inflection point of the main rise: the maximum of the smoothed first
    derivative on the monotonic rise that carries mu over half the edge jump for
    the last time before the global maximum. Pre-edge peaks (which fall back
    before the main rise) and post-edge wiggles are thereby never picked."""
    e, m = check_spectrum(energy, mu, source)
    u, s = _smoothed(e, m, smooth_ev)
    lo, hi = _levels(s)
    if not hi - lo > 0.05 * np.ptp(s):
        raise SpectrumError(f"{source}: no edge in range ({e[0]:.1f}..{e[-1]:.1f} eV): "
                            "mu does not rise from start to end")
    top = int(np.argmax(s))
    below = np.flatnonzero(s[: top + 1] < lo + 0.5 * (hi - lo))
    if below.size == 0:
        raise SpectrumError(f"{source}: no edge in range: spectrum starts above half the edge jump")
    d = np.gradient(s, u)
    a = b = int(below[-1]) + 1  # first point over half; the monotonic rise around it is "main"
    while a > 0 and d[a - 1] > 0:
        a -= 1
    while b < len(u) - 1 and d[b + 1] > 0:
        b += 1
    i = a + int(np.argmax(d[a : b + 1]))
    if i in (0, len(u) - 1) or d[i] <= 0:
        raise SpectrumError(f"{source}: no edge in range: derivative peaks at the range boundary")
    return float(u[i])


def onset(energy: np.ndarray, mu: np.ndarray, fraction: float = 0.05, smooth_ev: float = 1.0) -> float:
    """First energy where smoothed mu exceeds its start level by ``fraction`` of the
    jump: the end of the flat baseline (pre-edge peaks included in what follows)."""
    u, s = _smoothed(np.asarray(energy, float), np.asarray(mu, float), smooth_ev)
    lo, hi = _levels(s)
    above = np.flatnonzero(s > lo + fraction * max(hi - lo, 0.0))
    return float(u[above[0]]) if above.size else float(u[-1])


def _window(rel: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.flatnonzero((rel >= lo) & (rel <= hi))


def edge_step_fits(energy: np.ndarray, mu: np.ndarray, e0: float, windows: EdgeWindows = EdgeWindows(),
                   source: str = "") -> tuple[np.ndarray, np.ndarray, float]:
    """(pre coefficients, post coefficients, edge step); polynomials in E - e0."""
    rel = np.asarray(energy, float) - e0
    w = windows
    pre_end = min(w.pre[1], onset(energy, mu, w.onset_fraction) - e0) if w.onset_fraction else w.pre[1]
    pre = _window(rel, w.pre[0], pre_end)
    if len(pre) < w.min_pre_points:
        pre = _window(rel, w.pre[0], max(pre_end, -w.pre_min_gap))
    if len(pre) < 2:
        raise SpectrumError(f"{source}: no pre-edge region: data start at {rel[0]:+.1f} eV from E0")
    post = _window(rel, w.post[0], w.post[1])
    if len(post) < w.min_post_points:
        post = _window(rel, min(w.post[0], w.post_min_gap), w.post[1])
    if len(post) < 2:
        raise SpectrumError(f"{source}: no post-edge region: data end at {rel[-1]:+.1f} eV from E0")
    span = rel[post[-1]] - rel[post[0]]
    order = w.post_order if w.post_order is not None else (0 if span < 50 else 1 if span < 350 else 2)
    order = min(order, len(post) - 1)
    pre_order = w.pre_order if w.pre_order is not None else int(rel[pre[-1]] - rel[pre[0]] >= 20.0)
    pre_c = np.polyfit(rel[pre], mu[pre], min(pre_order, len(pre) - 1))
    post_c = np.polyfit(rel[post], mu[post], order)
    step = float(np.polyval(post_c, 0.0) - np.polyval(pre_c, 0.0))
    if not np.isfinite(step) or step <= 0.05 * np.ptp(mu):
        raise SpectrumError(f"{source}: no edge in range (edge step {step:.3g} vs mu range {np.ptp(mu):.3g})")
    return pre_c, post_c, step


def normalize_mu(energy: np.ndarray, mu: np.ndarray, e0: float, windows: EdgeWindows = EdgeWindows(),
                 source: str = "") -> tuple[np.ndarray, float]:
    """(mu - pre) / step on the source's own energies, and the step."""
    e, m = check_spectrum(energy, mu, source)
    pre_c, _, step = edge_step_fits(e, m, e0, windows, source)
    return (m - np.polyval(pre_c, e - e0)) / step, step


def to_grid(rel_energy: np.ndarray, y: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation onto ``grid``; outside [rel[0], rel[-1]]: NaN, mask False."""
    grid = np.asarray(grid, dtype=float)
    mask = (grid >= rel_energy[0]) & (grid <= rel_energy[-1])
    out = np.full(grid.shape, np.nan)
    out[mask] = np.interp(grid[mask], rel_energy, y)
    return out, mask


def record_e0(record: SpectrumRecord, e: np.ndarray, m: np.ndarray,
              smooth_ev: float = 1.0) -> tuple[float, str]:
    """(E0, kind): the record's own, checked, or the inflection point of the checked data
    ``e``, ``m`` when it has none. Every target is built on this one choice."""
    src = record.source
    if record.e0 is None:
        return find_e0(e, m, src, smooth_ev), "inflection"
    e0 = float(record.e0)
    if not np.isfinite(e0):
        raise SpectrumError(f"{src}: E0 is not finite")
    if not e[0] < e0 < e[-1]:
        raise SpectrumError(f"{src}: E0 {e0:.2f} eV outside the data ({e[0]:.2f}..{e[-1]:.2f} eV)")
    return e0, record.e0_kind


def normalize_record(record: SpectrumRecord, grid: np.ndarray | None = None,
                     windows: EdgeWindows = EdgeWindows(), smooth_ev: float = 1.0) -> NormalizedSpectrum:
    """Normalise a raw record onto ``grid`` (default_grid() if None), relative to its E0.

    A record without e0 gets the inflection point (``e0_kind="inflection"``).
    Raises SpectrumError naming ``record.source`` when it cannot be normalised.
    """
    grid = default_grid() if grid is None else np.asarray(grid, dtype=float)
    src = record.source
    e, m = check_spectrum(record.energy, record.mu, src)
    e0, kind = record_e0(record, e, m, smooth_ev)
    mu_norm, step = normalize_mu(e, m, e0, windows, src)
    spectrum, mask = to_grid(e - e0, mu_norm, grid)
    if not mask.any():
        raise SpectrumError(f"{src}: the grid [{grid[0]:g}, {grid[-1]:g}] eV misses the data entirely")
    return NormalizedSpectrum(energy=grid.copy(), spectrum=spectrum, mask=mask, e0=e0, e0_kind=kind,
                              edge_step=step)
