"""``python -m ablations.run all``: every ablation spec x seeds, then Table 1.

Specs (``ablations/specs/*.yaml``) are config diffs over the baseline; they run
through the search's Ray runner and trainable (same ``--gpus``, ``--address``, W&B and
Parquet: an ``ablations`` table under ``results/``). Seed k is the same for every spec:
the same split (the split seed is fixed), data order and initialisation seed, so the
table compares specs seed by seed. A study runs in pieces: ``--resume`` continues it from
its result tables on any machine, ``--shard K/N`` splits it over N machines, and
``python -m ablations.table NAME`` rebuilds the table from whatever rows exist.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ablations.specs import PRESET_DIR, RunPreset, load_specs, presets, resolve
from ablations.study import (
    STUDY_FILE,
    TABLE,
    Study,
    finished,
    mark_interrupted,
    missing,
    parse_shard,
    read_rows,
    shard,
    write_table,
)
from search.runner import base_overrides, check_name
from xane3.cli_common import add_db, add_ray, add_set, parse_set, positive_int, shortcut_overrides
from xane3.config import Config, with_overrides
from xane3.overlays import listing


def plan(names: list[str], preset: str, seeds: int,
         user: dict[str, Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(label, overrides) per (spec, seed), seed-major (every spec at seed 0, then seed 1, ...)
    so a study cut off after any piece has whole paired seeds; labels are ``<spec>__seed<k>``.
    Capacity-matched specs match the baseline the runs get: the preset with the user's
    ``--set`` on top. A spec that changes nothing under this preset (the channel-wise row when
    the preset's backbone is channel-wise) is left out: it would be a second baseline."""
    specs = load_specs()
    unknown = [n for n in names if n != "all" and n not in specs]
    if unknown:
        raise KeyError(f"unknown spec(s) {unknown}; known: {', '.join(specs)}")
    pre = presets()[preset]
    chosen = (pre.extras.specs or list(specs)) if "all" in names else names
    if "train.seed" in (user or {}):  # each run's seed is its index: a --set seed would be overruled
        raise ValueError("--set train.seed: every spec runs seeds 0..N-1 (N = --seeds); "
                         "drop train.seed from --set")
    base = {**pre.overrides, **(user or {})}
    resolved = {}
    for name in chosen:
        resolved[name] = resolve(specs[name], {}, False) if not pre.extras.rescale else \
            {k: v for k, v in resolve(specs[name], base, True).items()
             if k in specs[name].overrides or k == "model.m0" and specs[name].capacity_matched}
    chosen = [n for n in chosen if n == "baseline" or n not in noop_specs(base, resolved)]
    return [(f"{name}__seed{seed}", {**resolved[name], "train.seed": seed})
            for seed in range(seeds) for name in chosen]


def noop_specs(base: dict[str, Any], resolved: dict[str, dict[str, Any]]) -> list[str]:
    """Specs whose config equals the baseline's under ``base`` (the preset and --set)."""
    ref = with_overrides(Config(), base).to_dict()
    return [n for n, o in resolved.items()
            if n != "baseline" and with_overrides(Config(), {**base, **o}).to_dict() == ref]


def list_specs() -> str:
    lines = []
    for name, spec in load_specs().items():
        diff = ", ".join(f"{k}={v}" for k, v in spec.overrides.items()) or "(no change)"
        lines.append(f"{name:<28} {diff}\n{'':<28} {spec.description}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ablations.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("specs", nargs="*", default=["all"], help="spec names or 'all' (default)")
    p.add_argument("--list", action="store_true", help="print every spec with its diff and exit")
    p.add_argument("--preset", default="paper", choices=sorted(presets()),
                   help="ablations/presets: " + listing("", PRESET_DIR, RunPreset))
    p.add_argument("--seeds", type=positive_int, help="seeds per spec (preset default: 3)")
    add_ray(p)
    p.add_argument("--resume", action="store_true",
                   help="continue the study from its result tables (on any machine, the Ray "
                        "folder may be gone): finished (spec, seed) runs are kept, the rest run")
    p.add_argument("--shard", type=parse_shard, metavar="K/N",
                   help="run only the K-th of N disjoint parts (N machines share one study; "
                        "their rows merge in one table)")
    p.add_argument("--max-runs", type=positive_int, metavar="N",
                   help="run at most N of the missing runs in this piece, then write the table")
    add_db(p, dest="data")
    add_set(p, "override after the preset, for every spec")
    p.add_argument("--name", help="experiment name (default: ablations-<preset>)")
    p.add_argument("--wandb", default="offline", choices=["online", "offline", "disabled"])
    p.add_argument("--results-dir", help="tables (default results/; runs/ablations-results/ for "
                   "--preset smoke, so smoke runs never land in the tracked results/)")
    p.add_argument("--experiments-dir", default="runs/ablations")
    args = p.parse_args(argv)
    if args.list:
        print(list_specs())
        return 0
    pre = presets()[args.preset]
    seeds = args.seeds or pre.extras.seeds
    if args.results_dir is None:
        args.results_dir = "runs/ablations-results" if args.preset == "smoke" else "results"
    name = args.name or f"ablations-{args.preset}"
    command = "python -m ablations.run " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        user = parse_set(args.set)
        if args.data:
            shortcut_overrides({"data.db": ("--db", args.data)}, user)  # one spelling, not a guess
        with_overrides(Config(), {**pre.overrides, **user})  # a bad --set fails before Ray starts
        configs = plan(args.specs, args.preset, seeds, user)
    except (KeyError, ValueError) as exc:
        p.error(str(exc))
    try:  # one line, before Ray starts: a bad name, --data or study file
        check_name(name)
        base = base_overrides(None, args.data, None, None, {**pre.overrides, **user})
        study = Study.load(args.results_dir, name)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if study is not None and not args.resume:
        print(f"error: {Study.path(args.results_dir, name)}: study {name!r} exists; pass --resume "
              "to continue it, or another --name", file=sys.stderr)
        return 2
    if study is None and args.resume:
        print(f"error: --resume: no study {name!r} under {Path(args.results_dir).resolve()} "
              f"(no {STUDY_FILE})", file=sys.stderr)
        return 2
    if study is not None:
        if base.get("data.db"):  # the same data may sit elsewhere on this machine: rows keep its hash
            study.base["data.db"] = base["data.db"]
        elif study.base.get("data.db") and not Path(study.base["data.db"]).exists():
            print(f"error: --resume {name}: it ran on {study.base['data.db']}, which is not on this "
                  "machine; pass --data with its copy here", file=sys.stderr)
            return 2
        why = study.differs(configs, {**base, "data.db": study.base.get("data.db")}, args.preset)
        if why:
            print(f"error: --resume {name}: this command line asks for {why}. Repeat the command "
                  "the study was started with, plus --resume, or pass a new --name", file=sys.stderr)
            return 2
    else:
        study = Study(name, args.preset, seeds, base, configs, command)
    return run_piece(study, args)


def run_piece(study: Study, args: argparse.Namespace) -> int:
    """Run what the study's tables lack (this shard's part, at most --max-runs), then the table."""
    from search.runner import run_trials

    rows = read_rows(args.results_dir, study.name)
    todo_labels = set(missing(study, rows))
    mine = shard(study.configs, *args.shard) if args.shard else study.configs
    todo = [c for c in mine if c[0] in todo_labels][: args.max_runs]
    where = f" (shard {args.shard[0]}/{args.shard[1]})" if args.shard else ""
    print(f"study {study.name}: {len(study.configs) - len(todo_labels)} of {len(study.configs)} runs "
          f"finished; this piece runs {len(todo)}{where}", flush=True)
    t0 = time.perf_counter()
    if todo:
        folder = study.name + (f".shard{args.shard[0]}of{args.shard[1]}" if args.shard else "")
        piece = time.strftime("piece-%Y%m%d-%H%M%S", time.gmtime())
        try:
            study.save(args.results_dir)
            mark_interrupted(args.results_dir, study.name, {label for label, _ in todo})
            run_trials(todo, study.name, gpus=args.gpus, gpus_per_trial=args.gpus_per_trial,
                       cpus_per_trial=args.cpus_per_trial, address=args.address, num_cpus=args.cpus,
                       wandb=args.wandb, results_table=TABLE, preset_name=None, data=None,
                       extra=study.base, results_dir=args.results_dir,
                       experiments_dir=args.experiments_dir, preset_label=study.preset,
                       piece=piece, folder=folder)
        except (FileExistsError, FileNotFoundError, PermissionError, ValueError, KeyError) as exc:
            print(f"error: {exc}", file=sys.stderr)  # incl. an untrusted folder
            return 2
        rows = read_rows(args.results_dir, study.name)
        ran = rows[rows["label"].isin({label for label, _ in todo})]
        failed = ran[(ran["status"] == "failed") & ~ran["label"].isin(finished(rows)["label"])]
        if len(failed):
            print(f"{len(failed)} run(s) failed: {', '.join(failed['label'])}", file=sys.stderr)
    if finished(rows).empty:
        print("error: no run finished; no table written", file=sys.stderr)
        return 1  # the job ran and failed
    print(write_table(rows, study, Path(args.results_dir), time.perf_counter() - t0 if todo else None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
