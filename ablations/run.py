"""``python -m ablations.run all``: every ablation spec x seeds, then Table 1.

Specs (``ablations/specs/*.yaml``) are config diffs over the baseline; they run
through the search's Ray runner and trainable (same ``--gpus``, ``--address``,
``--resume``, W&B and Parquet: an ``ablations`` table under ``results/``). The
table is scored on each run's own test split, which is the same for every spec and
seed (the split seed is fixed; only the training seed varies).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ablations import table
from ablations.specs import PRESET_DIR, RunPreset, load_specs, presets, resolve
from xane3.atomic import write_csv_atomic, write_text_atomic
from xane3.cli_common import add_db, add_ray, add_set, parse_set, positive_int
from xane3.config import Config, with_overrides
from xane3.overlays import listing


def plan(names: list[str], preset: str, seeds: int,
         user: dict[str, Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(label, overrides) per (spec, seed); labels are ``<spec>__seed<k>``. Capacity-matched
    specs match the baseline the runs get: the preset with the user's ``--set`` on top."""
    specs = load_specs()
    unknown = [n for n in names if n != "all" and n not in specs]
    if unknown:
        raise KeyError(f"unknown spec(s) {unknown}; known: {', '.join(specs)}")
    chosen = list(specs) if "all" in names else names
    if "train.seed" in (user or {}):  # each run's seed is its index: a --set seed would be overruled
        raise ValueError("--set train.seed: every spec runs seeds 0..N-1 (N = --seeds); "
                         "drop train.seed from --set")
    pre = presets()[preset]
    out = []
    for name in chosen:
        resolved = resolve(specs[name], {}, False) if not pre.extras.rescale else \
            {k: v for k, v in resolve(specs[name], {**pre.overrides, **(user or {})}, True).items()
             if k in specs[name].overrides or k == "model.m0" and specs[name].capacity_matched}
        for seed in range(seeds):
            out.append((f"{name}__seed{seed}", {**resolved, "train.seed": seed}))
    return out


def list_specs() -> str:
    lines = []
    for name, spec in load_specs().items():
        diff = ", ".join(f"{k}={v}" for k, v in spec.overrides.items()) or "(no change)"
        lines.append(f"{name:<28} {diff}\n{'':<28} {spec.description}")
    return "\n".join(lines)


def mean_spectrum_baseline(cfg: Config) -> dict[str, float]:
    """Test-split error of predicting the mean training spectrum (x1e-3, baseline weights)."""
    from xane3.baseline import baseline_scores
    from xane3.data.dataset import load_dataset
    from xane3.data.splits import splits_of

    ds = load_dataset(cfg.data)
    s, t = splits_of(ds, cfg.data), cfg.train
    terms = baseline_scores(ds, s["train"], s["test"], t.lambda_grad, t.lambda_curv)
    return {"spectrum": terms["spectrum"] * 1e3, "gradient": t.lambda_grad * terms["gradient"] * 1e3,
            "curvature": t.lambda_curv * terms["curvature"] * 1e3, "total": terms["total"] * 1e3}


def write_table(rows, preset: str, base: dict[str, Any], out_dir: Path, name: str,
                wall_s: float | None, command: str) -> str:
    """Score completed rows and write Markdown, CSV and PNG; returns the Markdown."""

    done = rows[rows["status"].isin(["completed", "stopped_early"])]
    if "ended_at" in done:  # a (spec, seed) finished twice (a resume re-ran it): one seed, the last
        done = done.sort_values("ended_at").drop_duplicates("label", keep="last")
    done = done.copy()
    done["spec"] = done["label"].str.split("__seed").str[0]
    done["seed"] = done["label"].str.split("__seed").str[1].astype(int)
    specs = load_specs()
    done["parameters"] = done["n_parameters"]  # the trainable counted them when it built the model
    base_cfg = with_overrides(Config(), base)  # the baseline's final weights score every row
    t = base_cfg.train
    scores = table.score_rows(done, t.lambda_grad, t.lambda_curv)
    summary = table.summarise(scores, [s for s in specs if s in set(done.spec)])
    md = table.markdown(summary, mean_spectrum_baseline(base_cfg))
    header = (f"# Table 1 — preset `{preset}`, experiment `{name}`\n\n"
              f"Command: `{command}`\n\n"
              + (f"Wall time: {wall_s / 60:.1f} min on this machine.\n\n" if wall_s else "")
              + f"Preset overrides: `{json.dumps(base)}`\n\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / f"table1_{name}.md", header + md)
    write_csv_atomic(summary, out_dir / f"table1_{name}.csv")
    table.bar_chart(summary, out_dir / f"table1_{name}.png")
    return header + md


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ablations.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("specs", nargs="*", default=["all"], help="spec names or 'all' (default)")
    p.add_argument("--list", action="store_true", help="print every spec with its diff and exit")
    p.add_argument("--preset", default="paper", choices=sorted(presets()),
                   help="ablations/presets: " + listing("", PRESET_DIR, RunPreset))
    p.add_argument("--seeds", type=positive_int, help="seeds per spec (preset default: 3)")
    add_ray(p)
    p.add_argument("--resume", action="store_true", help="continue; finished (spec, seed) pairs are kept")
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
    try:
        user = parse_set(args.set)
        with_overrides(Config(), {**pre.overrides, **user})  # a bad --set fails before Ray starts
        configs = plan(args.specs, args.preset, seeds, user)
    except (KeyError, ValueError) as exc:
        p.error(str(exc))
    from search.runner import Experiment, run_trials

    name = args.name or f"ablations-{args.preset}"
    exp_dir = Path(args.experiments_dir).resolve() / name
    t0 = time.perf_counter()
    try:
        started = Experiment.load(exp_dir) if args.resume else None
        if started is not None:  # the runs, preset and tables are the experiment's, as it was started
            args.preset, args.results_dir = check_resume(started, configs,
                                                         {**pre.overrides, **user}, args.preset)
        rows = run_trials(configs, name, gpus=args.gpus, gpus_per_trial=args.gpus_per_trial,
                          cpus_per_trial=args.cpus_per_trial, address=args.address,
                          resume=args.resume, num_cpus=args.cpus, wandb=args.wandb,
                          results_table="ablations", preset_name=None, data=args.data,
                          extra={**pre.overrides, **user}, results_dir=args.results_dir,
                          experiments_dir=args.experiments_dir, preset_label=args.preset)
    except (FileExistsError, FileNotFoundError, PermissionError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # incl. an untrusted folder, a bad --name
        return 2
    wall = time.perf_counter() - t0
    failed = rows[rows["status"] == "failed"]
    if len(failed):
        print(f"{len(failed)} run(s) failed: {', '.join(failed['label'])}", file=sys.stderr)
    if len(failed) == len(rows):
        print("error: no run finished; no table written", file=sys.stderr)
        return 1  # the job ran and failed
    # what the trials ran with (on --resume: the experiment's, not this command line's)
    base = (started if started is not None else Experiment.load(exp_dir)).base
    command = "python -m ablations.run " + " ".join(argv if argv is not None else sys.argv[1:])
    print(write_table(rows, args.preset, base, Path(args.results_dir), name, wall, command))
    return 0


def check_resume(exp, configs: list, overrides: dict[str, Any], preset: str) -> tuple[str, str]:
    """A resumed experiment runs what it started with; a command line asking for other runs
    (specs, --seeds, --set, --preset) is refused, not silently overruled. Returns the
    experiment's preset and results folder."""
    from search.resume import as_stored, set_conflicts

    differs = set_conflicts(exp.base, overrides)  # typed: lr=5e-4 matches a stored 0.0005
    if as_stored(dict(configs)) != as_stored(dict(exp.configs)) or differs or \
            (exp.preset and exp.preset != preset):  # labels are unique: the dicts are the runs
        raise ValueError(
            f"--resume {exp.name}: it was started with {len(exp.configs)} runs (preset "
            f"{exp.preset or '?'}); this command line asks for {len(configs)}"
            + (f" and sets {'; '.join(differs)}" if differs else "")
            + ". Repeat the command it was started with, plus --resume, or pass a new --name")
    return exp.preset or preset, exp.results_dir


if __name__ == "__main__":
    raise SystemExit(main())
