"""``python -m xane3.evaluate --checkpoint CKPT [--db DB] --out DIR``

Score a trained model the way a spectroscopist would. Without --db it evaluates
the checkpoint's own test split (the training data are reloaded and their hash
must match the checkpoint's, else the split would point at other spectra); with
--db it scores every spectrum of that database (or, if it is the training data
itself, the test split). Beside the model: the mean-training-spectrum baseline
(E0 baseline: the mean training E0), which any useful model must beat.

Writes to DIR: per_spectrum.parquet (one row per spectrum and predictor, every
metric of xane3.metrics plus the phase/facet/site_kind labels), summary.parquet
(overall and per label), summary.txt (the printed table), spectra.npz
(energy, reference, prediction, mask, E0s) and figures/*.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from ase.data import chemical_symbols

from xane3.atomic import WriteError, atomic_path, write_parquet_atomic, write_text_atomic
from xane3.baseline import dataset_e0s, dataset_mean_spectrum
from xane3.cli_common import FAILED, add_device, add_no_plots, fail, positive_int
from xane3.data.dataset import XASDataset, load_training_data
from xane3.data.graphs import collate
from xane3.data.loader import SpectrumLoader
from xane3.metrics import metrics_table, summarize
from xane3.provenance import portable_path
from xane3.train.accel import resolve_device
from xane3.train.metadata import metadata_of

LABELS = ("phase", "facet", "site_kind")
TABLE_COLS = {"n_spectra": "n", "mse_spectrum": "MSE spec", "mse_gradient": "MSE grad",
              "mse_curvature": "MSE curv", "total": "total", "mae_edge_ev": "edge eV",
              "mae_wl_ev": "WL eV", "mae_wl_height": "WL height", "mae_pre_ev": "pre-edge eV",
              "pearson_mean": "Pearson", "spearman_mean": "Spearman", "mae_e0": "E0 eV"}


@dataclasses.dataclass
class EvalData:
    dataset: XASDataset
    indices: list[int]
    baseline: np.ndarray  # mean training spectrum on the grid
    baseline_e0: float
    note: str
    split: str


def load_eval_data(model: torch.nn.Module, db: str | None, split: str | None) -> EvalData:
    """The spectra to score, with the training-mean baseline."""
    md = metadata_of(model)
    cfg, splits, want_hash = md.config, md.splits, md.data_hash
    n_spectra = sum(len(v) for v in splits.values())
    train_ds = None
    if db is None:
        try:
            train_ds = load_training_data(cfg.data, want_hash, n_spectra)
        except (FileNotFoundError, ImportError, ModuleNotFoundError) as exc:
            raise FileNotFoundError(f"the checkpoint's training data ({cfg.data.db or 'embedded set'}) "
                                    f"cannot be loaded ({exc}); pass --db DB to evaluate on a database") from exc
        if train_ds.data_hash() != want_hash:
            raise ValueError(f"the checkpoint's training data {cfg.data.db or '(embedded set)'} changed since "
                             f"training (hash {train_ds.data_hash()} != checkpoint {want_hash}): its test "
                             "split would point at other spectra. Pass --db DB to score a whole database.")
        ds = train_ds
    else:
        ds = XASDataset.from_db(db, dataclasses.replace(cfg.data, db=db, subset=None))
        if ds.data_hash() != want_hash and cfg.data.subset:  # the training DB, cut as in training?
            cut = XASDataset.from_db(db, dataclasses.replace(cfg.data, db=db))
            ds = cut if cut.data_hash() == want_hash else ds  # then its splits apply, not "all"
        if ds.data_hash() == want_hash:
            train_ds = ds
        else:
            try:
                train_ds = load_training_data(cfg.data, want_hash, n_spectra)
                if train_ds.data_hash() != want_hash:
                    train_ds = None
            except (FileNotFoundError, ImportError, ModuleNotFoundError, ValueError):
                train_ds = None
    own = train_ds is ds
    split = split or ("test" if own else "all")
    if split == "all":
        indices = list(range(len(ds)))
    elif not own:
        raise ValueError(f"--split {split} needs the checkpoint's own training data; {db} is other data")
    else:
        indices = list(splits.get(split) or [])
        if not indices:
            raise ValueError(f"the checkpoint's {split} split is empty")
    if train_ds is not None and splits.get("train"):
        base, note = dataset_mean_spectrum(train_ds, splits["train"]), "mean training spectrum"
        e0s = dataset_e0s(train_ds, splits["train"])
        e0_mean = float(e0s.mean()) if e0s.size else np.nan
    else:  # the trainer stored the training E0 statistics in the model (left 0/1 when none)
        base, note = dataset_mean_spectrum(ds, indices), "mean of the evaluated spectra (training data unavailable)"
        known = float(model.e0_std) != 1.0 or float(model.e0_mean) != 0.0
        e0_mean = float(model.e0_mean) if known else np.nan
    return EvalData(ds, indices, base, e0_mean, note, split)


@torch.no_grad()
def predict_samples(model: torch.nn.Module, ds: XASDataset, idx: list[int], batch_size: int = 32,
                    device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Spectra [S, n_E] and E0 (eV, NaN without a trained E0 head) in ``idx`` order."""
    if abs(float(ds.r_max) - float(model.config.r_max)) > 1e-9:
        # mean aggregation counts every neighbour: graphs of another cutoff change the spectrum
        raise ValueError(f"{ds.name or 'dataset'}: graphs built with r_max={ds.r_max} Å, the model "
                         f"was trained with r_max={model.config.r_max} Å")
    model.eval().to(device)
    loader = SpectrumLoader(ds, idx, batch_size, geometry=None)
    pos = {int(i): k for k, i in enumerate(idx)}
    spectra = np.zeros((len(idx), len(ds.energy)))
    e0 = np.full(len(idx), np.nan)
    for batch, _, chunk in loader:
        out = model(batch.to(device))
        rows = [pos[int(i)] for i in chunk]
        spectra[rows] = out["spectrum"].float().cpu().numpy()
        if "e0" in out and metadata_of(model).e0_trained:
            e0[rows] = model.e0_to_ev(out["e0"]).float().cpu().numpy()
    return spectra, e0


@torch.no_grad()
def attention_of(model: torch.nn.Module, ds: XASDataset, i: int) -> dict[int, float]:
    """Attention weight per context atom of sample ``i`` (empty for mean pooling)."""
    s = ds.samples[i]
    batch = collate([ds.graphs[s.graph]], [(0, s.absorbers)])
    w = model(batch.to(next(model.parameters()).device)).get("attention")
    if w is None:
        return {}
    return {int(a): float(x) for a, x in zip(batch.ctx_atom.tolist(), w.tolist())}


def breakdown(df: pd.DataFrame, lg: float, lc: float) -> pd.DataFrame:
    """Summary rows: overall and per label value, for every predictor."""
    rows = []
    for pred, d in df.groupby("predictor", sort=False):
        rows.append({"predictor": pred, "group_by": "all", "group": "all", **summarize(d, lg, lc)})
        for label in LABELS:
            if label in d and d[label].notna().any():
                for value, g in d.groupby(d[label].astype(str), sort=True):
                    rows.append({"predictor": pred, "group_by": label, "group": value,
                                 **summarize(g, lg, lc)})
        if "unseen_elements" in d and (d["unseen_elements"] != "").any():  # apart: predict refuses them
            for value, g in d.groupby(np.where(d["unseen_elements"] == "", "seen", "unseen"), sort=True):
                rows.append({"predictor": pred, "group_by": "elements", "group": f"{value} in training",
                             **summarize(g, lg, lc)})
    return pd.DataFrame(rows)


def unseen_elements(ds: XASDataset, idx: list[int], seen: frozenset[int] | None) -> list[str]:
    """Per spectrum, the elements the checkpoint never saw in training ("" if none); said on
    stderr, since ``predict`` refuses such structures and their scores mean little."""
    zs = [set(map(int, ds.atoms[ds.samples[i].graph].numbers)) - seen if seen else set() for i in idx]
    if any(zs):
        names = ", ".join(chemical_symbols[z] for z in sorted(set().union(*zs)))
        print(f"warning: {sum(map(bool, zs))} of {len(idx)} spectra contain elements the checkpoint never "
              f"saw in training ({names}); predict refuses such structures: they are scored apart too "
              "(summary group_by 'elements')", file=sys.stderr)
    return [", ".join(chemical_symbols[z] for z in sorted(u)) for u in zs]


def format_table(summary: pd.DataFrame) -> str:
    cols = [c for c in TABLE_COLS if c in summary]
    order = {k: i for i, k in enumerate(("all", "elements", *LABELS))}
    preds = {k: i for i, k in enumerate(dict.fromkeys(summary["predictor"]))}
    # model and baseline of one group on adjacent rows, so they read side by side
    summary = summary.sort_values(["group_by", "group", "predictor"], key=lambda c: c.map(
        order if c.name == "group_by" else preds if c.name == "predictor" else str), kind="stable")
    t = summary[["group_by", "group", "predictor", *cols]].rename(columns=TABLE_COLS)
    t["n"] = t["n"].astype(int)
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format",
                           lambda v: f"{v:.4g}"):
        return t.to_string(index=False)


def _sample_name(meta: dict) -> str:
    """A readable name: the file stem, else phase/facet/site kind, else the structure hash."""
    labels = " ".join(str(meta[k]) for k in LABELS if meta.get(k) is not None)
    return str(meta.get("name") or labels or meta.get("structure_id", ""))


def _figures(out: Path, model, data: EvalData, df: pd.DataFrame, base_df: pd.DataFrame,
             pred: np.ndarray, e0_pred: np.ndarray, checkpoint: Path) -> list[Path]:
    from xane3 import plots

    ds, idx = data.dataset, data.indices
    ref = np.stack([np.nan_to_num(ds.samples[i].spectrum) for i in idx])
    mask = np.stack([ds.samples[i].mask for i in idx])
    e0_ref = np.array([ds.samples[i].e0 for i in idx])
    order = np.argsort(df["mse_spectrum"].to_numpy())
    picks = [order[0], order[len(order) // 2], order[-1]] if len(order) >= 3 else list(order)
    names = ["best", "median", "worst"][: len(picks)]
    titles = [f"{n}: {_sample_name(ds.samples[idx[k]].meta)}"[:48] for n, k in zip(names, picks)]
    notes = [f"MSE {df['mse_spectrum'].iloc[k]:.2e}, edge {df['err_edge_ev'].iloc[k]:+.2f} eV" for k in picks]
    figs = out / "figures"
    made = [plots.plot_examples(figs / "examples.png", ds.energy, ref[picks], pred[picks], mask[picks],
                                titles, e0_ref[picks], e0_pred[picks], data.baseline, notes),
            plots.plot_derivatives(figs / "derivatives.png", ds.energy, ref[picks], pred[picks],
                                   mask[picks], titles),
            plots.plot_error_distribution(figs / "errors.png", df, base_df)]
    metrics = checkpoint.parent / "metrics.parquet"
    if metrics.exists():
        made.append(plots.plot_learning_curves(figs / "learning_curves.png", pd.read_parquet(metrics)))
    k = idx[picks[len(picks) // 2]]
    weights = attention_of(model, ds, k)
    if weights:
        s = ds.samples[k]
        made.append(plots.plot_attention(figs / "attention.png", ds.atoms[s.graph], s.absorbers, weights,
                                         title=titles[len(picks) // 2]))
    return made


def evaluate_checkpoint(checkpoint: str | Path | None, out: str | Path, db: str | None = None,
                        split: str | None = None, batch_size: int = 32, device: str = "cpu",
                        figures: bool = True) -> dict[str, Any]:
    """Score one checkpoint; returns the summary frame, per-spectrum frame and figure paths."""
    from xane3.ensemble import resolve_checkpoint
    from xane3.train.checkpoint import load_checkpoint

    path = resolve_checkpoint(checkpoint)
    model = load_checkpoint(path, device)
    data = load_eval_data(model, db, split)
    ds, idx = data.dataset, data.indices
    md = metadata_of(model)
    z_ckpt = md.absorber_z
    if ds.absorber_z() != z_ckpt:
        raise ValueError(f"{db}: spectra are for Z={ds.absorber_z()}, the checkpoint predicts Z={z_ckpt}")
    pred, e0_pred = predict_samples(model, ds, idx, batch_size, device)
    ref = np.stack([ds.samples[i].spectrum for i in idx])
    mask = np.stack([ds.samples[i].mask for i in idx])
    e0_ref = np.array([ds.samples[i].e0 for i in idx])
    base = np.broadcast_to(data.baseline, pred.shape)
    labels = pd.DataFrame([{"sample": i, "structure_id": ds.samples[i].meta.get("structure_id"),
                            "source": str(ds.samples[i].meta.get("source", "")),
                            **{lab: ds.samples[i].meta.get(lab) for lab in LABELS}} for i in idx])
    labels["unseen_elements"] = unseen_elements(ds, idx, md.elements)
    df = pd.concat([labels, metrics_table(ds.energy, pred, ref, mask, e0_pred, e0_ref)], axis=1)
    base_df = pd.concat([labels, metrics_table(ds.energy, base, ref, mask,
                                               np.full(len(idx), data.baseline_e0), e0_ref)], axis=1)
    long = pd.concat([df.assign(predictor="XANE(3)"), base_df.assign(predictor="baseline")], ignore_index=True)
    for lab in LABELS:  # all-None label columns would be typed null in Parquet
        long[lab] = long[lab].astype("string")
    t = md.config.train
    summary = breakdown(long, t.lambda_grad, t.lambda_curv)
    summary.insert(0, "checkpoint", portable_path(path))  # as compare_experiment and lcf record it
    summary["data"] = db or (md.config.data.db or "embedded")
    summary["baseline"] = data.note
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(long, out / "per_spectrum.parquet")
    write_parquet_atomic(summary, out / "summary.parquet")
    table = format_table(summary)
    write_text_atomic(out / "summary.txt", table + "\n")
    with atomic_path(out / "spectra.npz") as tmp, open(tmp, "wb") as fh:  # a handle: no ".npz" added
        np.savez_compressed(fh, energy=ds.energy, reference=ref, prediction=pred, mask=mask,
                            e0_reference=e0_ref, e0_prediction=e0_pred, sample=np.asarray(idx))
    made = _figures(out, model, data, df, base_df, pred, e0_pred, path) if figures else []
    return {"summary": summary, "per_spectrum": long, "table": table, "figures": made,
            "split": data.split, "n": len(idx)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xane3.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="a .pt from `python -m xane3.train` (default: the packaged "
                                        "pretrained model, when installed)")
    p.add_argument("--db", help="score this ASE DB (from `python -m xane3.data ingest`) instead")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--split", choices=("test", "val", "train", "all"),
                   help="which spectra (default: test on the training data, all on another DB)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    add_device(p)
    add_no_plots(p)
    args = p.parse_args(argv)
    try:
        res = evaluate_checkpoint(args.checkpoint, args.out, args.db, args.split, args.batch_size,
                                  resolve_device(args.device), not args.no_plots)
    except WriteError as exc:  # scored, but the results could not be kept
        return fail(exc, FAILED)
    except (OSError, ValueError) as exc:  # checkpoint, data or output folder refused
        return fail(exc)
    print(f"{res['n']} spectra ({res['split']}); baseline: {res['summary']['baseline'].iloc[0]}")
    print(res["table"])
    print(f"wrote {args.out}/per_spectrum.parquet, summary.parquet, summary.txt, spectra.npz"
          + (f" and {len(res['figures'])} figures" if res["figures"] else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
