"""Spectra on a measurement's terms: broadening, an energy shift, and fitting both.

A simulated K-edge is sharper than a measured one: the calculation's own core-hole
width is often under-estimated, the final state's lifetime shortens above the edge, and
the monochromator adds a Gaussian resolution. The convolution here is a Voigt profile
(``scipy.special.voigt_profile``) whose Lorentzian FWHM may grow with energy as in
FDMNES' arctangent model (Bunau & Joly 2009):

    Gamma(E) = Gamma_hole + Gamma_max * (1/2 + 1/pi * arctan(pi/3 * Gamma_max/E_larg * (e - 1/e^2))),
    e = (E - E_edge) / E_cent,  Gamma(E) = Gamma_hole below the edge,

with the Gaussian FWHM ``sigma`` constant. Widths are FWHM in eV, as spectroscopists
quote them. ``fit_broadening`` finds shift and widths by least squares
(``scipy.optimize.least_squares``); its standard errors come from the Jacobian at the
optimum, scaled by the residual variance. They treat the grid points as independent,
which a spectrum sampled finer than its resolution is not, so they are lower bounds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import least_squares
from scipy.special import voigt_profile

FWHM_PER_STD = 2.0 * np.sqrt(2.0 * np.log(2.0))  # a Gaussian's FWHM / its standard deviation
STEP = 0.05  # eV: the finest grid the convolution works on (finer data keep their own step)


@dataclass(frozen=True)
class Broadening:
    """What is done to a prediction before it meets a measurement (eV)."""

    shift: float = 0.0  # added to the prediction's energies
    gamma: float = 0.0  # Lorentzian FWHM at and below the edge (core hole)
    sigma: float = 0.0  # Gaussian FWHM (instrument)
    gamma_max: float = 0.0  # energy-dependent Lorentzian rise far above the edge (0: constant)
    e_cent: float = 30.0  # eV above the edge where the rise is centred
    e_larg: float = 30.0  # eV over which it rises

    @classmethod
    def parse(cls, text: str) -> Broadening:
        """``GAMMA,SIGMA[,SHIFT]`` (eV), e.g. ``1.5,1.0`` or ``1.5,1.0,-2``: ``--broaden``'s value,
        each inside the range a fit may reach (``BOUNDS``): a width typed in meV, a NaN or a
        shift past the model's window is an error, not a flat or empty spectrum."""
        try:
            vals = [float(v) for v in text.split(",")]
        except ValueError:
            vals = []
        names = ("gamma", "sigma", "shift")
        if 2 <= len(vals) <= 3 and all(BOUNDS[k][0] <= v <= BOUNDS[k][1] for k, v in zip(names, vals)):
            return cls(**dict(zip(names, vals)))
        raise ValueError(f"--broaden {text!r}: expected GAMMA,SIGMA[,SHIFT] in eV with widths in "
                         f"{list(BOUNDS['gamma'])} and the shift in {list(BOUNDS['shift'])}")


def broadening_arg(text: str) -> Broadening:
    """``--broaden`` for argparse: its own message on a bad value."""
    import argparse

    try:
        return Broadening.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def lorentz_fwhm(energy: np.ndarray, b: Broadening, e_edge: float) -> np.ndarray:
    """Gamma(E) of the arctangent model (constant ``b.gamma`` when ``b.gamma_max`` is 0)."""
    gamma = np.full(np.shape(energy), float(b.gamma))
    if b.gamma_max <= 0:
        return gamma
    e = (np.asarray(energy, float) - e_edge) / b.e_cent
    above = e > 0
    with np.errstate(divide="ignore"):
        arg = np.pi / 3 * b.gamma_max / b.e_larg * (e[above] - 1.0 / e[above] ** 2)
    gamma[above] += b.gamma_max * (0.5 + np.arctan(arg) / np.pi)
    return gamma


def broaden(energy: np.ndarray, mu: np.ndarray, b: Broadening, e_edge: float = 0.0) -> np.ndarray:
    """``mu`` convolved with the Voigt profile of ``b`` and shifted by ``b.shift``, on ``energy``.

    Works on a uniform fine grid padded beyond both ends with the end values (a spectrum
    continues flat past its window, as a normalised one does), each output point the
    row-normalised kernel average, so a flat spectrum stays flat up to the ends.
    """
    energy, mu = np.asarray(energy, float), np.asarray(mu, float)
    widest = max(b.gamma + b.gamma_max, b.sigma)
    if widest <= 1e-6:
        return np.interp(energy - b.shift, energy, mu)
    step = min(float(np.min(np.diff(energy))), STEP)  # fixed: the model is smooth in the widths
    n_pad = int(np.ceil(6.0 * widest / step)) + 1
    fine = energy[0] + step * np.arange(-n_pad, int(np.ceil((energy[-1] - energy[0]) / step)) + n_pad + 1)
    y = np.interp(fine, energy, mu)
    std = b.sigma / FWHM_PER_STD
    if b.gamma_max <= 0:  # one kernel: a convolution
        kernel = voigt_profile(step * np.arange(-n_pad, n_pad + 1), std, b.gamma / 2.0)
        out = np.convolve(y, kernel, "same") / np.convolve(np.ones_like(y), kernel, "same")
    else:  # the width follows the final state's energy: one kernel column per fine point
        hwhm = lorentz_fwhm(fine, b, e_edge) / 2.0
        out = np.empty_like(fine)
        for lo in range(0, len(fine), 512):  # kernel rows in blocks: bounded memory
            rows = slice(lo, lo + 512)
            kernel = voigt_profile(fine[rows, None] - fine[None, :], std, hwhm[None, :])
            out[rows] = kernel @ y / kernel.sum(axis=1)
    return np.interp(energy - b.shift, fine, out)


def steepest_rise(energy: np.ndarray, mu: np.ndarray) -> float:
    """Where the energy-dependent width starts when no E0 is given: the steepest point of the
    edge (robust on any curve, unlike an inflection fit)."""
    return float(energy[np.argmax(np.gradient(mu, energy))])


def broaden_prediction(energy: np.ndarray, pred: dict[str, np.ndarray], b: Broadening,
                       absolute: bool) -> dict[str, np.ndarray]:
    """An ensemble prediction (``xane3.ensemble``) with every member broadened, mean and std
    recomputed: what ``predict --broaden`` writes. The edge of the energy-dependent width is
    0 on a relative axis, else the group's predicted E0 (the steepest rise without one)."""
    members = np.asarray(pred["members"], float)  # [k, groups, n_E]
    out = np.empty_like(members)
    for g in range(members.shape[1]):
        e0 = float(pred["e0"][g]) if absolute else 0.0
        if not np.isfinite(e0):
            e0 = steepest_rise(energy, members[:, g].mean(0))
        for m in range(members.shape[0]):
            out[m, g] = broaden(energy, members[m, g], b, e0)
    return {**pred, "members": out, "mean": out.mean(0), "std": out.std(0)}


@dataclass
class BroadeningFit:
    """Fitted broadening, its standard errors, and the agreement before and after."""

    broadening: Broadening
    stderr: dict[str, float]
    fitted: list[str]
    before: dict[str, float]
    after: dict[str, float]
    curve: np.ndarray = field(repr=False)  # the broadened prediction on the measured energies

    def as_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self.broadening).items()},
                **{f"{k}_stderr": v for k, v in self.stderr.items()},
                "fitted": ",".join(self.fitted),
                **{f"{k}_before": v for k, v in self.before.items()},
                **{f"{k}_after": v for k, v in self.after.items()}}


def agreement(pred: np.ndarray, meas: np.ndarray) -> dict[str, float]:
    return {"mse": float(np.mean((pred - meas) ** 2)), "pearson": float(np.corrcoef(pred, meas)[0, 1])}


def standard_errors(jac: np.ndarray, residual: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
    """sqrt(diag((J^T J)^-1) * s^2): the usual least-squares errors of the parameters off their
    bounds (``active``: least_squares' ``active_mask``); NaN at a bound, where none is defined."""
    free = np.ones(jac.shape[1], bool) if active is None else np.asarray(active) == 0
    out = np.full(jac.shape[1], np.nan)
    dof = max(len(residual) - int(free.sum()), 1)
    s2 = float(residual @ residual) / dof
    try:
        cov = np.linalg.inv(jac[:, free].T @ jac[:, free]) * s2
    except np.linalg.LinAlgError:
        return out
    out[free] = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return out


BOUNDS = {"shift": (-30.0, 30.0), "gamma": (0.0, 20.0), "sigma": (0.0, 20.0), "gamma_max": (0.0, 40.0)}


def fit_broadening(e_pred: np.ndarray, mu_pred: np.ndarray, e_meas: np.ndarray, mu_meas: np.ndarray,
                   fit: tuple[str, ...] = ("shift", "gamma", "sigma"), start: Broadening = Broadening(),
                   e_edge: float = 0.0) -> BroadeningFit:
    """Least-squares shift and widths taking the prediction onto the measurement.

    Compared on the measured energies inside the prediction's range; ``fit`` names the
    free parameters (of ``shift``, ``gamma``, ``sigma``, ``gamma_max``), the rest stay at ``start``.
    """
    unknown = sorted(set(fit) - set(BOUNDS))
    if unknown:
        raise ValueError(f"cannot fit {unknown}; choose from {sorted(BOUNDS)}")
    e_meas, mu_meas = np.asarray(e_meas, float), np.asarray(mu_meas, float)
    keep = (e_meas >= e_pred[0]) & (e_meas <= e_pred[-1]) & np.isfinite(mu_meas)
    if keep.sum() < len(fit) + 5:
        raise ValueError(f"only {int(keep.sum())} measured points inside the prediction's range "
                         f"{e_pred[0]:.1f}..{e_pred[-1]:.1f} eV: nothing to fit")
    e, y = e_meas[keep], mu_meas[keep]
    base = asdict(start)

    def model(x: np.ndarray) -> np.ndarray:
        b = Broadening(**{**base, **dict(zip(fit, x))})
        return np.interp(e, e_pred, broaden(e_pred, mu_pred, b, e_edge))

    x0 = np.clip([base[k] for k in fit], [BOUNDS[k][0] + 1e-3 for k in fit], [BOUNDS[k][1] for k in fit])
    x0 = np.where([k != "shift" for k in fit], np.maximum(x0, 0.5), x0)  # away from the kink at 0
    res = least_squares(lambda x: model(x) - y, x0, bounds=([BOUNDS[k][0] for k in fit],
                                                           [BOUNDS[k][1] for k in fit]), diff_step=1e-3)
    best = Broadening(**{**base, **dict(zip(fit, map(float, res.x)))})
    curve = model(res.x)
    err = standard_errors(res.jac, res.fun, res.active_mask)
    return BroadeningFit(best, dict(zip(fit, map(float, err))), list(fit),
                         agreement(np.interp(e, e_pred + start.shift, mu_pred), y), agreement(curve, y), curve)
