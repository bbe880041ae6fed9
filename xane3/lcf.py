"""Linear-combination fitting: a measured spectrum as non-negative fractions of references.

The question a spectroscopist brings to a mixed sample ("how much of it is magnetite?"),
asked of predicted references. The model is

    mu(E) = sum_k f_k * B[ref_k](E - shift),   f_k >= 0,

with one energy shift for all references (their relative edge positions, the chemical
shift, are the prediction's) and optionally one common broadening ``B`` fitted with
them (``xane3.broadening``; a convolution is linear, so broadening the mixture is
mixing broadened references). Solved by ``scipy.optimize.least_squares`` with bounds;
standard errors from the Jacobian as in ``xane3.broadening`` (lower bounds, for the same
reason). A fraction at its bound (a reference fitted to 0) has no standard error: it is left out
of what is printed and plotted, and ``errors_note`` says why, never "± nan".
``sum_to_one`` adds the constraint as a stiff residual, as Athena's "weights must sum to
1" does; without it the sum is reported, a check on the normalisation.
The R-factor is Athena's: sum(residual^2) / sum(measured^2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from xane3.broadening import BOUNDS, Broadening, broaden, standard_errors, steepest_rise

SUM_WEIGHT = 1e3  # residual weight of sum(f) - 1 when the fractions must sum to one
FRACTION_MAX = 2.0  # upper bound of a fraction (a normalisation off by up to 2x still fits)


@dataclass
class LCFResult:
    """Fractions (and the shift, and any fitted widths) with standard errors."""

    names: list[str]
    fractions: np.ndarray
    stderr: np.ndarray
    shift: float
    shift_stderr: float
    broadening: Broadening
    widths_stderr: dict[str, float]
    r_factor: float
    energy: np.ndarray = field(repr=False)
    measured: np.ndarray = field(repr=False)
    fit: np.ndarray = field(repr=False)
    components: np.ndarray = field(repr=False)  # [k, n]: f_k times its broadened, shifted reference

    def no_error(self) -> dict[str, str]:
        """{reference: why it has no standard error} for each fraction that has none."""
        out = {}
        for n, f, s in zip(self.names, self.fractions, self.stderr):
            if not np.isfinite(s):
                at = 0.0 if f < 1e-6 else FRACTION_MAX if f > FRACTION_MAX - 1e-6 else None
                out[n] = (f"at its bound {at:g}, where a least-squares error is undefined" if at is not None
                          else "not estimable (the fit cannot tell it from the other references)")
        return out

    def fraction_texts(self) -> list[str]:
        """``0.78 ± 0.25`` per reference, or ``0.00 (no error: at bound)`` where none exists."""
        none = self.no_error()
        return [f"{f:.2f} ± {s:.2f}" if n not in none else
                f"{f:.2f} (no error: {'at bound' if 'bound' in none[n] else 'not estimable'})"
                for n, f, s in zip(self.names, self.fractions, self.stderr)]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for n, f, s in zip(self.names, self.fractions, self.stderr):
            out[f"{n}_fraction"], out[f"{n}_stderr"] = float(f), float(s)
        total = float(self.fractions.sum())
        for n, f in zip(self.names, self.fractions):
            out[f"{n}_share"] = float(f / total) if total > 0 else float("nan")
        out.update(sum=total, shift_eV=self.shift, shift_stderr_eV=self.shift_stderr,
                   gamma_eV=self.broadening.gamma, sigma_eV=self.broadening.sigma,
                   **{f"{k}_stderr_eV": v for k, v in self.widths_stderr.items()}, r_factor=self.r_factor,
                   errors_note="; ".join(f"{n}: no standard error, {why}" for n, why in self.no_error().items()))
        return out


def lcf(energy: np.ndarray, measured: np.ndarray, references: Mapping[str, tuple[np.ndarray, np.ndarray]],
        fit_shift: bool = True, broadening: Broadening | None = None, fit_widths: bool = False,
        sum_to_one: bool = False) -> LCFResult:
    """Fit ``measured`` (on ``energy``) with ``references`` {name: (energy, mu)}.

    ``broadening``: applied to every reference (its shift is the starting shift);
    ``fit_widths``: its gamma and sigma are fitted too.
    """
    energy, measured = np.asarray(energy, float), np.asarray(measured, float)
    if not references:
        raise ValueError("LCF needs at least one reference")
    ok = np.isfinite(measured)
    for e_ref, _ in references.values():
        ok &= (energy >= e_ref[0]) & (energy <= e_ref[-1])
    if ok.sum() < len(references) + 5:
        raise ValueError(f"only {int(ok.sum())} measured points lie inside every reference's range")
    e, y = energy[ok], measured[ok]
    names = list(references)
    start = broadening or Broadening()
    k = len(names)
    widths = ["gamma", "sigma"] if fit_widths else []
    edges = [steepest_rise(er, mr) for er, mr in references.values()]  # once, not per evaluation

    def broadening_of(x: np.ndarray) -> Broadening:
        free = {"shift": float(x[k])} if fit_shift else {}
        return replace(start, **free, **{w: float(v) for w, v in zip(widths, x[k + fit_shift:])})

    def parts(x: np.ndarray) -> np.ndarray:
        b = broadening_of(x)
        rows = [np.interp(e, er, broaden(er, mr, b, edge)) for (er, mr), edge in zip(references.values(), edges)]
        return x[:k, None] * np.stack(rows)

    def residual(x: np.ndarray) -> np.ndarray:
        r = parts(x).sum(0) - y
        return np.append(r, SUM_WEIGHT * (x[:k].sum() - 1.0)) if sum_to_one else r

    x0 = [1.0 / k] * k + ([start.shift] if fit_shift else []) + [max(getattr(start, w), 0.5) for w in widths]
    lo = [0.0] * k + ([BOUNDS["shift"][0]] if fit_shift else []) + [BOUNDS[w][0] for w in widths]
    hi = [FRACTION_MAX] * k + ([BOUNDS["shift"][1]] if fit_shift else []) + [BOUNDS[w][1] for w in widths]
    x0 = np.clip(x0, np.add(lo, 1e-6), np.subtract(hi, 1e-6))
    res = least_squares(residual, x0, bounds=(lo, hi), diff_step=1e-4)
    err = standard_errors(res.jac, res.fun, res.active_mask)
    comp = parts(res.x)
    fit = comp.sum(0)
    full = np.full((k, len(energy)), np.nan)
    full[:, ok] = comp
    curve = np.full(len(energy), np.nan)
    curve[ok] = fit
    b = broadening_of(res.x)
    return LCFResult(names, res.x[:k].copy(), err[:k], b.shift, float(err[k]) if fit_shift else 0.0, b,
                     {w: float(s) for w, s in zip(widths, err[k + fit_shift:])},
                     float(np.sum((fit - y) ** 2) / np.sum(y ** 2)), energy, measured, curve, full)


if __name__ == "__main__":
    from xane3.lcf_cli import main

    raise SystemExit(main())
