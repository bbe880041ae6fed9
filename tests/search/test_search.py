"""search/: real Ray Tune, real Optuna journal storage, real W&B (offline), real Parquet.

The Ray tests share one private Ray instance (2 CPUs, 8 *logical* GPUs) and train
the tiny preset for 2-3 epochs of 2 steps on 40 real XANESNET spectra.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import optuna
import pandas as pd
import pytest

from search import runner
from search.results import epoch_columns, part_path, trial_columns, write_part
from search.run import build_parser, run_search
from search.spaces import spaces
from xane3.config import Config, with_overrides

FAST = {"train.max_steps_per_epoch": 2}


@pytest.fixture(scope="module")
def ray8():
    """One private Ray instance for this module: 2 CPUs and 8 logical GPUs (no CUDA here)."""
    import ray

    if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) < 8:
        ray.shutdown()  # another module's instance: not the shape these tests need
    started = runner.init_ray(None, gpus=8, num_cpus=2)
    yield
    if started:
        ray.shutdown()


def _search(tmp: Path, db: Path, name: str, **kw) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    args = dict(space="optim", trials=3, cpus_per_trial=1.0, max_epochs=2, data=str(db),
                preset="tiny", extra=FAST, name=name, results_dir=tmp / "results",
                experiments_dir=tmp / "runs", verbose=0)
    args.update(kw)
    exp_dir = run_search(**args)
    trials = pd.read_parquet(tmp / "results" / "trials.parquet")
    epochs = pd.read_parquet(tmp / "results" / "epochs.parquet")
    return exp_dir, trials, epochs


# --- no Ray ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(spaces()))
def test_space_samples_are_valid_overrides(name):
    """Every sample is an override dict with_overrides accepts; m1, m2 only when tensorial."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(25):
        trial = study.ask()
        overrides = spaces()[name](trial)
        with_overrides(Config(), overrides)
        if "model.tensorial" in trial.params:
            tensorial = trial.params["model.tensorial"]
            assert ("model.m1" in trial.params) == tensorial
            assert ("model.m2" in trial.params) == tensorial
            if not tensorial:
                assert overrides["model.m1"] == overrides["model.m2"] == 0
        study.tell(trial, 1.0)


def test_help_lists_spaces_and_parameters():
    text = build_parser().format_help()
    for space in spaces().values():
        assert f"{space.name}:" in text
        for p in space.params:
            assert p.name in text
    for flag in ("--space", "--trials", "--gpus", "--gpus-per-trial", "--cpus-per-trial",
                 "--max-epochs", "--scheduler", "--data", "--name", "--resume", "--address",
                 "--storage", "--wandb", "--seed"):
        assert flag in text


def test_tables_read_with_pandas_across_experiments_and_null_columns(tmp_path):
    """A column all-null in one part file and a string in another still reads, by glob too."""
    res = tmp_path / "results"
    ok = {"trial_id": "a1", "status": "completed", "best_val_objective": 1.5, "model.m0": 8}
    bad = {"trial_id": "b1", "status": "failed", "error": "TrainingDiverged: nan", "pid": 7}
    write_part([ok], trial_columns(), part_path(res, "trials", "exp-a", "a1"))
    write_part([bad], trial_columns(), part_path(res, "trials", "exp-b", "b1"))
    write_part([{"trial_id": "a1", "epoch": 0, "val_total": 2.0}], epoch_columns(),
               part_path(res, "epochs", "exp-a", "a1"))
    (part_path(res, "trials", "exp-a", "x").parent / ".a1.parquet.123.tmp").write_bytes(b"half")
    df = pd.read_parquet(res / "trials.parquet")
    assert sorted(df["experiment"].astype(str)) == ["exp-a", "exp-b"]
    assert df.set_index("trial_id").loc["b1", "error"] == "TrainingDiverged: nan"
    assert pd.isna(df.set_index("trial_id").loc["a1", "error"])
    tables = {Path(p).name: pd.read_parquet(p) for p in sorted(res.glob("*.parquet"))}
    assert set(tables) == {"trials.parquet", "epochs.parquet"}
    assert len(tables["epochs.parquet"]) == 1


def test_sqlite_refused_for_parallel_trials(tmp_path):
    from search.optuna_setup import make_storage

    with pytest.raises(ValueError, match="SQLite"):
        make_storage(f"sqlite:///{tmp_path}/o.db", tmp_path, parallel=2)


# --- Ray -------------------------------------------------------------------------------
def test_search_on_cpu_writes_tables(ray8, tmp_path, small_real_db):
    exp_dir, trials, epochs = _search(tmp_path, small_real_db, "cpu-search")
    assert len(trials) == 3 and trials["trial_id"].is_unique
    assert set(trials["status"]) <= {"completed", "stopped_early"}
    assert (trials["experiment"].astype(str) == "cpu-search").all()
    assert (trials["device"] == "cpu").all() and (trials["gpu_ids"] == "").all()
    assert trials["git_commit"].str.len().gt(0).all()
    assert trials["wall_time_s"].gt(0).all()
    # a trial ASHA stopped ran an epoch: its size and best epoch are known (were NaN)
    assert trials["n_parameters"].gt(0).all() and trials["best_epoch"].notna().all()
    for key in ("train.lr", "train.weight_decay", "train.batch_size", "model.m0", "data.db"):
        assert key in trials.columns and trials[key].notna().all()
    done = trials[trials["status"] == "completed"]
    assert len(done) and done["test_total"].notna().all() and (done["epochs_run"] == 2).all()
    assert epochs.groupby("trial_id")["epoch"].apply(lambda e: list(e) == list(range(len(e)))).all()
    assert set(epochs["trial_id"]) == set(trials["trial_id"])
    # Optuna study on the journal file: one finished trial per row, numbers match
    study = optuna.load_study(study_name="cpu-search", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(exp_dir / "optuna.journal"))))
    assert sorted(t.number for t in study.trials) == sorted(trials["optuna_trial"])
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    # one offline W&B run per trial, each in its own directory, finished (ASHA-stopped too)
    for tid in trials["trial_id"]:
        (run,) = (exp_dir / "wandb" / tid / "wandb").glob("offline-run-*")
        assert list(run.glob("*.wandb"))
        assert "all finished" in (exp_dir / "wandb" / tid / "wandb" / "debug-internal.log").read_text()
    _run_readme_one_liners(tmp_path / "results", "cpu-search")
    # the report a user opens: PNG + Markdown from the same tables
    from search.report import main as report_main

    assert report_main(["cpu-search", "--experiments-dir", str(tmp_path / "runs")]) == 0
    md = (exp_dir / "report" / "report.md").read_text()
    assert md.count("| ") > 3 and all(t in md for t in trials["trial_id"])
    assert (exp_dir / "report" / "report.png").stat().st_size > 10_000
    assert report_main(["cpu-search", "--experiments-dir", str(tmp_path / "runs"), "--metric",
                        "val_spectrm"]) == 2  # a typo, not an empty learning-curve panel
    # best_config.json is what `python -m xane3.train --config` reads
    from xane3.train.__main__ import build_config

    best = trials.loc[trials["best_val_objective"].idxmin()]
    cfg = Config.load(exp_dir / "best_config.json")
    assert cfg.train.lr == pytest.approx(best["train.lr"]) and cfg.train.device == "auto"
    cli = argparse.Namespace(config=str(exp_dir / "best_config.json"), preset=None, experiment=None, db=None,
                             epochs=None, set=None)  # what `--config FILE` alone parses to
    assert build_config(cli).to_dict() == cfg.to_dict()


def _run_readme_one_liners(results: Path, experiment: str) -> None:
    """results/README.md's pandas block runs as written against real tables."""
    import matplotlib

    matplotlib.use("Agg")
    text = (Path(__file__).resolve().parents[2] / "results" / "README.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"results/', f'"{results}/').replace("irreps_basis-20260101-120000", experiment)
    env: dict = {}
    exec(compile(code, "results/README.md", "exec"), env)  # noqa: S102 - our own README
    assert len(env["trials"]) and len(env["epochs"])


@pytest.mark.filterwarnings("ignore:Fixed parameter")
def test_failed_trials_are_rows_and_the_search_goes_on(ray8, tmp_path, small_real_db):
    """Trial 0 diverges (lr=1e6 -> NaN loss), trial 1 raises (0 layers), trial 2 trains."""
    small = {"model.tensorial": False, "model.m0": 16, "model.num_layers": 2, "train.lr": 1e-3,
             "basis.learn": "centers", "model.n_gaussians": 50}
    enqueue = [{**small, "train.lr": 1e6}, {**small, "model.num_layers": 0}, small]
    exp_dir, trials, _ = _search(tmp_path, small_real_db, "failures", space="irreps_basis",
                                 scheduler="none", enqueue=enqueue)
    rows = trials.set_index("optuna_trial").sort_index()
    assert list(rows["status"]) == ["failed", "failed", "completed"]
    assert "TrainingDiverged" in rows.loc[0, "error"] and "nan" in rows.loc[0, "error"]
    assert "num_layers must be >= 1" in rows.loc[1, "error"]
    assert rows.loc[0, "train.lr"] == 1e6 and rows.loc[2, "model.m1"] == 0
    assert (rows["device"] == "cpu").all() and rows["node_id"].notna().all()
    assert pd.isna(rows.loc[2, "error"]) and rows.loc[2, "best_val_objective"] > 0
    study = optuna.load_study(study_name="failures", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(exp_dir / "optuna.journal"))))
    states = [t.state.name for t in sorted(study.trials, key=lambda t: t.number)]
    assert states == ["FAIL", "FAIL", "COMPLETE"]
    assert json.loads(Path(exp_dir / "best_config.json").read_text())["train"]["lr"] == 1e-3


def test_quarter_gpu_trials_pack_four_per_logical_gpu(ray8):
    """--gpus-per-trial 0.25 on 8 logical GPUs: 32 trials fit, and 8 such Ray tasks run at
    once, each seeing one GPU id (shared by at most 4) as its CUDA_VISIBLE_DEVICES."""
    import ray

    assert runner.concurrency(40, gpus_per_trial=0.25, cpus_per_trial=0.0625) == 32
    assert runner.concurrency(40, gpus_per_trial=0.25, cpus_per_trial=0.25) == 8  # CPUs bind
    with pytest.raises(ValueError, match="needs 1 CPU and 9 GPU"):
        runner.concurrency(1, gpus_per_trial=9, cpus_per_trial=1)

    @ray.remote(num_cpus=0)
    class Barrier:
        def __init__(self):
            self.arrived = 0

        def arrive(self):
            self.arrived += 1

        def count(self):
            return self.arrived

    @ray.remote(num_cpus=0.125, num_gpus=0.25)
    def trial(barrier, n):
        import os
        import time

        ray.get(barrier.arrive.remote())
        t0 = time.time()
        while ray.get(barrier.count.remote()) < n and time.time() - t0 < 60:
            time.sleep(0.05)
        return ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES"), ray.get(barrier.count.remote())

    barrier = Barrier.remote()
    out = ray.get([trial.remote(barrier, 8) for _ in range(8)], timeout=120)
    assert all(seen == 8 for _, _, seen in out), "the 8 quarter-GPU tasks did not run at once"
    ids = pd.Series([int(g[0]) for g, _, _ in out])
    assert all(len(g) == 1 for g, _, _ in out) and ids.between(0, 7).all()
    assert ids.value_counts().max() <= 4
    assert [str(int(g[0])) for g, _, _ in out] == [cvd for _, cvd, _ in out]


@pytest.mark.slow
def test_eight_logical_gpus_run_eight_trials_at_once(ray8, tmp_path, small_real_db, capfd):
    exp_dir, trials, _ = _search(tmp_path, small_real_db, "gpu8", trials=8, gpus=8,
                                 gpus_per_trial=0.25, cpus_per_trial=0.125, max_epochs=3,
                                 scheduler="none")
    assert "WARNING: --gpus 8 but only 0 CUDA device(s)" in capfd.readouterr().err
    assert len(trials) == 8 and (trials["status"] == "completed").all()
    assert (trials["device"] == "cpu").all()  # no CUDA: the trainer fell back to CPU
    ids = trials["gpu_ids"].astype(int)
    assert ids.between(0, 7).all() and ids.value_counts().max() <= 4  # 0.25 GPU each
    assert (trials["cuda_visible_devices"] == trials["gpu_ids"]).all()
    events = sorted([(t, 1) for t in trials["started_at"]] + [(t, -1) for t in trials["last_report_at"]],
                    key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak >= 8, f"at most {peak} trials ran at once"


@pytest.mark.slow
def test_trials_that_ran_their_whole_budget_are_completed_with_test_metrics(ray8, tmp_path, small_real_db):
    """Issue 17: with a 1-epoch budget ASHA's first rung is the last epoch; a trial stopped
    there had run everything yet was recorded stopped_early/scheduler with NaN test metrics."""
    _, trials, epochs = _search(tmp_path, small_real_db, "one-epoch", trials=3, max_epochs=1,
                                space="irreps_basis", extra={**FAST, "model.m0": 8})
    assert (trials["status"] == "completed").all(), trials[["status", "stopped_by"]]
    for col in ("test_total", "test_spectrum", "n_parameters", "best_epoch"):
        assert trials[col].notna().all(), col
    assert (trials["epochs_run"] == 1).all()
    assert sorted(epochs["trial_id"]) == sorted(trials["trial_id"])  # the last epoch's row too


def test_a_set_value_the_space_samples_is_refused(capsys):
    """Issue 17: --set train.lr=1e6 with a space that samples train.lr ran the sampled lrs while
    experiment.json recorded 1e6."""
    from search.run import main

    assert main(["--space", "optim", "--set", "train.lr=1e6", "--preset", "tiny"]) == 2
    assert "--set train.lr: the space 'optim' samples it" in capsys.readouterr().err
    assert {"model.m1", "model.learn_widths", "train.lr"} <= spaces()["irreps_basis"].keys()
    assert {"model.m0", "data.r_max", "model.tensor_product"} <= spaces()["molecules"].keys()


@pytest.mark.slow
def test_search_whose_every_trial_failed_exits_non_zero(tmp_path, capsys):
    """Issue 17: a search whose every trial failed exited 0."""
    import sqlite3

    from search.run import main

    foreign = tmp_path / "foreign.db"  # every trial's data loading refuses it
    with sqlite3.connect(foreign) as con:
        con.execute("CREATE TABLE t (x)")
    rc = main(["--space", "optim", "--trials", "1", "--preset", "tiny", "--data", str(foreign),
               "--name", "all-fail", "--results-dir", str(tmp_path / "results"),
               "--experiments-dir", str(tmp_path / "runs"), "--wandb", "disabled", "--quiet"])
    assert rc == 1 and "no trial of all-fail finished" in capsys.readouterr().err


def test_cost_estimate_from_the_first_epoch(capsys):
    """Issue 17: a 'tiny' search took 598 s with nothing saying so; the first epoch's time
    gives an estimate for the whole search, printed once."""
    from search.table_writer import CostEstimate

    est = CostEstimate(trials=8, epochs=3, parallel=2)
    est.on_trial_result(0, [], None, {"epoch_time_s": 300.0})
    est.on_trial_result(0, [], None, {"epoch_time_s": 10.0})
    out = capsys.readouterr().out
    assert out.count("cost estimate") == 1 and "~1.00 h" in out
