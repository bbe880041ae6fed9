"""Experiment folders: one driver at a time; resume only what this user's xane3 made."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import pytest

from search import claim, runner


@pytest.fixture(autouse=True)
def own_key(tmp_path, monkeypatch):
    monkeypatch.setenv("XANE3_CONFIG_DIR", str(tmp_path / "config"))


def test_a_second_driver_with_the_same_name_refuses(tmp_path) -> None:
    """Issue 17: two searches with one --name both ran in one folder (4 rows for 2 trials)."""
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        exp = tmp_path / "runs" / "same"
        exp.mkdir(parents=True)
        (exp / ".lock").write_text(str(holder.pid))  # what the first driver's claim wrote
        with pytest.raises(FileExistsError, match=f"in use by process {holder.pid}"):
            runner.prepare("same", tmp_path / "runs", resume=False)
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (kill -9): its stale lock is taken over
    assert runner.prepare("same", tmp_path / "runs", resume=False) == exp.resolve()
    assert (exp / ".lock").read_text() == str(os.getpid())


class _Marker:
    """Unpickling this writes a file: what a crafted tuner.pkl did (issue 17)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_resume_refuses_a_folder_it_did_not_make(tmp_path) -> None:
    exp = tmp_path / "runs" / "foreign"
    (exp / "tune").mkdir(parents=True)
    marker = tmp_path / "pwned"
    (exp / "tune" / "tuner.pkl").write_bytes(pickle.dumps(_Marker(str(marker))))
    (exp / "experiment.json").write_text(json.dumps({"name": "foreign", "kind": "search"}))
    with pytest.raises(claim.UntrustedExperiment, match="no valid .xane3-signature"):
        runner.prepare("foreign", tmp_path / "runs", resume=True)
    assert not marker.exists()
    # a signature made under another user's key does not pass either
    claim.sign(exp)
    os.environ["XANE3_CONFIG_DIR"] = str(tmp_path / "other-user")
    with pytest.raises(claim.UntrustedExperiment, match="does not match"):
        claim.verify(exp)


def test_own_experiment_verifies_and_group_writable_does_not(tmp_path) -> None:
    exp = tmp_path / "mine"
    runner.Experiment(name="mine", kind="search", base={}, max_epochs=1).save(exp)
    claim.verify(exp)
    exp.chmod(0o777)
    with pytest.raises(claim.UntrustedExperiment, match="writable by other users"):
        claim.verify(exp)
