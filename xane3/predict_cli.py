"""``python -m xane3.predict [--checkpoint CKPT | --ensemble DIR] STRUCTURE|FOLDER [...] --out DIR``

Predict Fe K-edge XANES (or the checkpoint's absorbing element) for any structure
ASE reads (CIF, POSCAR, extxyz, ...) and for XANESNET xyz files (first column Z,
recognised by their content; ``--read-format`` forces a reader). A FOLDER means
every file in it. ``--format`` picks the output layout:

- ``csv`` (default): per structure STEM.csv (the model's energy axis: relative to
  E0, or absolute for a checkpoint trained on an absolute grid; one spectrum
  column per site and, when the model predicts E0 on a relative axis, one
  absolute-energy column per site; ensembles add the spread as SITE_std) and STEM.png.
- ``xanesnet``: per structure STEM.txt in the XANESNET data set's own layout
  (two header lines, then ``energy intensity`` rows on absolute energies), so any
  scorer that reads XANESNET spectra reads ours unchanged. The site is the
  absorber at the origin (XANESNET's convention) when there is one; several sites
  give STEM_SITE.txt each. A relative-axis model needs its E0 head for this.

DIR/predictions.json lists every structure, its sites and E0s. Every absorbing site
gives its own spectrum by default; --sites picks sites (one spectrum each) and
--site-group pools several into one (as a multi-absorber FDMNES run averages them);
indices are 0-based. An ensemble folder with a calibration.json (``xane3.calibration
--write-scale``) has its spread scaled to a val-calibrated ±2 std band; with several sites
the site average gets its spread too (site_average_std, over each member's own average).
With --broaden the members are broadened first and the same scale, fitted on unbroadened
val spectra, multiplies their spread: a band not calibrated on broadened spectra.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
from ase.data import chemical_symbols
from tqdm.auto import tqdm

from xane3.atomic import write_text_atomic
from xane3.broadening import broaden_prediction, broadening_arg
from xane3.calibration import read_scale
from xane3.cli_common import (
    FAILED,
    add_device,
    add_model_source,
    add_no_plots,
    error_text,
    fail,
    positive_int,
)
from xane3.data.readers.structures import MAX_ATOMS
from xane3.predict_inputs import (
    check_elements,
    check_physical,
    expand_inputs,
    origin_site,
    parse_element,
    parse_indices,
    read_input,
    site_groups,
    unique_stems,
)
from xane3.prediction_files import PredictError, write_outputs, write_xanesnet
from xane3.sites import equivalent_groups
from xane3.train.accel import resolve_device


def _finite(values) -> list[float | None]:
    """Floats for JSON, None where unknown (no trained E0 head): NaN is not JSON."""
    return [float(v) if np.isfinite(v) else None for v in values]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m xane3.predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("structures", nargs="+", metavar="STRUCTURE",
                   help="structure files (anything ASE reads, or XANESNET xyz) or folders of them")
    add_model_source(p, "mean and spread over the members")
    p.add_argument("--top-k", type=positive_int, metavar="K", help="with --ensemble: the K members with the "
                                                          "lowest validation loss")
    p.add_argument("--absorber", type=parse_element, metavar="EL",
                   help="absorbing element, e.g. Fe (default: the checkpoint's)")
    sel = p.add_mutually_exclusive_group()
    sel.add_argument("--sites", type=parse_indices, metavar="I,J", help="one spectrum per listed site")
    sel.add_argument("--site-group", type=parse_indices, metavar="I,J",
                     help="one spectrum pooled over the listed sites")
    p.add_argument("--out", default="predictions", help="output directory (default: predictions)")
    p.add_argument("--format", choices=("csv", "xanesnet"), default="csv",
                   help="output layout: csv (+ png) or xanesnet (one STEM.txt per structure, "
                        "the XANESNET data set's layout on absolute energies); default csv")
    p.add_argument("--read-format", metavar="FMT",
                   help="input reader: an ASE format name, or xanesnet (Z x y z rows); default: "
                        "by file extension and content")
    p.add_argument("--max-atoms", type=positive_int, metavar="N",
                   help="refuse structures of more atoms, before parsing where the file says how "
                        f"many (default: {MAX_ATOMS:,}; training structures have a few hundred)")
    p.add_argument("--allow-unseen-elements", action="store_true",
                   help="predict even if a structure holds elements absent from the training data")
    p.add_argument("--allow-unphysical", action="store_true",
                   help="predict (with a warning) even for overlapping atoms, a degenerate cell or "
                        "an absorber with far fewer neighbours than any in training")
    p.add_argument("--broaden", metavar="GAMMA,SIGMA[,SHIFT]", type=broadening_arg,
                   help="Lorentzian and Gaussian FWHM and a shift (eV) applied to every spectrum, "
                        "e.g. the fit compare_experiment reports (xane3.broadening)")
    add_no_plots(p, "CSV only")
    add_device(p)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.top_k is not None and not args.ensemble:
        parser.error("--top-k picks members of --ensemble DIR; it needs --ensemble")
    from xane3.data.readers.structures import StructureError
    from xane3.ensemble import ensemble_dir, load_ensemble

    try:
        ens = load_ensemble(args.checkpoint, args.ensemble, args.top_k, resolve_device(args.device))
    except (OSError, ValueError) as exc:
        return fail(exc)
    z_abs = args.absorber or ens.absorber_z
    if z_abs != ens.absorber_z:
        return fail(f"the checkpoint predicts the {chemical_symbols[ens.absorber_z]} K-edge, "
                    f"not {chemical_symbols[z_abs]}")
    seen = ens.elements
    if seen is None:
        print("warning: the checkpoint does not record its training elements; not checking them",
              file=sys.stderr)
    try:
        paths = expand_inputs(args.structures)
    except PredictError as exc:  # a missing file or an empty folder: refused before any work
        return fail(exc)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return fail(f"{out}: cannot create the output folder ({exc.strerror or exc})")
    try:
        scale = read_scale(ensemble_dir(args.ensemble), ens.paths) if args.ensemble else None
    except ValueError as exc:
        return fail(exc)
    failures: list[str] = []
    summary = []
    multi = len(ens.models) > 1
    absolute = ens.energy_axis == "absolute"
    xanesnet = args.format == "xanesnet"
    written: set[str] = set()  # XANESNET file names so far: no input's file replaces another's
    for path, stem in tqdm(list(zip(paths, unique_stems(paths))), desc="structures", unit="structure",
                           disable=len(paths) < 2):
        try:
            atoms = read_input(path, args.read_format, args.max_atoms)
            sites = args.sites
            if xanesnet and sites is None and args.site_group is None:
                at0 = origin_site(atoms, z_abs)
                sites = None if at0 is None else [at0]
            labels, groups = site_groups(atoms, str(path), z_abs, sites, args.site_group)
            # out of domain: allowed, and then marked wherever the prediction is written
            ood = [why for why in (check_elements(atoms, seen, str(path), args.allow_unseen_elements),
                                   check_physical(atoms, groups, ens, str(path), args.allow_unphysical))
                   if why]
            pred = ens.predict(atoms, groups)
            if args.broaden is not None:
                pred = broaden_prediction(ens.energy, pred, args.broaden, absolute)
            if scale:  # the val-fitted calibration of this ensemble's spread (xane3.calibration)
                pred = {**pred, "std": scale * pred["std"], "std_scale": scale}
            if xanesnet:
                files = write_xanesnet(out, stem, str(path), ens.energy, labels, pred, absolute, written)
        except (StructureError, PredictError, ValueError, OSError) as exc:
            failures.append(error_text(exc))
            tqdm.write(f"error: {failures[-1]}", file=sys.stderr)
            continue
        if ood:
            where = "predictions.json" if xanesnet else "its CSV, plot and predictions.json"
            tqdm.write(f"warning: {path}: OUT OF DOMAIN ({'; '.join(ood)}): predicting anyway, an "
                       f"extrapolation not to be trusted (marked in {where})", file=sys.stderr)
        try:
            files = files if xanesnet else write_outputs(out, stem, path, atoms, ens, labels, pred,
                                                         multi, absolute, not args.no_plots, ood)
        except OSError as exc:  # a full disk or a read-only folder: one line, and go on
            failures.append(f"{out}: could not write the results of {path} ({error_text(exc)})")
            tqdm.write(f"error: {failures[-1]}", file=sys.stderr)
            continue
        summary.append({"structure": str(path), "files": files, **({} if xanesnet else {"csv": files[0]}),
                        "formula": atoms.get_chemical_formula(), "out_of_domain": ood,
                        "sites": labels, "groups": groups,
                        "equivalent_sites": [[labels[i] for i in g] for g in equivalent_groups(pred["mean"])],
                        "e0_eV": _finite(pred["e0"]), "e0_std_eV": _finite(pred["e0_std"]) if multi else None})
    try:
        write_text_atomic(out / "predictions.json", json.dumps(
            {"checkpoints": [str(p) for p in ens.paths], "absorber_z": z_abs, "format": args.format,
             "energy_axis": ens.energy_axis, "structures": summary,
             "broadening_eV": None if args.broaden is None else asdict(args.broaden),
             "std_scale": scale,
             "errors": failures}, indent=2, allow_nan=False))  # NaN is not JSON: null, above
    except OSError as exc:  # WriteError names the file
        return fail(exc, FAILED)
    n_ood = sum(bool(s["out_of_domain"]) for s in summary)
    print(f"{len(summary)} structure(s) predicted -> {out}" +
          (f"; {n_ood} OUT OF DOMAIN (see above)" if n_ood else "") +
          (f"; {len(failures)} failed (see above)" if failures else ""))
    return 1 if failures else 0
