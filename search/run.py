"""``python -m search.run``: distributed hyperparameter search for XANE(3).

Optuna TPE (constant liar, so concurrent trials do not crowd one region) proposes
override dicts from a named space; Ray Tune runs each as one ``xane3`` training
run, ASHA stops poor trials between epochs. Every trial lands in
``results/trials.parquet`` and ``results/epochs.parquet``, logs to its own W&B run
(offline by default) and the best trial's config is written as
``<experiments-dir>/<name>/best_config.json`` for ``python -m xane3.train --config``.

  python -m search.run --space irreps_basis --gpus 8 --trials 64 --data fe.db
  python -m search.run --space optim --gpus 8 --gpus-per-trial 0.25 --cpus-per-trial 2
  python -m search.run --name irreps_basis-20260101-120000 --resume
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from search import runner
from search.objectives import pareto
from search.optuna_setup import close_orphans, make_scheduler, make_searcher, make_storage
from search.results import read_table
from search.resume import check as check_resume
from search.resume import journal_path
from search.spaces import bounded, describe_spaces, get_space, search_space
from search.trainable import OBJECTIVE
from xane3.cli_common import add_db, add_quiet, add_ray, add_set, parse_set, positive_int, shortcut_overrides
from xane3.config import Config
from xane3.overlays import experiment, listing, names


def default_name(space: str) -> str:
    """``<space>-<time>``; a space given as a file is named by its stem, not its path."""
    return f"{Path(space).stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_search(space: str = "irreps_basis", trials: int = 16, *, gpus: float = 0,
               gpus_per_trial: float | None = None, cpus_per_trial: float = 1.0,
               max_epochs: int | None = None, scheduler: str = "asha", data: str | None = None,
               name: str | None = None, resume: bool = False, address: str | None = None,
               storage: str | None = None, wandb: str = "offline", seed: int = 0,
               preset: str = "paper", extra: dict[str, Any] | None = None,
               results_dir: str | Path = "results", experiments_dir: str | Path = "runs/search",
               enqueue: list[dict[str, Any]] | None = None, num_cpus: int | None = None,
               verbose: int = 1, user_set: dict[str, Any] | None = None,
               given: dict[str, Any] | None = None, warm_start: str | None = None) -> Path:
    """Run (or resume) a search; returns the experiment directory.

    ``user_set``: the user's own ``--set`` keys (also in ``extra``); one the space samples
    is refused, since the sample would silently win over it. ``given``: the options the
    command line named (``search.resume``); on resume, one that differs is refused.
    """
    if not name:
        if resume:
            raise ValueError("--resume needs --name of the experiment to continue")
        name = default_name(space)
    exp_dir = runner.prepare(name, experiments_dir, resume, results_dir)
    piece = None  # resumed from the tables alone: a new Tune run seeded with the finished trials
    if resume:
        from ray import tune

        if (exp_dir / "experiment.json").exists() and tune.Tuner.can_restore(str(exp_dir / "tune")):
            exp = runner.Experiment.load(exp_dir)
        else:
            stored = runner.Experiment(name=name, kind="search", base={}, max_epochs=0,
                                       results_dir=str(Path(results_dir).resolve())).beside_rows()
            exp = runner.Experiment.load_file(stored)
            piece = time.strftime("piece-%Y%m%d-%H%M%S", time.gmtime())
        check_resume(exp, given or {}, lambda x: runner.base_overrides(preset, data, max_epochs, seed, x))
        print(f"resuming {exp.name}" + (" from its result tables (its Tune folder is gone)" if piece else "")
              + ": the space, trials, data, epochs, preset, --set, --seed and results folder are the "
              "ones it started with")
    else:
        sampled = get_space(space).keys()
        clash = sorted(sampled & set(user_set or {}))
        if clash:
            raise ValueError(f"--set {', '.join(clash)}: the space {space!r} samples "
                             f"{'it' if len(clash) == 1 else 'them'}, so the value would be ignored; "
                             "drop the --set or search another space")
        if scheduler not in ("asha", "none"):
            raise ValueError(f"--scheduler {scheduler}: expected asha or none")
        if get_space(space).multi:  # search.objectives: a stopped trial would bias the front
            if "scheduler" in (given or {}) and scheduler == "asha":
                raise ValueError(f"--scheduler asha: the space {space!r} is multi-objective "
                                 f"({', '.join(get_space(space).objectives)}); ASHA ranks on one metric "
                                 "and its stopped trials would enter the front half-trained")
            scheduler = "none"
        base = runner.base_overrides(preset, data, max_epochs, seed, extra)
        caps = bounded(get_space(space), base)[1]
        if caps:
            print(f"the {preset} preset bounds what the space draws: " + "; ".join(caps))
        shadowed = {k: v for k, v in base.items() if k in sampled}
        if shadowed:
            print(f"space {space!r} samples these, not the base values: "
                  + ", ".join(f"{k}={v}" for k, v in sorted(shadowed.items())))
        exp = runner.Experiment(
            name=name, kind="search", base=base, space=space, trials=trials, scheduler=scheduler,
            max_epochs=int(base.get("train.epochs", Config().train.epochs)), seed=seed,
            storage=journal_path(storage), wandb=wandb, results_dir=str(Path(results_dir).resolve()),
            preset=preset, warm_start=warm_start)
    gpt = (1.0 if gpus else 0.0) if gpus_per_trial is None else gpus_per_trial
    if gpt and not gpus and not address:
        raise ValueError("--gpus-per-trial needs --gpus")
    started, warning = runner.init_ray(address, gpus, num_cpus, exp_dir), None
    try:
        warning = runner.gpu_warning(gpus, address) if gpus else None
        if warning:
            print(warning, file=sys.stderr)
        parallel = runner.concurrency(exp.trials, gpt, cpus_per_trial)
        store = make_storage(exp.storage, exp_dir, parallel)
        samples = exp.trials
        if not resume:
            exp.save(exp_dir)
            if warm_start:
                warm(exp, store, warm_start)
        elif piece:
            samples = continue_from_tables(exp, exp_dir, store)
        restore = resume and not piece
        grid = runner.execute(
            exp, exp_dir, resume=restore, gpus_per_trial=gpt, cpus_per_trial=cpus_per_trial,
            max_concurrent=parallel, search_alg=None if restore else make_searcher(exp, store, enqueue),
            scheduler=None if restore else make_scheduler(exp), num_samples=samples,
            verbose=verbose, tune_name=piece or "tune") if samples else []
        known = {int(r.config["optuna_trial"]) for r in grid if "optuna_trial" in (r.config or {})}
        orphans = close_orphans(store, exp.name, known) if samples else 0
        if orphans:
            print(f"{orphans} Optuna trial(s) asked just before the driver died were marked FAIL")
    finally:
        if started:
            import ray

            ray.shutdown()
    if warning:
        print(warning, file=sys.stderr)
    report(exp, exp_dir)
    return exp_dir


def continue_from_tables(exp: runner.Experiment, exp_dir: Path, store: Any) -> int:
    """A search whose Tune folder is gone (another machine, a deleted run folder): its finished
    trials seed the study (unless its storage still holds them) and the trials it still lacks
    run as a new piece. Returns how many run."""
    import optuna

    exp.save(exp_dir)
    rows = read_table(exp.results_dir, exp.tables[0], exp.name)
    done = int(rows["status"].isin(["completed", "stopped_early"]).sum()) if not rows.empty else 0
    try:
        known = len(optuna.load_study(study_name=exp.name, storage=store).trials)
    except KeyError:
        known = 0
    if done and not known:
        warm(exp, store, exp.name)
    left = max(exp.trials - done, 0)
    print(f"{done} of {exp.trials} trials finished; this piece runs {left}")
    return left


def warm(exp: runner.Experiment, store: Any, source: str) -> None:
    """Seed the new study with ``source``'s finished trials (same results folder)."""
    from search.warmstart import seed_study

    rows = read_table(exp.results_dir, exp.tables[0], source)
    if rows.empty:
        raise FileNotFoundError(f"--warm-start {source}: no trials of that experiment in {exp.results_dir}")
    added, skipped = seed_study(store, exp.name, search_space(exp.space or "", exp.base), rows, exp.base,
                                source)
    print(f"warm start: {added} of {len(rows)} trials of {source} seed the study"
          + "".join(f"\n  {n} left out: {why}" for why, n in skipped.items()))


def mark_pareto(exp: runner.Experiment, df: Any) -> Any:
    """Write each row's ``pareto`` flag (multi-objective spaces) into its part file."""
    from search.results import part_path, read_part, trial_columns, write_part

    objectives = list(get_space(exp.space or "").objectives) if exp.space else []
    if len(objectives) < 2 or df.empty:
        return df
    df = df.assign(pareto=pareto(df, objectives).to_numpy())
    for tid, flag in zip(df["trial_id"], df["pareto"]):
        path = part_path(exp.results_dir, exp.tables[0], exp.name, tid)
        rows = read_part(path)
        if rows and rows[0].get("pareto") != bool(flag):
            rows[0]["pareto"] = bool(flag)
            write_part(rows, trial_columns(), path)
    front = df[df["pareto"]].sort_values(objectives[1])
    print(f"\nPareto front over {', '.join(objectives)} ({len(front)} of {len(df)} trials):\n"
          + front[["trial_id", *objectives, "params_json"]].to_string(index=False))
    return df


def report(exp: runner.Experiment, exp_dir: Path, top: int = 10) -> None:
    """Print the summary table and the best config; write best_config.json."""
    import pandas as pd

    df = read_table(exp.results_dir, exp.tables[0], exp.name)
    if df.empty:
        print("no trials recorded")
        return
    df = mark_pareto(exp, df)
    searched = sorted({k for p in df["params_json"].dropna() for k in json.loads(p)})
    cols = ["trial_id", "status", OBJECTIVE, "epochs_run", "device", "gpu_ids", "wall_time_s"]
    table = df.sort_values(OBJECTIVE, na_position="last")[cols + searched]
    counts = df["status"].value_counts().to_dict()
    with pd.option_context("display.width", 200, "display.max_columns", 40):
        print(f"\n{exp.name}: {len(df)} trials {counts}\n{table.head(top).to_string(index=False)}")
    ok = df[(df["status"] != "failed") & df[OBJECTIVE].notna() & df["config_json"].notna()]
    if ok.empty:
        print("no successful trial: no best_config.json")
        return
    best = ok.sort_values(OBJECTIVE).iloc[0]
    cfg = Config.from_dict(json.loads(best["config_json"]))
    cfg.train.device = "auto"  # where it ran is not part of the recipe
    cfg.save(exp_dir / "best_config.json")
    default = Config().flat()
    recipe = {k: v for k, v in cfg.flat().items() if v != default.get(k)}
    print(f"\nbest trial {best['trial_id']} ({OBJECTIVE}={best[OBJECTIVE]:.6g}, {best['status']}); "
          f"searched: {best['params_json']}\nits config (differences from the defaults):\n"
          f"{json.dumps(recipe, indent=2)}")
    print(f"best config: {exp_dir / 'best_config.json'}  "
          f"(python -m xane3.train --config {exp_dir / 'best_config.json'} --out DIR)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m search.run", description=__doc__,
                                epilog=describe_spaces(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="irreps_basis", help="search space (listed below)")
    p.add_argument("--trials", type=positive_int, default=16, help="number of trials (default 16)")
    add_ray(p)
    p.add_argument("--epochs", "--max-epochs", dest="max_epochs", type=positive_int,
                   help="epochs per trial (default: the preset's)")
    p.add_argument("--scheduler", choices=("asha", "none"), default="asha")
    add_db(p, dest="data")
    p.add_argument("--name", help="experiment name (default: <space>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the experiment --name")
    p.add_argument("--storage", help="Optuna storage: RDB URL or journal file "
                   "(default: <experiment dir>/optuna.journal; SQLite refused for parallel trials)")
    p.add_argument("--wandb", choices=("online", "offline", "disabled"), default="offline")
    p.add_argument("--seed", type=int, default=0, help="TPE sampler and training seed")
    p.add_argument("--preset", choices=names("preset"), default="paper",
                   help="base config (xane3/conf/preset): " + listing("preset"))
    p.add_argument("--experiment", help="overlay after the preset: a name in xane3/conf/experiment ("
                   + ", ".join(names("experiment")) + ") or a .yaml overlay file")
    add_set(p, "extra base override")
    p.add_argument("--warm-start", metavar="NAME", help="seed the new study with the finished trials of "
                   "experiment NAME (in --results-dir) that lie in this space and ran with the same "
                   "fixed settings: they count as evaluated, nothing reruns")
    p.add_argument("--results-dir", default="results", help="Parquet tables (default results/)")
    p.add_argument("--experiments-dir", default="runs/search",
                   help="experiment folders: Tune state, Optuna journal, W&B runs, best_config.json")
    add_quiet(p, "Tune progress table")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    a = p.parse_args(argv)
    named = build_parser()  # the same options with no defaults: what this command line named
    for action in named._actions:
        action.default = argparse.SUPPRESS
    given = vars(named.parse_args(argv))
    try:
        shortcut_overrides({k: v for k, v in {"train.epochs": ("--epochs", a.max_epochs),
                                              "data.db": ("--db", a.data)}.items() if v[1] is not None},
                           parse_set(a.set))  # both spellings of one key: refused, not a guess
        extra = {**(experiment(a.experiment) if a.experiment else {}), **parse_set(a.set)}
        exp_dir = run_search(a.space, a.trials, gpus=a.gpus, gpus_per_trial=a.gpus_per_trial,
                   cpus_per_trial=a.cpus_per_trial, max_epochs=a.max_epochs, scheduler=a.scheduler,
                   data=a.data, name=a.name, resume=a.resume, address=a.address, num_cpus=a.cpus,
                   storage=a.storage,
                   wandb=a.wandb, seed=a.seed, preset=a.preset, extra=extra,
                   results_dir=a.results_dir, experiments_dir=a.experiments_dir,
                   verbose=0 if a.quiet else 1, user_set=parse_set(a.set),
                   given={**given, **({"extra": extra} if {"set", "experiment"} & given.keys() else {})},
                   warm_start=a.warm_start)
    except (KeyError, ValueError, FileNotFoundError, FileExistsError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    exp = runner.Experiment.load(exp_dir)
    df = read_table(exp.results_dir, exp.tables[0], exp.name)
    if df.empty or (df["status"] == "failed").all():  # the job failed: no trial finished
        print(f"error: no trial of {exp.name} finished", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
