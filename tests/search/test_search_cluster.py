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

REPO = Path(__file__).resolve().parents[2]
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


def _epochs_of_running(trials: pd.DataFrame, epochs: pd.DataFrame) -> pd.Series:
    """Epochs recorded so far per trial the tables call running."""
    running = set(trials.loc[trials["status"] == "running", "trial_id"])
    return epochs[epochs["trial_id"].isin(running)].groupby("trial_id")["epoch"].count()


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
    """SIGKILL the driver mid-search (2 trials done, one mid-training); --resume ends every
    trial exactly once, the interrupted one continuing from its checkpoint, study intact."""
    n, epochs_per_trial = 8, 4
    cmd = _cli(tmp_path, small_real_db, "resume", "--trials", str(n), "--max-epochs",
               str(epochs_per_trial), "--scheduler", "none", "--cpus-per-trial", "1", "--seed", "3")
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    res = tmp_path / "results"
    try:
        deadline, seen = time.time() + 600, False
        while time.time() < deadline and first.poll() is None and not seen:
            time.sleep(0.3)
            if not (res / "epochs.parquet").exists():
                continue
            # the tables are read while the search writes them
            done, ep = pd.read_parquet(res / "trials.parquet"), pd.read_parquet(res / "epochs.parquet")
            if done.empty or ep.empty:  # a new table's folder before its first file is renamed in
                continue
            seen = (done["status"] == "completed").sum() >= 2 and \
                _epochs_of_running(done, ep).between(1, 2).any()
        assert first.poll() is None, "the search ended before it could be killed:\n" + \
            (tmp_path / "first.log").read_text()[-3000:]
        first.send_signal(signal.SIGKILL)
        killed_at = pd.Timestamp.now(tz="UTC")
        first.wait(30)
    finally:
        time.sleep(2)
        _kill_session(first.pid)
        log.close()
    # the trial mid-training is chosen from the tables as the killed driver left them: one
    # seen at 1-2 epochs above may have finished in the moment before the kill
    done, ep = pd.read_parquet(res / "trials.parquet"), pd.read_parquet(res / "epochs.parquet")
    counts = _epochs_of_running(done, ep)
    mids = counts[counts.between(1, epochs_per_trial - 1)]
    assert not mids.empty, f"no trial was mid-training at the kill: {counts.to_dict()}"
    midway = mids.index[0]

    out = subprocess.run([*cmd, "--resume"], cwd=REPO, env=ENV, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    trials = pd.read_parquet(res / "trials.parquet")
    epochs = pd.read_parquet(res / "epochs.parquet")
    resumed = trials[~trials["error"].fillna("").str.startswith("orphaned")]
    assert len(resumed) == n and trials["trial_id"].is_unique
    assert (resumed["status"] == "completed").all(), resumed[["trial_id", "status", "error"]]
    assert (trials["status"] != "running").all()
    for tid in resumed["trial_id"]:  # every epoch exactly once, none lost, none doubled
        assert sorted(epochs.loc[epochs["trial_id"] == tid, "epoch"]) == list(range(epochs_per_trial))
    assert set(done.loc[done["status"] == "completed", "trial_id"]) <= set(resumed["trial_id"])
    # the trial killed mid-training continued from its checkpoint: early epochs not re-run
    mid = epochs[epochs["trial_id"] == midway].set_index("epoch")["reported_at"]
    assert mid[0] < killed_at < mid[epochs_per_trial - 1], (str(killed_at), mid.to_dict())
    assert resumed.set_index("trial_id").loc[midway, "starts"] == 2, resumed[["trial_id", "starts"]]
    # the Optuna study: nothing left RUNNING, one COMPLETE trial per row, same values
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
