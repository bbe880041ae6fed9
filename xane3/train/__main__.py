"""``python -m xane3.train``: train XANE(3) on a database or the embedded FEFF10 set.

Writes to --out: config.json, metrics.parquet (one row per epoch), last.pt (for
--resume), best.pt (lowest fixed-weight validation total) and test.json.
"""

from __future__ import annotations

import argparse
import json

from xane3.atomic import WriteError, write_text_atomic
from xane3.cli_common import (
    FAILED,
    add_db,
    add_device,
    add_quiet,
    add_set,
    add_threads,
    error_text,
    fail,
    parse_set,
    positive_int,
    shortcut_overrides,
)
from xane3.config import Config, with_overrides
from xane3.overlays import compose, listing


def build_config(args: argparse.Namespace) -> Config:
    cfg = Config.load(args.config) if args.config else Config()
    overrides = compose(args.preset, args.experiment)
    sets = parse_set(args.set)
    given = {"data.db": ("--db", args.db), "train.epochs": ("--epochs", args.epochs),
             "train.device": ("--device", getattr(args, "device", None)),  # callers may build args
             "train.num_threads": ("--threads", getattr(args, "threads", None))}  # without these
    overrides.update(shortcut_overrides({k: v for k, v in given.items() if v[1] is not None}, sets))
    if overrides.get("train.num_threads") == 0:  # --threads 0: torch's default
        overrides["train.num_threads"] = None
    overrides.update(sets)
    return with_overrides(cfg, overrides)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xane3.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="JSON config (e.g. a search's best_config.json)")
    add_db(p)
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--preset", help="xane3/conf/preset: " + listing("preset"))
    p.add_argument("--experiment", help="applied after the preset: xane3/conf/experiment ("
                   + listing("experiment").split(" (")[0] + ") or a .yaml overlay file, e.g. "
                   "ablations/specs/no_layer_norm.yaml")
    p.add_argument("--epochs", type=positive_int, help="shorthand for --set train.epochs=N")
    add_set(p)
    add_device(p, default=None)
    add_threads(p, default=None)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt; a larger --epochs trains the run longer")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in OUT")
    add_quiet(p)
    args = p.parse_args(argv)
    try:
        cfg = build_config(args)
        from xane3.train.accel import resolve_device

        resolve_device(cfg.train.device)  # CUDA asked for where there is none: before any work
    except (KeyError, ValueError, OSError) as exc:  # OSError: a --config/--experiment file missing
        p.error(error_text(exc))
    from xane3.train.callbacks import SlowEpochHint
    from xane3.train.trainer import TrainingDiverged, fit

    try:
        result = fit(cfg, out_dir=args.out, resume=args.resume, progress=not args.quiet,
                     overwrite=args.overwrite, callbacks=[SlowEpochHint()])
    except (TrainingDiverged, WriteError) as exc:  # the job ran and failed (diverged, disk full)
        return fail(exc, FAILED)
    except (OSError, ValueError) as exc:  # data, folder, resume: refused before any training
        return fail(exc)
    summary = {"best_epoch": result.best_epoch, "best_val_total": result.best_val_total,
               "device": result.device, "test": result.test,
               "mean_training_spectrum_test": result.baseline,
               "parameters": result.model.num_parameters()}
    try:
        write_text_atomic(result.out_dir / "test.json", json.dumps(summary, indent=2))
    except WriteError as exc:
        return fail(exc, FAILED)
    print(report(summary, result.out_dir))
    return 0


def report(summary: dict, out_dir) -> str:
    """The test figures beside the mean training spectrum's, as ``evaluate`` prints them."""
    test, base = summary["test"], summary["mean_training_spectrum_test"]
    lines = [f"best epoch {summary['best_epoch'] + 1}, {summary['parameters']:,} parameters, "
             f"{summary['device']}", f"{'test split':<22} {'model':>10} {'mean spectrum':>14}"]
    for key in ("spectrum", "gradient", "curvature", "total"):
        lines.append(f"{key + ' MSE' if key != 'total' else 'total':<22} {test[key]:>10.3e} "
                     f"{base.get(key, float('nan')):>14.3e}")
    lines.append(f"{'E0 MAE (eV)':<22} {test['e0_mae_ev']:>10.3f}")
    return "\n".join(lines) + f"\nwritten: {out_dir}/test.json, best.pt, metrics.parquet"


if __name__ == "__main__":
    raise SystemExit(main())
