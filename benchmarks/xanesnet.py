"""``python -m benchmarks.xanesnet --train DIR --out OUT``: XANE(3) on XANESNET's own Fe data.

Trains on the XANESNET Fe K-edge set (``xyz/`` + ``xanes/``) in XANESNET's own
format: raw FDMNES intensities on the files' absolute grid (7097-7172 eV, 226
points), molecular graphs with the Fe absorber at the origin. Only that folder is
used, split once into train / val / holdout (80/10/10, seeded): every choice
(early stopping, model selection, the search) sees the val split only, and
selects on the validation spectrum MSE (``train.select_on=spectrum``), the
metric the table scores; the holdout split is scored at the end and was used
for nothing.

Steps: (1) ingest the molecules into ``OUT/xanesnet.db`` (raw spectra kept);
(2) a small Ray Tune + Optuna search through ``search.run`` whose first trial is
the preset's default config (enqueued), all trials on the same split and budget;
(3) score the default config's model, the search's best and the mean training
spectrum on val and holdout. OUT gets ``default.pt``, ``searched.pt``,
``metrics.md`` / ``metrics.csv`` (the table), ``per_spectrum.csv``,
``summary.json`` (configs, wall times, trials) and ``search/`` (Tune state,
Parquet trial tables).

Presets (``benchmarks/xanesnet_presets/*.yaml``, listed by ``--help``): ``cpu`` (the
default, ~25 min on 2 cores), ``paper`` (for GPUs), ``full`` (all molecules on a 2-core
CPU, hours, resumable) and ``tiny`` (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.xanesnet_steps import (  # noqa: F401 - the benchmark's API, used by tests
    build_db,
    default_point,
    pick_trials,
    retrain,
    select_pairs,
    trial_checkpoint,
)
from xane3.atomic import write_csv_atomic, write_text_atomic
from xane3.cli_common import add_quiet, add_ray, count_int, positive_int
from xane3.overlays import experiment, listing, overlays
from xane3.provenance import portable_path

PRESET_DIR = Path(__file__).parent / "xanesnet_presets"


@dataclass(frozen=True)
class BenchPreset:
    """A benchmark preset's own fields (``xanesnet_presets/<name>.yaml``) beside its overrides:
    how much of the set, how big a search."""

    n_molecules: int | None = None  # None: every molecule of the folder
    space: str = "width_lr_small"
    trials: int = 4  # the default config is the first of them
    cpus_per_trial: float = 1.0
    scheduler: str = "none"  # none: every trial runs its epochs | asha: poor ones stop early
    # then train the best trial's config this many whole epochs on the same train split
    # (OUT/final, resumable), scored as "searched config, retrained"; None: no retraining
    final_epochs: int | None = None


def presets() -> dict[str, Any]:
    """name -> Overlay (``overrides``: its base preset's, then its own; ``extras``: BenchPreset)."""
    return overlays(PRESET_DIR, BenchPreset)


def base_overrides(preset_name: str) -> dict[str, Any]:
    """The preset's overrides, then the XANESNET experiment's (axis, split, selection)."""
    return {**presets()[preset_name].overrides, **experiment("xanesnet")}


def run_benchmark(train: Path, out: Path, preset_name: str = "cpu", *, n_molecules: int | None = -1,
                  epochs: int | None = None, trials: int | None = None, seed: int = 0,
                  gpus: float = 0, gpus_per_trial: float | None = None, cpus: int | None = None,
                  extra: dict[str, Any] | None = None, verbose: int = 1, name: str | None = None,
                  resume: bool = False, address: str | None = None) -> dict[str, Any]:
    """Run every step; returns (and writes to OUT/summary.json) what was measured."""
    from benchmarks.xanesnet_eval import evaluate_checkpoints, markdown_table
    from search.run import run_search
    from search.trainable import OBJECTIVE
    from xane3.config import Config, with_overrides
    from xane3.train.checkpoint import read_checkpoint

    overlay = presets()[preset_name]
    bench = overlay.extras
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    n = bench.n_molecules if n_molecules == -1 else n_molecules
    pairs = select_pairs(train, n, seed)
    db, listed = (out / "xanesnet.db").resolve(), "".join(f"{x.stem}\n" for x, _ in pairs)
    if resume and (out / "molecules.txt").exists() and (out / "molecules.txt").read_text() != listed:
        raise ValueError(f"--resume: {out / 'molecules.txt'} lists other molecules than this command "
                         "line's --seed/--n-molecules/--preset select; repeat the options it started with")
    if resume and db.exists():  # the same pairs (seeded): the search's trials point at this DB
        data = {"molecules": len(pairs), "ingested": len(pairs), "skipped": [], "reused": True}
    else:
        data = build_db(pairs, db)
    write_text_atomic(out / "molecules.txt", listed)
    t_data = time.perf_counter() - t0
    print(f"data: {data['ingested']} of {data['molecules']} molecules -> {db} ({t_data:.0f} s)")
    base = {**base_overrides(preset_name), "data.split_seed": seed,
            **(extra or {})}
    if epochs is not None:
        base["train.epochs"] = epochs
    with_overrides(Config(), base)  # a bad --set fails before Ray starts
    point = default_point(bench.space, base)
    if resume and not name:
        raise ValueError("--resume needs --name of the search to continue")
    name = name or f"xanesnet-{preset_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    results_dir = (out / "search" / "results").resolve()
    t1 = time.perf_counter()
    trials = trials or bench.trials
    exp_dir = run_search(bench.space, trials, gpus=gpus, gpus_per_trial=gpus_per_trial,
                         cpus_per_trial=bench.cpus_per_trial,
                         scheduler=bench.scheduler, data=str(db), name=name, resume=resume, address=address,
                         wandb="disabled", seed=seed,
                         preset="paper", extra=base, results_dir=results_dir,
                         experiments_dir=(out / "search").resolve(), enqueue=[point],
                         num_cpus=cpus, verbose=verbose,
                         given={"trials": trials, "seed": seed, "extra": base})
    t_search = time.perf_counter() - t1
    default, best, table = pick_trials(exp_dir, results_dir, name, point)
    ckpts = {"XANE(3) default config": out / "default.pt", "XANE(3) searched config": out / "searched.pt"}
    for row, dst in zip((default, best), ckpts.values()):
        shutil.copyfile(trial_checkpoint(exp_dir, row["trial_id"]), dst)
    t_final = 0.0
    if bench.final_epochs:
        t3 = time.perf_counter()
        ckpts["XANE(3) searched config, retrained"] = retrain(best, out / "final", bench.final_epochs,
                                                              verbose > 0)
        t_final = time.perf_counter() - t3
    t2 = time.perf_counter()
    summary_df, per_spectrum = evaluate_checkpoints(ckpts, db)
    t_eval = time.perf_counter() - t2
    table_md = markdown_table(summary_df)
    write_csv_atomic(summary_df, out / "metrics.csv")
    write_csv_atomic(per_spectrum, out / "per_spectrum.csv")
    write_text_atomic(out / "metrics.md", table_md + "\n")
    configs = {k: read_checkpoint(p)["config"] for k, p in ckpts.items()}
    default_flat = Config().flat()
    result = {
        "preset": preset_name, "bench": {**asdict(bench), "overrides": overlay.overrides}, "train_dir": portable_path(train), "data": data,
        "search": {"experiment": name, "dir": portable_path(exp_dir), "space": bench.space,
                   "trials": int(len(table)), "default_point": point,
                   "default_trial": default["trial_id"], "best_trial": best["trial_id"],
                   "objective": OBJECTIVE,
                   "trials_table": table[["trial_id", "status", OBJECTIVE, "epochs_run", "wall_time_s",
                                          "params_json"]].sort_values(OBJECTIVE).to_dict("records")},
        "configs": {k: {kk: v for kk, v in c.flat().items() if v != default_flat.get(kk)
                        and kk not in ("data.db", "train.device")} for k, c in configs.items()},
        "metrics": summary_df.to_dict("records"),
        "wall_time_s": {"data": t_data, "search": t_search, "retrain": t_final, "evaluate": t_eval,
                        "total": time.perf_counter() - t0},
        "machine": {"cpus": os.cpu_count(), "gpus": gpus},
    }
    write_text_atomic(out / "summary.json", json.dumps(result, indent=2, default=str))
    print(f"\nXANESNET Fe benchmark ({preset_name}): {data['ingested']} molecules, "
          f"{len(table)} trials; default = trial {default['trial_id']}, best = trial {best['trial_id']} "
          f"(searched: {best['params_json']})\n\n{table_md}\n\n"
          f"wall time {result['wall_time_s']['total']:.0f} s "
          f"(data {t_data:.0f}, search {t_search:.0f}, retrain {t_final:.0f}, evaluate {t_eval:.0f}) -> {out}")
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.xanesnet", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", required=True, type=Path, help="XANESNET folder with xyz/ and xanes/")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--preset", choices=sorted(presets()), default="cpu",
                   help="benchmarks/xanesnet_presets (default cpu): "
                   + listing("", PRESET_DIR, BenchPreset))
    p.add_argument("--n-molecules", type=count_int, default=-1,
                   help="molecules drawn from the folder (default: the preset's; 0 = all)")
    p.add_argument("--epochs", type=positive_int, help="epochs per trial (default: the preset's)")
    p.add_argument("--trials", type=positive_int, help="search trials, the default config included")
    p.add_argument("--seed", type=int, default=0, help="subset, split, sampler and training seed")
    add_ray(p, per_trial=False)
    p.add_argument("--gpus-per-trial", type=float, help="fractions pack trials on a GPU (default 1)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="extra config override")
    p.add_argument("--name", help="search name (default: xanesnet-<preset>-<time>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the search --name in OUT (its DB is reused), then score")
    add_quiet(p, "Tune progress table")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    from xane3.cli_common import parse_set, shortcut_overrides

    n = None if a.n_molecules == 0 else a.n_molecules
    try:
        if a.epochs is not None:  # two spellings of one key: refused, not a guess
            shortcut_overrides({"train.epochs": ("--epochs", a.epochs)}, parse_set(a.set))
        run_benchmark(a.train, a.out, a.preset, n_molecules=n, epochs=a.epochs, trials=a.trials,
                      seed=a.seed, gpus=a.gpus, gpus_per_trial=a.gpus_per_trial, cpus=a.cpus,
                      extra=parse_set(a.set), verbose=0 if a.quiet else 1, name=a.name,
                      resume=a.resume, address=a.address)
    except (KeyError, ValueError, FileNotFoundError, FileExistsError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
