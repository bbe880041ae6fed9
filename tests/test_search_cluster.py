"""search/ across processes: a two-node Ray cluster, and resuming after the driver is killed.

Both drive the real CLI (``python -m search.run``) in a subprocess, as users do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import psutil
import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "RAY_AUTH_MODE": "disabled",
       "RAY_USAGE_STATS_ENABLED": "0", "WANDB_SILENT": "true"}


def _cli(tmp: Path, db: Path, name: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "search.run", "--space", "optim", "--preset", "tiny",
            "--set", "train.max_steps_per_epoch=2", "--data", str(db), "--name", name,
            "--results-dir", str(tmp / "results"), "--experiments-dir", str(tmp / "runs"),
            "--quiet", *extra]


def _kill_session(sid: int) -> None:
    """SIGKILL what is left of a killed driver's session (its Ray processes), by pid."""
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getsid(proc.pid) == sid:
                proc.kill()
        except (ProcessLookupError, psutil.Error, PermissionError):
            pass


def test_two_node_cluster_runs_trials_on_both_nodes(tmp_path, small_real_db):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        cluster.wait_for_nodes()
        cmd = _cli(tmp_path, small_real_db, "two-nodes", "--trials", "4", "--max-epochs", "2",
                   "--scheduler", "none", "--cpus-per-trial", "1", "--wandb", "disabled",
                   "--address", cluster.address)
        out = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stderr[-3000:]
    finally:
        cluster.shutdown()
    trials = pd.read_parquet(tmp_path / "results" / "trials.parquet")
    assert len(trials) == 4 and (trials["status"] == "completed").all()
    assert trials["node_id"].nunique() == 2, trials[["trial_id", "node_id"]]
    assert trials["node_ip"].notna().all()


@pytest.mark.slow
def test_resume_after_killing_the_driver(tmp_path, small_real_db):
    """SIGKILL the driver once 2 of 6 trials are done; --resume ends each trial exactly once."""
    n = 6
    cmd = _cli(tmp_path, small_real_db, "resume", "--trials", str(n), "--max-epochs", "3",
               "--scheduler", "none", "--cpus-per-trial", "1", "--seed", "3")
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    table = tmp_path / "results" / "trials.parquet"
    done = pd.DataFrame()
    try:
        deadline = time.time() + 600
        while time.time() < deadline and first.poll() is None:
            time.sleep(1.0)
            if table.exists():  # the table is read while the search writes it
                done = pd.read_parquet(table)
                if (done["status"] == "completed").sum() >= 2:
                    break
        assert first.poll() is None, "the search ended before it could be killed"
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        time.sleep(2)
        _kill_session(first.pid)
        log.close()
    assert (done["status"] == "completed").sum() >= 2
    before = pd.read_parquet(table)
    assert (before["status"] == "running").any() or len(before) < n

    out = subprocess.run([*cmd, "--resume"], cwd=REPO, env=ENV, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    trials = pd.read_parquet(table)
    epochs = pd.read_parquet(tmp_path / "results" / "epochs.parquet")
    resumed = trials[~trials["error"].fillna("").str.startswith("orphaned")]
    assert len(resumed) == n and trials["trial_id"].is_unique
    assert (resumed["status"] == "completed").all(), resumed[["trial_id", "status", "error"]]
    assert (trials["status"] != "running").all()
    for tid in resumed["trial_id"]:  # every epoch exactly once, none lost, none doubled
        assert sorted(epochs.loc[epochs["trial_id"] == tid, "epoch"]) == [0, 1, 2]
    finished_first = set(done.loc[done["status"] == "completed", "trial_id"])
    assert finished_first <= set(resumed["trial_id"])
    # the Optuna study: nothing left RUNNING, one COMPLETE trial per completed row, same values
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(tmp_path / "runs" / "resume" / "optuna.journal")))
    study = optuna.load_study(study_name="resume", storage=storage)
    by_number = {t.number: t for t in study.trials}
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    assert resumed["optuna_trial"].is_unique
    for _, row in resumed.iterrows():
        t = by_number[int(row["optuna_trial"])]
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert t.value == pytest.approx(row["best_val_objective"], rel=1e-6)
    extra = set(by_number) - set(resumed["optuna_trial"].astype(int))
    assert all(by_number[k].user_attrs.get("orphaned") for k in extra)
    assert (tmp_path / "runs" / "resume" / "best_config.json").exists()
