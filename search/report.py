"""``python -m search.report NAME``: what a finished (or running) search found, as PNG + Markdown.

Reads the experiment's Parquet tables (``<results>/trials.parquet``,
``<results>/epochs.parquet``, found through ``<experiments-dir>/NAME/experiment.json``)
and writes ``<experiments-dir>/NAME/report/``:

- ``report.png``: the objective of every trial and the best so far, against trial
  order and against wall time since the search began; the parameter importances;
  the validation learning curves of the top trials;
- ``report.md``: the trials ranked by the objective, the importances, the figure.

Importances are Optuna's own evaluators run over the trials table (PED-ANOVA by
default, no extra dependency; ``--evaluator fanova`` needs scikit-learn), with each
trial's objective (its best validation metric so far, as ASHA compared them).
To browse the study itself: ``optuna-dashboard <experiments-dir>/NAME/optuna.journal``
(``pip install optuna-dashboard``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from search.trainable import OBJECTIVE


def load_tables(name: str, experiments_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """(trials, epochs, experiment dir) of one experiment."""
    from search.results import read_table
    from search.runner import Experiment

    exp_dir = Path(experiments_dir) / name
    if not (exp_dir / "experiment.json").exists():
        raise FileNotFoundError(f"{exp_dir}: no experiment.json; is --experiments-dir right?")
    exp = Experiment.load(exp_dir)
    trials = read_table(exp.results_dir, exp.tables[0], exp.name)
    if trials.empty:
        raise ValueError(f"{exp.results_dir}: no trials recorded for {exp.name}")
    epochs = read_table(exp.results_dir, exp.tables[1], exp.name)
    return trials, epochs, exp_dir


def _distribution(values: list[Any]) -> Any:
    """An Optuna distribution that holds the observed values (None: nothing to rank)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    distinct = {json.dumps(v) for v in values}
    if len(distinct) < 2:
        return None
    if all(isinstance(v, float) for v in values) and len(distinct) > 4:
        lo, hi = min(values), max(values)
        return FloatDistribution(lo, hi, log=lo > 0 and hi / lo > 10)
    return CategoricalDistribution(sorted(distinct))


def at_common_budget(trials: pd.DataFrame, epochs: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Trials with OBJECTIVE replaced by its value after the epochs every *finished* trial ran.

    ASHA stops most trials at its first rung: their best-so-far and a finished trial's are
    measured after different budgets, so importances compare them at the common one.
    """
    ran = trials["epochs_run"]
    if "status" in trials:  # a crashed or still-running trial sets no budget
        ran = ran[trials["status"].isin(["completed", "stopped_early"])]
    ran = ran.dropna()
    if ran.empty or epochs.empty or "val_objective" not in epochs:
        return trials, 0
    budget = int(ran.min())
    early = epochs[epochs["epoch"] < budget].groupby("trial_id")["val_objective"].min()
    out = trials.copy()
    out[OBJECTIVE] = out["trial_id"].map(early)
    return out, budget


def importances(trials: pd.DataFrame, evaluator: str = "ped_anova") -> dict[str, float]:
    """Optuna parameter importances over the trials that reported an objective."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    ok = trials[trials[OBJECTIVE].notna() & trials["params_json"].notna()]
    params = [json.loads(p) for p in ok["params_json"]]
    names = sorted({k for p in params for k in p})
    dists = {k: d for k in names if (d := _distribution([p[k] for p in params if k in p])) is not None}
    if not dists or len(ok) < 3:
        raise ValueError(f"{len(ok)} trials with an objective and {len(dists)} varied parameters: "
                         "too few to rank")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    for p, value in zip(params, ok[OBJECTIVE]):
        keys = [k for k in dists if k in p]  # a conditional parameter is absent where it did not apply
        values = {k: json.dumps(p[k]) if isinstance(dists[k], CategoricalDistribution) else float(p[k])
                  for k in keys}
        study.add_trial(optuna.trial.create_trial(params=values, distributions={k: dists[k] for k in keys},
                                                  value=float(value)))
    ev = (optuna.importance.FanovaImportanceEvaluator(seed=0) if evaluator == "fanova"
          else optuna.importance.PedAnovaImportanceEvaluator())
    return optuna.importance.get_param_importances(study, evaluator=ev)


def progress(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials in the order they started, with the best objective so far and hours since start."""
    df = trials.sort_values("started_at").reset_index(drop=True)
    df["best_so_far"] = df[OBJECTIVE].cummin()
    start = df["started_at"].min()
    end = df["ended_at"].fillna(df["last_report_at"])
    df["hours"] = (end - start).dt.total_seconds() / 3600
    return df


def figure(trials: pd.DataFrame, epochs: pd.DataFrame, imp: dict[str, float] | None,
           metric: str, top: int, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xane3.plots import save_figure

    df = progress(trials)
    fig, ax = plt.subplots(2, 2, figsize=(11, 8))
    a = ax[0, 0]
    a.scatter(df.index + 1, df[OBJECTIVE], c=["C3" if s == "failed" else "C0" for s in df["status"]], s=18)
    a.step(df.index + 1, df["best_so_far"], where="post", color="k", label="best so far")
    a.set(xlabel="trial (start order)", ylabel=OBJECTIVE, yscale="log", title="objective by trial")
    a.legend()
    a = ax[0, 1]
    order = df.sort_values("hours")
    a.step(order["hours"], order[OBJECTIVE].cummin(), where="post", color="k")
    a.scatter(order["hours"], order[OBJECTIVE], s=18)
    a.set(xlabel="hours since the search began (trial end)", ylabel=OBJECTIVE, yscale="log",
          title="best so far against wall time")
    a = ax[1, 0]
    if imp:
        names = list(imp)[::-1]
        a.barh(names, [imp[n] for n in names])
        a.set(xlabel="importance", title="parameter importances (Optuna)")
    else:
        a.text(0.5, 0.5, "too few trials to rank parameters", ha="center", va="center")
        a.set_axis_off()
    a = ax[1, 1]
    best = df.dropna(subset=[OBJECTIVE]).sort_values(OBJECTIVE).head(top)
    for tid in best["trial_id"]:
        curve = epochs[epochs["trial_id"] == tid].sort_values("epoch")
        if not curve.empty and metric in curve:
            a.plot(curve["epoch"] + 1, curve[metric], marker=".", label=tid)
    a.set(xlabel="epoch", ylabel=metric, yscale="log", title=f"learning curves, top {len(best)}")
    a.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def markdown(name: str, trials: pd.DataFrame, imp: dict[str, float] | None, why: str,
             budget: int = 0) -> str:
    df = progress(trials).sort_values(OBJECTIVE, na_position="last")
    counts = ", ".join(f"{n} {s}" for s, n in df["status"].value_counts().items())
    lines = [f"# Search {name}", "", f"{len(df)} trials ({counts}); wall time "
             f"{df['hours'].max():.2f} h from the first start to the last result.", "",
             "![search report](report.png)", "", f"| rank | trial | status | {OBJECTIVE} | epochs | "
             "wall s | searched |", "| ---: | --- | --- | ---: | ---: | ---: | --- |"]
    for rank, r in enumerate(df.itertuples(index=False), 1):
        lines.append(f"| {rank} | {r.trial_id} | {r.status} | {getattr(r, OBJECTIVE):.4g} | "
                     f"{r.epochs_run if pd.notna(r.epochs_run) else ''} | {r.wall_time_s:.0f} | "
                     f"`{r.params_json}` |")
    lines += ["", "## Parameter importances (Optuna, over this table)", ""]
    if budget:
        lines += [f"Each trial's best validation objective within the first {budget} epoch(s), the "
                  "budget every trial ran (ASHA stopped the rest there), so all are compared alike.", ""]
    if imp:
        lines += ["| parameter | importance |", "| --- | ---: |"]
        lines += [f"| {k} | {v:.3f} |" for k, v in imp.items()]
    else:
        lines.append(f"Not computed: {why}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m search.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="experiment name (its folder under --experiments-dir)")
    p.add_argument("--experiments-dir", default="runs/search", help="default runs/search")
    p.add_argument("--out", help="output folder (default: <experiments-dir>/NAME/report)")
    p.add_argument("--top", type=int, default=5, help="learning curves of the best N trials")
    p.add_argument("--metric", default="val_spectrum", help="learning-curve column (default val_spectrum)")
    p.add_argument("--evaluator", choices=("ped_anova", "fanova"), default="ped_anova")
    a = p.parse_args(argv)
    try:
        trials, epochs, exp_dir = load_tables(a.name, a.experiments_dir)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if a.metric not in epochs.columns:
        curves = sorted(c for c in epochs.columns if c.startswith(("val_", "train_")))
        print(f"error: --metric {a.metric}: not an epoch column; one of {', '.join(curves)}",
              file=sys.stderr)
        return 2
    out = Path(a.out) if a.out else exp_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    imp, why = None, ""
    common, budget = at_common_budget(trials, epochs)
    try:
        imp = importances(common, a.evaluator)
    except (ValueError, RuntimeError, ImportError) as exc:
        why = str(exc)
    from xane3.atomic import write_text_atomic

    figure(trials, epochs, imp, a.metric, a.top, out / "report.png", f"search {a.name}")
    write_text_atomic(out / "report.md", markdown(a.name, trials, imp, why, budget))
    print(f"{len(trials)} trials; best {np.nanmin(trials[OBJECTIVE]):.4g} -> {out / 'report.md'}, "
          f"{out / 'report.png'}" + (f"\nimportances not computed: {why}" if why else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
