"""``python -m xane3.compare_experiment --checkpoint CKPT --out DIR``

The first sanity check a user does: the model's Fe K-edge for bulk hematite
(alpha-Fe2O3), magnetite (Fe3O4) and wustite (FeO) against measured spectra.

Both sides go through the same steps: the site average (every Fe of the
conventional cell, each on its own predicted E0, so magnetite weights its
tetrahedral and octahedral sites 1:2), the E0 = inflection point of the main
rise (``xane3.data.normalize.find_e0``), the same edge-step normalisation
(linear pre-edge, polynomial post-edge, identical windows) over the same range,
-30..+100 eV around that E0, and finally alignment on the edge: the prediction
is shifted so its E0 lands on the measured one. The shift is reported (simulated
absolute energies are typically a few eV off experiment), and so are the
metrics of xane3.metrics after alignment (white line, pre-edge, correlation).

Then the prediction is put on the measurement's terms (``xane3.broadening``): a
Lorentzian and a Gaussian width and a residual shift, fitted by least squares to the
measured curve, reported with standard errors and the MSE / Pearson before and after
(``fit_*`` columns; ``--no-fit`` skips it). A fitted width is broadening the
measurement has beyond the calculation's (core hole, final-state lifetime, resolution).

Writes DIR/compare_experiment.png, .csv (aligned curves), .json (numbers).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from xane3.atomic import WriteError, write_csv_atomic, write_text_atomic
from xane3.broadening import fit_broadening
from xane3.calibration import read_scale
from xane3.cli_common import FAILED, add_device, add_model_source, fail
from xane3.data.normalize import EdgeWindows, SpectrumError, find_e0, normalize_mu
from xane3.ensemble import Ensemble, ensemble_dir, load_ensemble
from xane3.metrics import compare
from xane3.provenance import file_sha256, portable_path
from xane3.sites import site_average
from xane3.train.accel import resolve_device

# name -> (phase in xane3.datagen.structures, measured file)
PHASES = {"hematite": ("alpha-Fe2O3", "fe2o3.dat"), "magnetite": ("Fe3O4", "fe3o4.dat"),
          "wustite": ("FeO", "feo.dat")}
GRID = np.linspace(-30.0, 100.0, 261)  # eV about each spectrum's own inflection E0 (0.5 eV steps)
E0_WINDOW = (-30.0, 30.0)  # eV about the model's E0 where the prediction's inflection is sought
_SHARED = Path(os.environ.get("XANE3_SHARED", Path(__file__).resolve().parents[2] / "shared"))
EXPERIMENT_DIR = _SHARED / "data" / "experimental-fe" / "normalized"


def read_measured(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Two columns (energy eV, mu), ``#`` comments; sorted, duplicates dropped."""
    try:
        data = np.loadtxt(path, comments="#", usecols=(0, 1), ndmin=2)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read a two-column spectrum ({exc})") from exc
    if len(data) < 2:
        raise ValueError(f"{path}: {len(data)} data row(s); a spectrum needs many")
    e, idx = np.unique(data[:, 0], return_index=True)
    return e, data[idx, 1]


def normalise(energy: np.ndarray, mu: np.ndarray, source: str, e0: float | None = None) -> tuple[float, np.ndarray]:
    """(E0, spectrum on E0 + GRID): the one normalisation both sides get.

    The data are cut to the grid's range first, so the pre- and post-edge fits see
    the same window whether the input spans 130 eV (a prediction) or 1 keV (a scan).
    """
    e0 = find_e0(energy, mu, source) if e0 is None else e0
    keep = (energy >= e0 + GRID[0] - 1.0) & (energy <= e0 + GRID[-1] + 1.0)
    norm, _ = normalize_mu(energy[keep], mu[keep], e0, EdgeWindows(), source)
    return e0, np.interp(e0 + GRID, energy[keep], norm, left=np.nan, right=np.nan)


def covered_site_average(energy: np.ndarray, spectra: np.ndarray, e0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`xane3.sites.site_average` on the sites' mean predicted E0 (a relative axis when
    E0 is unknown), keeping only points some site covers."""
    axis, avg, _ = site_average(energy, spectra, e0)
    ok = np.isfinite(avg)
    return axis[ok], avg[ok]


def predicted_bulk(ens: Ensemble, phase: str) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """Per ensemble member: (energy axis, site-averaged spectrum); and the number of Fe sites."""
    from xane3.datagen.structures import bulk, to_atoms

    atoms = to_atoms(bulk(phase))
    fe = [int(i) for i in np.flatnonzero(atoms.numbers == ens.absorber_z)]
    out = ens.predict(atoms, [[i] for i in fe])
    members = [covered_site_average(ens.energy, s, e) for s, e in zip(out["members"], out["members_e0"])]
    return members, len(fe)


def predicted_reference(ens: Ensemble, name: str) -> tuple[float, np.ndarray, np.ndarray | None, int, str]:
    """(E0, mean, std over members or None, Fe sites, note): the prediction for bulk ``name``,
    normalised like a measurement on its own absolute axis, E0 + ``GRID``."""
    phase = PHASES[name][0]
    members, n_sites = predicted_bulk(ens, phase)
    axis = members[0][0]  # members share the grid; their absolute axes differ by E0
    mean = np.mean([np.interp(axis, a, s) for a, s in members], axis=0)
    notes = []
    # the model puts its edge near its own E0 (relative 0) by construction: look for the
    # inflection within E0_WINDOW of it, never in a poorly trained far post-edge
    rel = axis - (axis[0] - ens.energy[0])
    win = (rel >= E0_WINDOW[0]) & (rel <= E0_WINDOW[1])
    try:
        e0_pred = find_e0(axis[win], mean[win], f"{name} prediction")
    except SpectrumError as exc:  # a poor model may predict no clear edge: align on its E0
        e0_pred = float(axis[0] - ens.energy[0])
        notes.append(f"{name}: no clear edge in the prediction ({exc}); aligned on its E0")
    curves = []
    for a, s in members:
        try:
            curves.append(normalise(a, s, f"{name} prediction", e0_pred)[1])
        except SpectrumError as exc:  # keep the model's own normalisation
            curves.append(np.interp(e0_pred + GRID, a, s, left=np.nan, right=np.nan))
            notes.append(f"{name}: prediction not re-normalised ({exc})")
    std = np.std(curves, axis=0) if len(curves) > 1 else None
    return e0_pred, np.mean(curves, axis=0), std, n_sites, "; ".join(dict.fromkeys(notes))


def compare_phase(ens: Ensemble, name: str, exp_dir: Path, fit: bool = True,
                  std_scale: float | None = None) -> tuple[dict, dict]:
    """(numbers, plot panel) for one phase; ``fit``: broadening and shift fitted as well;
    ``std_scale``: the ensemble's val-fitted calibration of its spread, as predict applies it."""
    phase, fname = PHASES[name]
    e_exp, mu_exp = read_measured(exp_dir / fname)
    e0_exp, exp = normalise(e_exp, mu_exp, str(exp_dir / fname))
    e0_pred, pred, std, n_sites, note = predicted_reference(ens, name)
    if std is not None and std_scale:
        std = std_scale * std
    mask = np.isfinite(exp) & np.isfinite(pred)
    m = compare(GRID, np.nan_to_num(pred), np.nan_to_num(exp), mask)
    row = {"phase": name, "structure": phase, "fe_sites": n_sites, "members": len(ens.models),
           "e0_measured_eV": e0_exp, "e0_predicted_eV": e0_pred, "shift_applied_eV": e0_exp - e0_pred,
           "mse": m["mse_spectrum"], "pearson": m["pearson"], "spearman": m["spearman"],
           "white_line_error_eV": m["err_wl_ev"], "white_line_height_error": m["err_wl_height"],
           "pre_edge_error_eV": m["err_pre_ev"], "pre_edge_measured_eV": m["ref_pre_ev"] + e0_exp,
           "white_line_measured_eV": m["ref_wl_ev"] + e0_exp, "note": note}
    panel = {"title": f"{name} ({phase})", "energy": GRID + e0_exp, "measured": exp, "predicted": pred,
             "std": std, "std_scale": std_scale, "note": f"shift {e0_exp - e0_pred:+.1f} eV\nPearson {m['pearson']:.3f}"
             + ("\nprediction not re-normalised" if "re-normalised" in note else "")}
    if fit:  # on the edge-aligned curves: the fitted shift is what the alignment left
        f = fit_broadening(GRID[mask], pred[mask], GRID[mask], exp[mask])
        b = f.broadening
        row.update({f"fit_{k}": v for k, v in f.as_dict().items()
                    if k not in ("gamma_max", "e_cent", "e_larg", "fitted")})
        fitted = np.full_like(exp, np.nan)
        fitted[mask] = f.curve
        panel["fitted"] = fitted
        panel["note"] += (f"\nfit: Γ {b.gamma:.1f}, σ {b.sigma:.1f}, shift {b.shift:+.1f} eV"
                          f"\nPearson after fit {f.after['pearson']:.3f}")
    return row, panel


def run(ens: Ensemble, out: str | Path, exp_dir: str | Path = EXPERIMENT_DIR,
        phases: list[str] | None = None, fit: bool = True, std_scale: float | None = None) -> pd.DataFrame:
    from xane3.plots_measured import plot_experiment

    exp_dir, out = Path(exp_dir), Path(out)
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"{exp_dir}: measured spectra not found (pass --experiment-dir)")
    if ens.absorber_z != 26:
        raise ValueError(f"the checkpoint predicts Z={ens.absorber_z}, the measured spectra are Fe K-edges")
    rows, panels = [], []
    for name in phases or list(PHASES):
        row, panel = compare_phase(ens, name, exp_dir, fit, std_scale)
        rows.append(row)
        panels.append(panel)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    plot_experiment(out / "compare_experiment.png", panels)
    curves = {"energy_rel_eV": GRID}
    for p, r in zip(panels, rows):
        curves[f"{r['phase']}_energy_eV"] = p["energy"]
        curves[f"{r['phase']}_measured"] = p["measured"]
        curves[f"{r['phase']}_predicted"] = p["predicted"]
        if p["std"] is not None:
            curves[f"{r['phase']}_predicted_std"] = p["std"]
        if p.get("fitted") is not None:
            curves[f"{r['phase']}_predicted_broadened"] = p["fitted"]
    write_csv_atomic(pd.DataFrame(curves), out / "compare_experiment.csv")
    meta = {"checkpoints": [portable_path(x) for x in ens.paths],
            "checkpoint_sha256": [file_sha256(x) for x in ens.paths],
            "experiment_dir": portable_path(exp_dir),
            "paths_relative_to": "the directory the command ran in", "std_scale": std_scale,
            "phases": json.loads(df.to_json(orient="records"))}
    write_text_atomic(out / "compare_experiment.json", json.dumps(meta, indent=2))
    return df


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xane3.compare_experiment", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_source(p)
    add_device(p)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--experiment-dir", default=str(EXPERIMENT_DIR),
                   help=f"measured spectra (default {EXPERIMENT_DIR})")
    p.add_argument("--phases", default=",".join(PHASES), help=f"comma list of {', '.join(PHASES)}")
    p.add_argument("--no-fit", action="store_true", help="skip the broadening and shift fit")
    args = p.parse_args(argv)
    phases = [x.strip() for x in args.phases.split(",") if x.strip()]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        p.error(f"unknown phase(s) {unknown}; known: {', '.join(PHASES)}")
    try:
        ens = load_ensemble(args.checkpoint, args.ensemble, device=resolve_device(args.device))
        scale = read_scale(ensemble_dir(args.ensemble), ens.paths) if args.ensemble else None
        df = run(ens, args.out, args.experiment_dir, phases, not args.no_fit, scale)
    except WriteError as exc:  # compared, but the results could not be kept
        return fail(exc, FAILED)
    except (OSError, ValueError) as exc:  # checkpoint, measured spectra or output folder refused
        return fail(exc)
    cols = ["phase", "shift_applied_eV", "mse", "pearson", "white_line_error_eV",
            "white_line_height_error", "pre_edge_error_eV"]
    cols += [c for c in ("fit_gamma", "fit_gamma_stderr", "fit_sigma", "fit_sigma_stderr", "fit_shift",
                         "fit_mse_after", "fit_pearson_after") if c in df]
    with pd.option_context("display.width", 160, "display.float_format", lambda v: f"{v:.3g}"):
        print(df[cols].to_string(index=False))
    for note in df["note"]:
        if note:
            print(f"note: {note}")
    print(f"wrote {args.out}/compare_experiment.png, .csv, .json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
