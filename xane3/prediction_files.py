"""What ``python -m xane3.predict`` writes for one structure: CSV (+ PNG) or XANESNET files.

Each file is written to a temporary name and renamed, so a full disk leaves no half file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

from xane3.atomic import write_csv_atomic


class PredictError(ValueError):
    """A structure this checkpoint cannot predict; the message names the file."""


def spectra_frame(energy: np.ndarray, labels: list[str], pred: dict[str, np.ndarray],
                  ensemble: bool, absolute: bool = False, ood: list[str] | None = None) -> pd.DataFrame:
    """The model's energy axis, then per site: spectrum, [spread], [absolute energy]; with
    several sites their average (and its spread over the members, scaled like the sites');
    an out-of-domain prediction (``ood``: the reasons) ends with an ``out_of_domain`` column,
    so the file carries its mark wherever it goes."""
    cols: dict[str, np.ndarray] = {"energy_abs_eV" if absolute else "energy_rel_eV": energy}
    for i, label in enumerate(labels):
        cols[label] = pred["mean"][i]
        if ensemble:
            cols[f"{label}_std"] = pred["std"][i]
        if not absolute and np.isfinite(pred["e0"][i]):
            cols[f"{label}_energy_abs_eV"] = energy + pred["e0"][i]
    if len(labels) > 1:  # what a measurement of the whole structure sees
        from xane3.sites import site_average

        e0 = None if absolute else pred["e0"]
        grid, mean, on_abs = site_average(energy, pred["mean"], e0)
        cols["site_average"] = mean
        if ensemble and "members" in pred:  # each member's own site average, on the same grid
            avgs = np.stack([site_average(energy, m, e0)[1] for m in pred["members"]])
            cols["site_average_std"] = pred.get("std_scale", 1.0) * avgs.std(0)
        if on_abs:
            cols["site_average_energy_abs_eV"] = grid
    if ood:
        cols["out_of_domain"] = np.full(len(energy), "; ".join(ood), dtype=object)
    return pd.DataFrame(cols)


def write_xanesnet(out: Path, stem: str, source: str, energy: np.ndarray, labels: list[str],
                   pred: dict[str, np.ndarray], absolute: bool, taken: set[str]) -> list[str]:
    """One XANESNET-layout file per site on absolute energies; returns the file names.
    ``taken``: names written so far in ``out`` (updated), since a site's ``a_Fe0.txt`` can be
    another input's ``a_Fe0.txt``: a clash gets ``_1``, ``_2``, never overwrites."""
    from xane3.data.readers.xanesnet import write_xanesnet_spectrum

    names = []
    for i, label in enumerate(labels):
        if absolute:
            e = energy
        elif np.isfinite(pred["e0"][i]):
            e = energy + pred["e0"][i]
        else:
            raise PredictError(f"{source}: the checkpoint predicts on an energy axis relative to E0 "
                               "and has no trained E0 head, so it cannot write absolute energies "
                               "(--format xanesnet); use --format csv")
        base = stem if len(labels) == 1 else f"{stem}_{label}"
        name, n = f"{base}.txt", 0
        while name in taken:
            n += 1
            name = f"{base}_{n}.txt"
        taken.add(name)
        write_xanesnet_spectrum(out / name, e, pred["mean"][i])
        names.append(name)
    return names


def write_outputs(out: Path, stem: str, path: Path, atoms: Atoms, ens, labels: list[str],
                   pred: dict[str, np.ndarray], multi: bool, absolute: bool, plots: bool,
                   ood: list[str] | None = None) -> list[str]:
    """CSV (and PNG) of one structure, each written whole or not at all; the CSV's name."""
    files = [f"{stem}.csv"]
    write_csv_atomic(spectra_frame(ens.energy, labels, pred, multi, absolute, ood), out / files[0])
    if plots:
        from xane3.plots import plot_prediction

        e0 = pred["e0"] if np.all(np.isfinite(pred["e0"])) else None
        if absolute:  # the axis is already absolute: shift by nothing, label it "Energy"
            e0 = np.zeros(len(labels))
        plot_prediction(out / f"{stem}.png", ens.energy, labels, pred["mean"],
                        pred["std"] if multi else None, e0, f"{path.name}: {atoms.get_chemical_formula()}",
                        warning="; ".join(ood or []))
    return files
