"""``python -m search.report NAME``: what a finished (or running) search found, as PNG + Markdown.

Reads the experiment's Parquet tables (``<results>/trials.parquet``,
``<results>/epochs.parquet``, found through ``<experiments-dir>/NAME/experiment.json``)
and writes ``<experiments-dir>/NAME/report/``:

- ``report.png``: the objective of every trial and the best so far, against trial
  order and against wall time since the search began; the parameter importances;
  the validation learning curves of the top trials;
- ``report.md``: the trials ranked by the objective (and the Pareto front of a
  multi-objective search), the importances, the figure;
- ``report.html``: the same page, self-contained (the figure embedded), for a browser.

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

from search.report_pages import FEW_TRIALS, html, markdown
from search.trainable import OBJECTIVE


def load_tables(name: str, experiments_dir: str | Path,
                results_dir: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame, Path, list[str]]:
    """(trials, epochs, experiment dir, objectives) of one experiment: through its
    experiment.json, or from ``results_dir``'s tables alone when the run folder is gone
    (objectives then follow the table: a ``pareto`` column means accuracy against parameters)."""
    from search.results import read_table
    from search.runner import Experiment
    from search.spaces import get_space

    exp_dir = Path(experiments_dir) / name
    if (exp_dir / "experiment.json").exists():
        exp = Experiment.load(exp_dir)
        results, table_names = exp.results_dir, exp.tables
        try:
            objectives = list(get_space(exp.space).objectives) if exp.space else [OBJECTIVE]
        except (KeyError, FileNotFoundError, ValueError):  # a space file since moved
            objectives = [OBJECTIVE]
    elif results_dir is not None:
        results, table_names, objectives = results_dir, ("trials", "epochs"), None
    else:
        raise FileNotFoundError(f"{exp_dir}: no experiment.json; is --experiments-dir right? "
                                "(or pass --results-dir to read the tables alone)")
    trials = read_table(results, table_names[0], name)
    if trials.empty:
        raise ValueError(f"{results}: no trials recorded for {name}")
    if objectives is None:
        mo = "pareto" in trials and trials["pareto"].notna().any()
        objectives = [OBJECTIVE, "n_parameters"] if mo else [OBJECTIVE]
    epochs = read_table(results, table_names[1], name)
    return trials, epochs, exp_dir, objectives


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


def pareto_panel(a: Any, trials: pd.DataFrame, objectives: list[str]) -> None:
    """Accuracy against cost, the front joined, the paper's default model's size marked."""
    from search.objectives import pareto
    from xane3.config import Config
    from xane3.model import XANE3

    x, y = objectives[1], objectives[0]
    ok = trials[trials[[x, y]].notna().all(axis=1)]
    front = ok[pareto(ok, objectives)].sort_values(x)
    a.scatter(ok[x], ok[y], s=18, color="C0", alpha=0.6, label="trials")
    a.step(front[x], front[y], where="post", color="C3", marker="o", label="Pareto front")
    if x == "n_parameters":  # the paper's default (and the shipped pretrained model: the same size)
        n = XANE3(Config().model).num_parameters()
        a.axvline(n, color="k", ls="--", lw=1)
        a.text(n, a.get_ylim()[1], f" paper default / shipped model\n ({n / 1e6:.2f} M; not trained "
               "at this budget)", va="top", ha="right", fontsize=7)
    a.set(xlabel=x, ylabel=y, xscale="log", yscale="log", title="accuracy against cost")
    a.legend(fontsize=7)


def progress(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials in the order they started, with the best objective so far and hours since start."""
    df = trials.sort_values("started_at").reset_index(drop=True)
    df["best_so_far"] = df[OBJECTIVE].cummin()
    start = df["started_at"].min()
    end = df["ended_at"].fillna(df["last_report_at"])
    df["hours"] = (end - start).dt.total_seconds() / 3600
    return df


def figure(trials: pd.DataFrame, epochs: pd.DataFrame, imp: dict[str, float] | None,
           metric: str, top: int, path: Path, title: str, objectives: list[str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xane3.plots import save_figure

    df = progress(trials)
    multi = objectives is not None and len(objectives) > 1
    fig, axes = plt.subplots(2, 3 if multi else 2, figsize=(16 if multi else 11, 8), squeeze=False)
    ax = axes
    if multi:
        pareto_panel(axes[0, 2], trials, objectives)
        axes[1, 2].set_axis_off()
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
        n = int(trials[OBJECTIVE].notna().sum())
        a.set(xlabel="importance", title="parameter importances (Optuna)"
              + (f"\nonly {n} trials: unstable" if n < FEW_TRIALS else ""))
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m search.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="experiment name (its folder under --experiments-dir)")
    p.add_argument("--experiments-dir", default="runs/search", help="default runs/search")
    p.add_argument("--out", help="output folder (default: <experiments-dir>/NAME/report)")
    p.add_argument("--top", type=int, default=5, help="learning curves of the best N trials")
    p.add_argument("--metric", default="val_objective",
                   help="learning-curve column (default val_objective, the metric trials are ranked by)")
    p.add_argument("--results-dir", help="read the tables from here when the experiment folder is gone")
    p.add_argument("--evaluator", choices=("ped_anova", "fanova"), default="ped_anova")
    a = p.parse_args(argv)
    try:
        trials, epochs, exp_dir, objectives = load_tables(a.name, a.experiments_dir, a.results_dir)
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

    figure(trials, epochs, imp, a.metric, a.top, out / "report.png", f"search {a.name}", objectives)
    md = markdown(a.name, progress(trials), imp, why, budget, objectives)
    write_text_atomic(out / "report.md", md)
    write_text_atomic(out / "report.html", html(md, out))
    print(f"{len(trials)} trials; best {np.nanmin(trials[OBJECTIVE]):.4g} -> {out / 'report.md'}, "
          f"{out / 'report.html'} (opens in a browser), {out / 'report.png'}"
          + (f"\nimportances not computed: {why}" if why else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
