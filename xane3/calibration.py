"""``python -m xane3.calibration --ensemble DIR --out OUT``: how honest an ensemble's spread is.

A deep ensemble's spread (``predict --ensemble``) is not yet an error bar: members trained
alike agree more often than they are right. This measures it on the members' own data and
makes it one: the **coverage** of a band mean ± k·s·std is the fraction of covered grid
points whose reference lies inside it (a Gaussian ±2σ band covers 95.4 %). The scale ``s``
is fitted on the **val** split (the 95.4 % quantile of |reference − mean| / std, over 2);
the **test** split is only scored, at s = 1 (raw spread) and at the fitted s. The members
must share one training run's data and split (same data hash and split), as seeds of one
recipe do.

Writes OUT/calibration.json (scale, coverages, members) and OUT/calibration.png (observed
against nominal coverage); with ``--write-scale`` also DIR/calibration.json, which
``predict --ensemble DIR`` then applies to its ``_std`` columns.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np
from scipy.special import erf

from xane3.atomic import WriteError, write_text_atomic
from xane3.cli_common import FAILED, fail
from xane3.provenance import portable_path

NOMINAL_K = 2.0  # the band a user draws: mean ± 2 std
GAUSS_2SIGMA = float(erf(NOMINAL_K / np.sqrt(2.0)))  # 0.9545
SCALE_FILE = "calibration.json"


def coverage(ref: np.ndarray, mean: np.ndarray, std: np.ndarray, mask: np.ndarray, k: float) -> float:
    """Fraction of covered points with |ref - mean| <= k * std."""
    inside = np.abs(ref - mean) <= k * std
    return float(inside[mask].mean())


def fit_scale(ref: np.ndarray, mean: np.ndarray, std: np.ndarray, mask: np.ndarray,
              target: float = GAUSS_2SIGMA, k: float = NOMINAL_K) -> float:
    """The s for which mean ± k·s·std covers ``target`` of the points."""
    z = np.abs(ref - mean)[mask] / np.maximum(std[mask], 1e-12)
    return float(np.quantile(z, target) / k)


def member_files(directory: str | Path, paths) -> list[str]:
    """Members named relative to their ensemble folder, so the check survives a ``cd``."""
    return sorted(Path(os.path.relpath(Path(p).resolve(), Path(directory).resolve())).as_posix()
                  for p in paths)


def member_hashes(directory: str | Path, paths) -> dict[str, str]:
    """SHA-256 of each member file by its :func:`member_files` name: a member retrained or
    re-packaged in place keeps its name but not its spread."""
    return {member_files(directory, [p])[0]: hashlib.sha256(Path(p).read_bytes()).hexdigest()
            for p in paths}


def read_scale(directory: str | Path, members=None) -> float | None:
    """The val-fitted scale ``--write-scale`` left in an ensemble folder (None: none there).

    A scale fits the members it was measured on; ``members`` (the checkpoints about to be
    used) that differ from those (``--top-k``, a member added or removed) are refused.
    """
    path = Path(directory) / SCALE_FILE
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
        scale = float(d["scale"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a calibration file ({exc})") from exc
    if not (np.isfinite(scale) and scale > 0):  # 0 or NaN would silently drop or blank the band
        raise ValueError(f"{path}: scale {scale} is not a positive number")
    fitted = d.get("member_files")  # absent in files written before the check
    now = member_files(directory, members) if members is not None else None
    redo = f"rerun `python -m xane3.calibration --ensemble {directory} --write-scale` for these members"
    if now is not None and fitted is not None and now != fitted:
        raise ValueError(f"{path}: the scale was fitted for members {fitted}, not {now}; {redo}")
    hashes = d.get("member_sha256")  # absent in files written before 2026-12-02
    if members is not None and hashes is not None:
        changed = [n for n, h in member_hashes(directory, members).items() if hashes.get(n) != h]
        if changed:
            raise ValueError(f"{path}: members {changed} changed since the scale was fitted; {redo}")
    return scale


def member_spectra(ens, idx: list[int], ds, device: str = "cpu") -> np.ndarray:
    """[members, len(idx), n_E] predictions of every member for dataset samples ``idx``."""
    from xane3.evaluate import predict_samples

    return np.stack([predict_samples(m, ds, idx, device=device)[0] for m in ens.models])


def calibrate(ensemble_dir: str | Path, out: str | Path, write_scale: bool = False,
              plots: bool = True, device: str = "cpu") -> dict:
    from xane3.data.dataset import load_training_data
    from xane3.ensemble import ensemble_dir as resolve_dir
    from xane3.ensemble import load_ensemble

    ensemble_dir = resolve_dir(ensemble_dir)
    ens = load_ensemble(directory=ensemble_dir, device=device)
    if len(ens.models) < 2:
        raise ValueError(f"{ensemble_dir}: {len(ens.models)} member; a spread needs at least 2")
    metas = [ens.meta(i) for i in range(len(ens.models))]
    if len({m.data_hash for m in metas}) > 1 or len({json.dumps(m.splits, sort_keys=True)
                                                         for m in metas}) > 1:
        raise ValueError(f"{ensemble_dir}: the members were trained on different data or splits; "
                         "calibration needs one recipe's seeds on one split")
    ds = load_training_data(metas[0].config.data, metas[0].data_hash,
                            sum(len(v) for v in metas[0].splits.values()))
    if ds.data_hash() != metas[0].data_hash:
        raise ValueError(f"{ensemble_dir}: the members' training data changed since training")
    res: dict = {"members": [portable_path(p) for p in ens.paths], "nominal_k": NOMINAL_K}
    curves = {}
    scale = None
    for split in ("val", "test"):
        idx = list(metas[0].splits.get(split) or [])
        if not idx:
            raise ValueError(f"{ensemble_dir}: the members' {split} split is empty")
        preds = member_spectra(ens, idx, ds, device)
        mean, std = preds.mean(0), preds.std(0)
        ref = np.stack([np.nan_to_num(ds.samples[i].spectrum) for i in idx])
        mask = np.stack([ds.samples[i].mask for i in idx]).astype(bool)
        if split == "val":
            scale = fit_scale(ref, mean, std, mask)
        ks = np.linspace(0.25, 4.0, 16)
        curves[split] = {"raw": [coverage(ref, mean, std, mask, k) for k in ks],
                         "scaled": [coverage(ref, mean, scale * std, mask, k) for k in ks], "k": ks.tolist()}
        res[split] = {"spectra": len(idx), "coverage_2std_raw": coverage(ref, mean, std, mask, NOMINAL_K),
                      "coverage_2std_scaled": coverage(ref, mean, scale * std, mask, NOMINAL_K),
                      "median_std": float(np.median(std[mask])),
                      "rmse_of_mean": float(np.sqrt(np.mean((ref - mean)[mask] ** 2)))}
    res.update(scale=scale, target=GAUSS_2SIGMA, scale_fitted_on="val")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "calibration.json", json.dumps(res, indent=2))
    if write_scale:
        write_text_atomic(Path(ensemble_dir) / SCALE_FILE, json.dumps(
            {"scale": scale, "fitted_on": "val", "nominal_k": NOMINAL_K, "members": res["members"],
             "member_files": member_files(ensemble_dir, ens.paths),
             "member_sha256": member_hashes(ensemble_dir, ens.paths)}, indent=2))
    if plots:
        _plot(out / "calibration.png", curves, scale)
    return res


def _plot(path: Path, curves: dict, scale: float) -> None:
    from xane3.plots import STYLE, plt, save_figure

    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.4, 3.0))
        k = np.asarray(curves["test"]["k"])
        ax.plot(erf(k / np.sqrt(2)), erf(k / np.sqrt(2)), color="0.6", ls=":", label="calibrated")
        ax.plot(erf(k / np.sqrt(2)), curves["test"]["raw"], color="#d62728", label="test, raw spread")
        ax.plot(erf(k / np.sqrt(2)), curves["test"]["scaled"], color="#1f77b4",
                label=f"test, spread x {scale:.2f} (fitted on val)")
        ax.set_xlabel("nominal coverage (Gaussian, ± k std)")
        ax.set_ylabel("observed coverage")
        ax.legend(loc="upper left")
        save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    from xane3.cli_common import add_device, add_no_plots
    from xane3.train.accel import resolve_device

    p = argparse.ArgumentParser(prog="python -m xane3.calibration", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ensemble", required=True, metavar="DIR", help="every *.pt in DIR (best.pt in subfolders); "
                   "`pretrained`: the packaged ensemble")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--write-scale", action="store_true",
                   help="also write DIR/calibration.json, which predict --ensemble DIR applies")
    add_no_plots(p)
    add_device(p)
    args = p.parse_args(argv)
    try:
        res = calibrate(args.ensemble, args.out, args.write_scale, not args.no_plots,
                        str(resolve_device(args.device)))
    except WriteError as exc:  # the job ran; its result could not be written
        return fail(exc, FAILED)
    except (OSError, ValueError) as exc:
        return fail(exc)
    for split in ("val", "test"):
        r = res[split]
        print(f"{split:4s} {r['spectra']:4d} spectra: ±2 std covers {100 * r['coverage_2std_raw']:.1f} % raw, "
              f"{100 * r['coverage_2std_scaled']:.1f} % scaled (target {100 * GAUSS_2SIGMA:.1f} %)")
    print(f"scale {res['scale']:.3g} (fitted on val) -> {args.out}/calibration.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
