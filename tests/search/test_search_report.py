"""search.report: Optuna importances over a trials table, and the report a user opens."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from search.report import importances, main


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    """Objective driven by the learning rate alone; m0 and a bool are noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        lr = float(10 ** rng.uniform(-4, -2))
        rows.append({"params_json": json.dumps({"train.lr": lr, "model.m0": int(rng.choice([8, 16])),
                                                "model.learn_centers": bool(rng.integers(2))}),
                     "best_val_objective": (np.log10(lr) + 3) ** 2 + 0.01 * rng.normal()})
    return pd.DataFrame(rows)


def test_importances_rank_the_parameter_that_drives_the_objective() -> None:
    imp = importances(_table(16))
    assert max(imp, key=imp.get) == "train.lr" and imp["train.lr"] > 0.8


def test_conditional_parameters_and_too_few_trials() -> None:
    df = _table(8)
    df.loc[0, "params_json"] = json.dumps({"train.lr": 1e-3})  # m0 did not apply to this trial
    assert "train.lr" in importances(df)
    with pytest.raises(ValueError, match="too few"):
        importances(df.head(2))


def test_missing_experiment_is_a_one_line_error(tmp_path, capsys) -> None:
    assert main(["nope", "--experiments-dir", str(tmp_path)]) == 2
    assert "no experiment.json" in capsys.readouterr().err


def test_importances_compare_trials_at_the_budget_every_trial_ran() -> None:
    from search.report import at_common_budget

    trials = pd.DataFrame({"trial_id": ["a", "b"], "epochs_run": [1, 3],
                           "best_val_objective": [0.5, 0.1]})
    epochs = pd.DataFrame({"trial_id": ["a", "b", "b", "b"], "epoch": [0, 0, 1, 2],
                           "val_objective": [0.5, 0.4, 0.2, 0.1]})
    common, budget = at_common_budget(trials, epochs)
    assert budget == 1 and common["best_val_objective"].tolist() == [0.5, 0.4]
    # a trial that crashed after one epoch sets no budget: the finished ones are compared at 3
    crashed = pd.DataFrame({"trial_id": ["a", "b", "c"], "epochs_run": [3, 3, 1],
                            "status": ["completed", "stopped_early", "failed"],
                            "best_val_objective": [0.3, 0.1, 0.9]})
    more = pd.DataFrame({"trial_id": ["a"] * 3 + ["b"] * 3 + ["c"], "epoch": [0, 1, 2] * 2 + [0],
                         "val_objective": [0.5, 0.4, 0.3, 0.4, 0.2, 0.1, 0.9]})
    common, budget = at_common_budget(crashed, more)
    assert budget == 3 and common["best_val_objective"].tolist()[:2] == [0.3, 0.1]
