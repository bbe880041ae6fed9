"""FDMNES runs: structure from the input file, convolved spectrum as the target.

Energy reference (documented choice; see ``fdmnes_e0``): FDMNES writes photoelectron
energies on a relative axis whose zero sits at the tabulated edge energy ``E_edge``
on the absolute (photon) scale, i.e. E_photon = E + E_edge (the XANESNET files are
written exactly so). ``E_cut`` (labelled ``E_Fermi`` in 2022 headers) is the Fermi
level on that axis, where the convolution cuts occupied states; it varies with the
structure. So E0 = E_edge + E_cut is the Fermi level on the absolute scale (the
paper's "E0 referenced to the Fermi energy"). A multi-site convolution is written
on the axis of the site with the smallest core level ``Epsii`` (FDMNES shifts site
i by Epsii_i - min Epsii, the ``Shift`` printed per site in its log), so the run's
E0 uses that reference site's E_cut.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from xane3.data.readers import read_text
from xane3.data.readers.fdmnes import FdmnesError, FdmnesOutput, read_fdmnes_input, read_fdmnes_output
from xane3.data.readers.structures import absorbers_of
from xane3.data.record import SpectrumRecord


def find_input(run_dir: Path) -> Path | None:
    """The run's input: the job fdmfile.txt names (one job per folder), else ``*_in.txt``."""
    fdmfile = run_dir / "fdmfile.txt"
    if fdmfile.is_file():
        names = read_text(fdmfile, FdmnesError).split()
        if names and names[0].isdigit() and int(names[0]) > 1:
            raise FdmnesError(f"{fdmfile}: lists {names[0]} jobs; ingest reads one job per run "
                              "folder: give each job its own folder")
        for name in names[1:]:
            if (run_dir / name).is_file():
                return run_dir / name
    candidates = sorted(run_dir.glob("*_in.txt"))
    return candidates[0] if candidates else None


def site_outputs(run_dir: Path, filout: str) -> list[Path]:
    """Per-absorbing-site outputs ``Filout.txt`` or ``Filout_1..k.txt``, in site order."""
    stem = Path(filout).name
    pat = re.compile(rf"^{re.escape(stem)}(?:_(\d+))?\.(?:txt|dat)$")
    found = [(int(m.group(1) or 0), p) for p in run_dir.iterdir() if (m := pat.match(p.name))]
    return [p for _, p in sorted(found)]


def conv_output(run_dir: Path, filout: str) -> Path | None:
    stem = Path(filout).name
    for name in (f"{stem}_conv.txt", f"{stem}_conv.dat"):
        if (run_dir / name).is_file():
            return run_dir / name
    found = sorted(run_dir.glob("*_conv.txt")) + sorted(run_dir.glob("*_conv.dat"))
    return found[0] if found else None


def site_shifts(sites: list[FdmnesOutput]) -> np.ndarray:
    """Shift FDMNES applies to each site in the convolution: Epsii_i - min Epsii."""
    eps = np.array([s.epsii if s.epsii is not None else np.nan for s in sites])
    if not len(eps) or np.isnan(eps).any():  # none (a convolution alone) or unstated
        return np.zeros(len(sites))
    return eps - eps.min()


def fdmnes_e0(sites: list[FdmnesOutput], conv: FdmnesOutput | None = None) -> tuple[float | None, float]:
    """(E0, E_edge) for a convolution of ``sites`` (see module docstring).

    E0 = E_edge + E_cut of the reference site (zero shift). Only a site output states the
    Fermi level: a convolution header's E_cut is the convolution's own parameter (0.0 in
    the 2022 Mo2C run, whose site says E_Fermi = -5.01 eV), and a missing one is not 0.
    Without it E0 is None, so the inflection point is used and labelled as such.
    """
    if sites:
        src = sites[int(np.argmin(site_shifts(sites)))]
    elif conv is not None:
        src = conv
    else:
        raise FdmnesError("no FDMNES output to take E_edge from")
    if src.e_edge is None:
        raise FdmnesError(f"{src.path}: no E_edge in header: cannot place energies on the absolute scale")
    fermi = src.e_cut if sites else None
    return (None if fermi is None else src.e_edge + fermi), src.e_edge


def read_fdmnes_run(run_dir: str | Path) -> list[SpectrumRecord]:
    """One record per run: the convolved spectrum, whose absorbers are ALL atoms with
    Z == Z_absorber (FDMNES computes and averages every one), or the sites an
    ``Absorber`` keyword names. Energies absolute (relative + E_edge), E0 per
    ``fdmnes_e0``; meta keeps per-site E_cut and shifts."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FdmnesError(f"{run_dir}: not a directory")
    inp_path = find_input(run_dir)
    if inp_path is None:
        raise FdmnesError(f"{run_dir}: no FDMNES input (fdmfile.txt / *_in.txt): "
                          "a spectrum without a structure cannot be ingested")
    inp = read_fdmnes_input(inp_path)
    conv_path = conv_output(run_dir, inp.filout)
    if conv_path is None:
        raise FdmnesError(f"{run_dir}: no convolved output {inp.filout}_conv.txt")
    conv = read_fdmnes_output(conv_path)
    sites = [read_fdmnes_output(p) for p in site_outputs(run_dir, inp.filout)
             if p.resolve() != inp_path.resolve()]  # without Filout its stem is the input's own
    shifts = site_shifts(sites)
    _check_conv_extent(conv, sites, shifts)
    try:
        e0, e_edge = fdmnes_e0(sites, conv)
    except FdmnesError as exc:
        raise FdmnesError(f"{conv_path}: {exc}") from exc
    for s in sites:
        z = s.header.get("Z")
        if z is not None and int(z) != inp.z_absorber:
            raise FdmnesError(f"{s.path}: Z={int(z)} but the input says Z_absorber={inp.z_absorber}")
    absorbers = inp.absorbers if inp.absorbers else absorbers_of(inp.atoms, inp.z_absorber)
    if not absorbers:
        raise FdmnesError(f"{inp_path}: no absorber atom (no atom with Z={inp.z_absorber})")
    meta: dict = {"code": "fdmnes", "convolved": True, "edge": inp.edge, "e_edge": e_edge,
                  "n_sites": len(sites), "e_cut_sites": [s.e_cut for s in sites],
                  "shift_sites": shifts.tolist(), "input": str(inp_path)}
    meta_path = run_dir / "run_metadata.json"
    if meta_path.is_file():
        try:
            info = json.loads(meta_path.read_text())
            if isinstance(info.get("structure"), str):
                meta["structure_name"] = info["structure"]
        except (json.JSONDecodeError, AttributeError):
            pass
    return [SpectrumRecord(energy=conv.energy + e_edge, mu=conv.mu, source=str(conv_path),
                           absorber_z=inp.z_absorber, e0=e0,
                           e0_kind="fermi" if e0 is not None else "inflection", atoms=inp.atoms,
                           absorbers=absorbers, meta=meta)]


def _check_conv_extent(conv: FdmnesOutput, sites: list[FdmnesOutput], shifts: np.ndarray) -> None:
    """A convolution cut at a line boundary parses whole: it must span its sites' range, less
    the sites' relative shifts (FDMNES aligns them on Epsii) and a 1 eV margin."""
    if not sites:
        return
    slack = 1.0 + (float(np.nanmax(np.abs(shifts))) if np.isfinite(shifts).any() else 0.0)
    lo, hi = min(s.energy[0] for s in sites), max(s.energy[-1] for s in sites)
    if conv.energy[0] > lo + slack or conv.energy[-1] < hi - slack:
        raise FdmnesError(f"{conv.path}: spans {conv.energy[0]:.2f}..{conv.energy[-1]:.2f} eV, its site "
                          f"outputs {lo:.2f}..{hi:.2f} eV (truncated file?)")


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "fdmfile.txt").is_file() or any(path.glob("*_conv.txt"))
                              or any(path.glob("*_conv.dat")))


def find_runs(root: str | Path) -> list[Path]:
    """``root`` itself if it is a run, else every run directory below it."""
    root = Path(root)
    if is_run_dir(root):
        return [root]
    return sorted((p for p in root.rglob("*") if is_run_dir(p)), key=lambda p: str(p))
