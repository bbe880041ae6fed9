"""Multi-objective searches (accuracy against a cost), the Pareto column, and warm starts:
real Ray Tune and real Optuna journal storage on a tiny budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from search import runner
from search.objectives import check, pareto_mask
from search.run import run_search
from search.spaces import load_space
from search.warmstart import Outside, as_trial
from xane3.config import Config, with_overrides

FAST = {"train.max_steps_per_epoch": 2}
SPACE = """description: tiny multi-objective space for tests
objectives: [best_val_objective, n_parameters]
params:
  model.m0: {m0}
  train.lr: {{float: [1.0e-3, 3.0e-3], log: true}}
  basis.learn: [centers, neither]
"""


def _space(tmp: Path, name: str, m0: list[int]) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(SPACE.format(m0=m0))
    return path


def test_pareto_mask_by_hand() -> None:
    # (error, cost): b dominates d; a, b, c trade off; e ties a on both (neither dominates)
    v = np.array([[1.0, 9.0], [2.0, 5.0], [4.0, 1.0], [3.0, 6.0], [1.0, 9.0]])
    assert pareto_mask(v).tolist() == [True, True, True, False, True]


def test_objectives_are_checked() -> None:
    assert check([], "x") == ["best_val_objective"]
    with pytest.raises(ValueError, match="the first must be best_val_objective"):
        check(["n_parameters", "best_val_objective"], "s.yaml")
    with pytest.raises(ValueError, match="unknown: \\['flops'\\]"):
        check(["best_val_objective", "flops"], "s.yaml")


def test_warm_start_reads_a_trial_back_and_refuses_what_lies_outside(tmp_path) -> None:
    space = load_space(_space(tmp_path, "s", [4, 8]))
    base = {"model.num_layers": 2}
    cfg = with_overrides(Config(), {**base, "model.m0": 8, "train.lr": 2e-3, "model.learn_centers": False,
                                    "model.learn_widths": False})
    row = {"config_json": __import__("json").dumps(cfg.to_dict()), "best_val_objective": 0.5,
           "n_parameters": 1234, "trial_id": "t"}
    flat = with_overrides(Config(), base).flat()
    params, dists, values = as_trial(row, space, flat, space.keys(), list(space.objectives))
    assert params == {"model.m0": 8, "train.lr": pytest.approx(2e-3), "basis.learn": "neither"}
    assert values == [0.5, 1234.0] and set(dists) == set(params)
    wider_m0 = with_overrides(cfg, {"model.m0": 12})
    with pytest.raises(Outside, match="model.m0=12"):
        as_trial({**row, "config_json": __import__("json").dumps(wider_m0.to_dict())}, space, flat,
                 space.keys(), list(space.objectives))
    with pytest.raises(ValueError, match="other fixed settings: model.num_layers"):
        as_trial(row, space, with_overrides(Config(), {"model.num_layers": 3}).flat(), space.keys(),
                 list(space.objectives))


@pytest.fixture(scope="module")
def ray2():
    import ray

    if ray.is_initialized():
        ray.shutdown()
    started = runner.init_ray(None, gpus=0, num_cpus=2)
    yield
    if started:
        ray.shutdown()


def _journal(exp_dir: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(exp_dir / "optuna.journal"))))


def test_multi_objective_search_marks_the_front_and_a_warm_start_reuses_it(ray2, tmp_path, small_real_db):
    common = dict(cpus_per_trial=1.0, max_epochs=1, data=str(small_real_db), preset="tiny", extra=FAST,
                  results_dir=tmp_path / "results", experiments_dir=tmp_path / "runs", verbose=0)
    with pytest.raises(ValueError, match="multi-objective"):
        run_search(str(_space(tmp_path, "mo", [4, 8])), 3, name="asha", scheduler="asha",
                   given={"scheduler": "asha"}, **common)
    exp_dir = run_search(str(_space(tmp_path, "mo", [4, 8])), 3, name="mo", **common)
    assert runner.Experiment.load(exp_dir).scheduler == "none"  # FIFO: every trial runs its budget
    trials = pd.read_parquet(tmp_path / "results" / "trials.parquet", filters=[("experiment", "==", "mo")])
    assert len(trials) == 3 and (trials["status"] == "completed").all()
    for col in ("n_parameters", "s_per_epoch", "infer_ms_per_structure", "best_val_objective"):
        assert trials[col].notna().all() and (trials[col] > 0).all(), col
    front = trials[trials["pareto"]]
    assert len(front) >= 1 and trials["pareto"].notna().all()
    objs = trials[["best_val_objective", "n_parameters"]].to_numpy(float)
    assert trials["pareto"].tolist() == pareto_mask(objs).tolist()
    study = _journal(exp_dir, "mo")
    assert len(study.directions) == 2 and all(len(t.values) == 2 for t in study.trials)
    # a new study over a wider space starts from these three: nothing reruns
    wide = _space(tmp_path, "wide", [4, 8, 12])
    exp2 = run_search(str(wide), 1, name="mo2", warm_start="mo", **common)
    study2 = _journal(exp2, "mo2")
    seeded = [t for t in study2.trials if "warm_start_from" in t.user_attrs]
    assert len(seeded) == 3 and len(study2.trials) == 4
    assert {t.user_attrs["warm_start_from"] for t in seeded} == {f"mo/{t}" for t in trials["trial_id"]}
    assert sorted(t.values[1] for t in seeded) == sorted(trials["n_parameters"].astype(float))
    rows2 = pd.read_parquet(tmp_path / "results" / "trials.parquet", filters=[("experiment", "==", "mo2")])
    assert len(rows2) == 1  # only the new trial ran
    assert runner.Experiment.load(exp2).warm_start == "mo"
    # the report: the front in Markdown and in a self-contained HTML page, also from the tables
    # alone once the run folder is gone
    import shutil

    from search.report import main as report_main

    assert report_main(["mo", "--experiments-dir", str(tmp_path / "runs")]) == 0
    page = (exp_dir / "report" / "report.html").read_text()
    assert "<h2>Pareto front</h2>" in page and "data:image/png;base64," in page
    assert "Caveat" in (exp_dir / "report" / "report.md").read_text() or "Not computed" in page
    shutil.rmtree(tmp_path / "runs")
    assert report_main(["mo", "--experiments-dir", str(tmp_path / "runs"), "--results-dir",
                        str(tmp_path / "results"), "--out", str(tmp_path / "rep")]) == 0
    assert "Pareto front" in (tmp_path / "rep" / "report.md").read_text()


def test_a_search_continues_from_its_tables_alone(ray2, tmp_path, small_real_db):
    """The run folder (Tune state, Optuna journal) is gone: --resume seeds a new study with the
    finished trials from the tables and runs only the trials still missing, as a new piece."""
    import shutil

    space = str(_space(tmp_path, "mo", [4, 8]))
    common = dict(cpus_per_trial=1.0, max_epochs=1, data=str(small_real_db), preset="tiny", extra=FAST,
                  results_dir=tmp_path / "results", experiments_dir=tmp_path / "runs", verbose=0)
    run_search(space, 2, name="p", **common)
    first = pd.read_parquet(tmp_path / "results" / "trials.parquet")
    shutil.rmtree(tmp_path / "runs")
    exp = runner.Experiment.load_file(tmp_path / "results" / "trials.parquet" / "experiment=p" / "_experiment.json")
    exp.trials = 3  # as if it had been started for three: one left
    exp.save(tmp_path / "keep")  # rewrites the copy beside the rows (and a folder we drop)
    shutil.rmtree(tmp_path / "keep")
    exp_dir = run_search(space, 3, name="p", resume=True, **common)
    rows = pd.read_parquet(tmp_path / "results" / "trials.parquet")
    assert len(rows) == 3 and set(first["trial_id"]) < set(rows["trial_id"])  # 2 kept, 1 new
    study = _journal(exp_dir, "p")
    assert len(study.trials) == 3 and sum("warm_start_from" in t.user_attrs for t in study.trials) == 2
    assert rows["pareto"].notna().all()
