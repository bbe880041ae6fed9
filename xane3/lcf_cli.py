"""``python -m xane3.lcf --out DIR``: linear-combination fits of Fe K-edges with predicted references.

References are the model's bulk spectra (``--references``, default hematite, magnetite,
wustite), each site-averaged and normalised as ``compare_experiment`` does, on its own
predicted absolute axis: their relative edge positions are the prediction's. Targets
are measured two-column spectra (``--measured FILE``, repeatable; default the measured
hematite, magnetite and wustite of ``../shared/data/experimental-fe``), normalised the
same way, fitted over ``--window`` eV about their own E0 with one shift and (``--broaden
fit``, the default) one Lorentzian + Gaussian broadening common to all references.

Without ``--measured`` two kinds of synthetic mixture with known fractions are fitted
too: mixtures of the *predicted* references themselves, broadened, shifted and with
noise (what the fit can recover when the references are right), and mixtures of the
*measured* hematite and wustite (what predicted references recover from real data).

Writes DIR/lcf.csv (one row per target: known and fitted fractions, standard errors,
shares, shift, widths, R-factor), lcf.json and lcf.png.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from xane3.atomic import WriteError, write_csv_atomic, write_text_atomic
from xane3.broadening import Broadening, broaden
from xane3.cli_common import FAILED, add_device, add_model_source, fail
from xane3.compare_experiment import (
    EXPERIMENT_DIR,
    GRID,
    PHASES,
    normalise,
    predicted_reference,
    read_measured,
)
from xane3.data.normalize import find_e0
from xane3.ensemble import load_ensemble
from xane3.lcf import lcf
from xane3.provenance import portable_path
from xane3.train.accel import resolve_device

SYNTH_BROADENING = Broadening(shift=3.0, gamma=1.5, sigma=1.0)  # what the synthetic mixtures carry
SYNTH_NOISE = 0.005  # Gaussian noise on the synthetic mixtures (normalised units)
SYNTH_PREDICTED = [(0.6, 0.3, 0.1), (0.2, 0.5, 0.3), (0.0, 0.25, 0.75)]
SYNTH_MEASURED = [0.25, 0.5, 0.75]  # hematite fraction of a hematite + wustite mixture
# what the packaged model's references can do with measured spectra (docs/pretrained.md)
LIMIT = ("with predicted references a small R does not mean right fractions: measured hematite + "
         "wustite mixtures fit with R ~ 1e-3 and wrong fractions (0.25 hematite -> 0.81); a fraction "
         "names a phase at best (docs/pretrained.md)")


def measured_target(path: Path) -> tuple[float, np.ndarray, np.ndarray]:
    """(E0, absolute energies, normalised mu) of a measured spectrum."""
    e, mu = read_measured(path)
    e0, norm = normalise(e, mu, str(path))
    return e0, e0 + GRID, norm


def targets(args: argparse.Namespace, refs: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[dict]:
    """Each target: name, kind, energy, mu, E0 and the known fractions where there are some."""
    out = []
    files = [Path(f) for f in args.measured] if args.measured else \
        [Path(args.experiment_dir) / PHASES[n][1] for n in ("hematite", "magnetite", "wustite")]
    for f in files:
        e0, e, mu = measured_target(f)
        out.append({"target": f.stem, "kind": "measured", "energy": e, "mu": mu, "e0": e0, "known": {}})
    if args.measured:
        return out
    rng = np.random.default_rng(0)
    names = list(refs)
    if len(names) == 3:
        e_common = refs[names[0]][0]
        for frac in SYNTH_PREDICTED:
            mix = sum(f * np.interp(e_common, *refs[n]) for f, n in zip(frac, names))
            mu = broaden(e_common, mix, SYNTH_BROADENING) + rng.normal(0, SYNTH_NOISE, e_common.size)
            label = "/".join(f"{f:.2f}" for f in frac)
            out.append({"target": f"predicted mix {label}", "kind": "synthetic (predicted)",
                        "energy": e_common, "mu": mu,
                        "e0": None, "known": dict(zip(names, frac))})
    d = Path(args.experiment_dir)
    (e0h, eh, h), (e0w, ew, w) = (measured_target(d / PHASES[n][1]) for n in ("hematite", "wustite"))
    e_common = np.arange(max(eh[0], ew[0]), min(eh[-1], ew[-1]), GRID[1] - GRID[0])
    for f in SYNTH_MEASURED:
        mu = f * np.interp(e_common, eh, h) + (1 - f) * np.interp(e_common, ew, w)
        out.append({"target": f"measured mix {f:.2f}/{1 - f:.2f} hem./wus.",
                    "kind": "synthetic (measured)", "energy": e_common, "mu": mu, "e0": None,
                    "known": {n: (f if n == "hematite" else 1 - f if n == "wustite" else 0.0) for n in refs}})
    return out


def run(args: argparse.Namespace) -> pd.DataFrame:
    from xane3.plots_measured import plot_lcf

    ens = load_ensemble(args.checkpoint, args.ensemble, device=resolve_device(args.device))
    if ens.absorber_z != 26:
        raise ValueError(f"the checkpoint predicts Z={ens.absorber_z}; these references are Fe K-edges")
    refs, e0_refs = {}, []
    for name in args.references:
        e0, mean, _, _, _ = predicted_reference(ens, name)
        ok = np.isfinite(mean)
        refs[name] = ((e0 + GRID)[ok], mean[ok])
        e0_refs.append(e0)
    fixed = None if args.broaden in ("fit", "none") else Broadening.parse(args.broaden)
    rows, panels = [], []
    for t in targets(args, refs):
        e, mu = t["energy"], t["mu"]
        ok = np.isfinite(mu)
        e0 = t["e0"] if t["e0"] is not None else find_e0(e[ok], mu[ok], t["target"])
        win = (e >= e0 + args.window[0]) & (e <= e0 + args.window[1])
        start = fixed or Broadening()
        start = Broadening(shift=start.shift or e0 - float(np.mean(e0_refs)), gamma=start.gamma,
                           sigma=start.sigma)  # first guess: the edges' mean offset
        res = lcf(e[win], mu[win], refs, broadening=start, fit_widths=args.broaden == "fit",
                  sum_to_one=args.sum_to_one)
        row = {"target": t["target"], "kind": t["kind"], **{f"{n}_known": v for n, v in t["known"].items()},
               **res.as_dict(), **{f"{n} ± stderr": x for n, x in zip(res.names, res.fraction_texts())}}
        rows.append(row)
        note = "\n".join(f"{n} {text}" for n, text in zip(res.names, res.fraction_texts()))
        if t["known"]:
            note += "\nknown " + ", ".join(f"{v:.2f}" for v in t["known"].values())
        panels.append({"title": t["target"], "energy": res.energy, "measured": res.measured, "fit": res.fit,
                       "components": dict(zip(res.names, res.components)),
                       "note": f"{note}\nR {res.r_factor:.1e}, shift {res.shift:+.1f} eV"})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    write_csv_atomic(df.drop(columns=[c for c in df if c.endswith(" ± stderr")]), out / "lcf.csv")
    plot_lcf(out / "lcf.png", panels)
    meta = {"checkpoints": [portable_path(x) for x in ens.paths], "references": args.references,
            "broaden": args.broaden, "window_eV": args.window, "sum_to_one": args.sum_to_one,
            "synthetic": {"broadening": asdict(SYNTH_BROADENING), "noise": SYNTH_NOISE},
            "fits": json.loads(df.drop(columns=[c for c in df if c.endswith(" ± stderr")])
                               .to_json(orient="records"))}
    write_text_atomic(out / "lcf.json", json.dumps(meta, indent=2))
    return df


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xane3.lcf", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_source(p)
    add_device(p)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--measured", action="append", default=[], metavar="FILE",
                   help="two-column measured spectrum (repeatable; default: the shared Fe oxides + mixtures)")
    p.add_argument("--references", default="hematite,magnetite,wustite",
                   help=f"comma list of predicted references from {', '.join(PHASES)}")
    p.add_argument("--broaden", default="fit", help="fit (default) | none | GAMMA,SIGMA[,SHIFT] in eV")
    p.add_argument("--window", default="-20,60", help="fit range, eV about each target's E0, inside -30,100 (default -20,60; "
                   "a negative LO needs the = form: --window=-30,80)")
    p.add_argument("--sum-to-one", action="store_true", help="constrain the fractions to sum to 1")
    p.add_argument("--experiment-dir", default=str(EXPERIMENT_DIR), help="the shared measured spectra")
    args = p.parse_args(argv)
    args.references = [x.strip() for x in args.references.split(",") if x.strip()]
    unknown = sorted(set(args.references) - set(PHASES))
    if unknown or not args.references:
        p.error(f"unknown reference(s) {unknown}; known: {', '.join(PHASES)}")
    try:
        window = [float(v) for v in args.window.split(",")]
    except ValueError:
        window = []
    if len(window) != 2 or not GRID[0] <= window[0] < window[1] <= GRID[-1]:  # the spectra's extent
        p.error(f"--window {args.window!r}: expected LO,HI in eV with {GRID[0]:g} <= LO < HI <= {GRID[-1]:g}")
    args.window = window
    try:
        if args.broaden not in ("fit", "none"):
            Broadening.parse(args.broaden)
        df = run(args)
    except WriteError as exc:  # fitted, but the results could not be kept
        return fail(exc, FAILED)
    except (OSError, ValueError) as exc:  # checkpoint, measured file or output folder refused
        return fail(exc)
    cols = ["target"] + [c for c in df if c.endswith(("_known", " ± stderr"))] + \
        ["sum", "shift_eV", "gamma_eV", "sigma_eV", "r_factor"]
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format",
                           lambda v: f"{v:.3g}"):
        print(df[[c for c in cols if c in df]].to_string(index=False, na_rep="-"))  # no known fractions
    if df["errors_note"].astype(bool).any():
        print("note: a fraction at its bound (0) has no standard error (lcf.csv errors_note says which)")
    if (df["kind"] != "synthetic (predicted)").any():
        print(f"note: {LIMIT}")
    print(f"wrote {args.out}/lcf.csv, lcf.json, lcf.png")
    return 0
