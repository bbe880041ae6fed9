"""``python -m benchmarks.amp``: the accuracy cost of ``train.amp`` (bf16 autocast).

Two costs, measured on whatever device runs it (bf16 autocast works on CPU too):

1. training: the same config, seed, data and batch order trained float32 and
   bf16; validation/test spectrum MSE of each run's best checkpoint;
2. inference: the float32-trained model evaluated with and without autocast on
   the validation + test spectra; max and mean |difference| of the predictions.

The data are the first ``--subset`` spectra of the embedded set (a fixed prefix:
shards are append-only), split as training would split them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
import warnings

import numpy as np
import torch

from benchmarks.common import machine_line
from xane3.cli_common import add_db


def _predictions(model, loader, device: torch.device, amp: bool) -> tuple[np.ndarray, np.ndarray]:
    from xane3.train.accel import autocast, to_device

    model.eval()
    preds, masks = [], []
    with torch.no_grad():
        for batch, tgt, _ in loader:
            batch, tgt = to_device(batch, tgt, device)
            with autocast(device, amp):
                preds.append(model(batch)["spectrum"].float().cpu().numpy())
            masks.append(tgt["mask"].cpu().numpy())
    return np.concatenate(preds), np.concatenate(masks)


def run(args) -> dict:
    from xane3.config import Config, with_overrides
    from xane3.data.dataset import load_dataset
    from xane3.data.loader import SpectrumLoader
    from xane3.data.splits import splits_of
    from xane3.overlays import preset
    from xane3.train import fit
    from xane3.train.accel import resolve_device
    from xane3.train.trainer import evaluate

    over = {**preset(args.preset), "data.subset": args.subset, "train.epochs": args.epochs,
            "train.patience": args.epochs, "train.device": args.device, "train.seed": args.seed}
    if args.db:
        over["data.db"] = args.db
    cfg = with_overrides(Config(), over)
    ds = load_dataset(cfg.data)
    device = resolve_device(cfg.train.device)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, amp in (("fp32", False), ("bf16", True)):
            c = with_overrides(cfg, {"train.amp": amp})
            t0 = time.perf_counter()
            res = fit(c, ds, f"{tmp}/{name}", progress=False)
            runs[name] = {"wall_s": time.perf_counter() - t0, "best_epoch": res.best_epoch,
                          "val_spectrum": [h["val_spectrum"] for h in res.history],
                          "best_val_total": res.best_val_total,
                          "test_spectrum": res.test["spectrum"], "test_total": res.test["total"],
                          "epoch_s": float(np.median([h["epoch_time_s"] for h in res.history])),
                          "model": res.model}
    splits = splits_of(ds, cfg.data)
    model = runs["fp32"]["model"]
    loader = SpectrumLoader(ds, splits["val"] + splits["test"], cfg.train.batch_size,
                            geometry=model.geometry.cpu())
    p32, mask = _predictions(model, loader, device, amp=False)
    p16, _ = _predictions(model, loader, device, amp=True)
    diff = np.abs(p16 - p32)[mask]
    metrics = {amp: evaluate(model, loader, dataclasses.replace(cfg, train=dataclasses.replace(
        cfg.train, amp=amp)), device) for amp in (False, True)}
    for r in runs.values():
        r.pop("model")
    return {"device": str(device), "preset": args.preset, "spectra": len(ds),
            "n_train": len(splits["train"]), "n_eval": len(splits["val"]) + len(splits["test"]),
            "epochs": args.epochs, "parameters": model.num_parameters(), "train": runs,
            "inference": {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
                          "mean_abs_spectrum": float(np.abs(p32[mask]).mean()),
                          "mse_fp32": metrics[False]["spectrum"], "mse_bf16": metrics[True]["spectrum"]}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.amp", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cpu")
    p.add_argument("--subset", type=int, default=160, help="first N spectra of the data set")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    add_db(p)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="also write every figure here")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    print(machine_line())
    r = run(args)
    print(f"device {r['device']}, preset {r['preset']} ({r['parameters']:,} parameters), "
          f"{r['n_train']} training / {r['n_eval']} val+test spectra, {r['epochs']} epochs")
    for name, t in r["train"].items():
        curve = " ".join(f"{v:.4f}" for v in t["val_spectrum"])
        print(f"train {name}: val spectrum MSE by epoch {curve}; best epoch {t['best_epoch']}, "
              f"test spectrum MSE {t['test_spectrum']:.5f}, median epoch {t['epoch_s']:.1f} s")
    a, b = r["train"]["fp32"], r["train"]["bf16"]
    print(f"training cost: best val total bf16/fp32 {b['best_val_total'] / a['best_val_total']:.3f}x, "
          f"test spectrum MSE bf16/fp32 {b['test_spectrum'] / a['test_spectrum']:.3f}x")
    i = r["inference"]
    print(f"inference (fp32-trained model, autocast off vs on): max |diff| {i['max_abs_diff']:.2e}, "
          f"mean |diff| {i['mean_abs_diff']:.2e} (mean |spectrum| {i['mean_abs_spectrum']:.3f}); "
          f"spectrum MSE {i['mse_fp32']:.5f} fp32 vs {i['mse_bf16']:.5f} bf16")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(r, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
