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


def test_a_new_experiment_refuses_a_name_with_rows_left(tmp_path) -> None:
    """The run folder deleted, its rows kept: a new run of that name would be averaged with them."""
    from search.results import part_path, write_part

    results = tmp_path / "results"
    write_part([{"trial_id": "old"}], {"trial_id": __import__("pyarrow").string()},
               part_path(results, "ablations", "paper", "old"))
    with pytest.raises(FileExistsError, match="earlier experiment 'paper'"):
        runner.prepare("paper", tmp_path / "runs", False, results, ("ablations", "ablations_epochs"))
    assert not (tmp_path / "runs" / "paper").exists()
    assert runner.prepare("paper", tmp_path / "runs", False, results, ("trials", "epochs"))  # other table


def test_a_journal_storage_is_kept_as_an_absolute_path(tmp_path, monkeypatch) -> None:
    from search.resume import journal_path
    from search.run import default_name

    monkeypatch.chdir(tmp_path)
    assert journal_path("my.journal") == str(tmp_path / "my.journal")
    assert journal_path("postgresql://h/db") == "postgresql://h/db" and journal_path(None) is None
    assert default_name("/some/where/myspace.yaml").startswith("myspace-")
    runner.check_name(default_name("/some/where/myspace.yaml"))


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


def test_a_signature_vouches_for_its_own_folder_only(tmp_path) -> None:
    """Copied beside a crafted tuner.pkl in a folder of the same name, a user's signature is
    refused; a folder the user moved is vouched for again with search.trust."""
    import shutil

    mine, theirs = tmp_path / "a" / "ablations-cpu", tmp_path / "b" / "ablations-cpu"
    runner.Experiment(name="ablations-cpu", kind="trials", base={}, max_epochs=1).save(mine)
    assert oct((mine / claim.SIGNATURE).stat().st_mode & 0o777) == "0o600"
    shutil.copytree(mine, theirs)
    claim.verify(mine)
    with pytest.raises(claim.UntrustedExperiment, match="moved or copied here"):
        claim.verify(theirs)
    claim.trust(theirs)
    claim.verify(theirs)


def test_own_experiment_verifies_and_group_writable_does_not(tmp_path) -> None:
    exp = tmp_path / "mine"
    runner.Experiment(name="mine", kind="search", base={}, max_epochs=1).save(exp)
    claim.verify(exp)
    exp.chmod(0o777)
    with pytest.raises(claim.UntrustedExperiment, match="writable by other users"):
        claim.verify(exp)


def test_importing_the_search_package_leaves_the_environment_alone() -> None:
    """Issue 17/15: search/runner.py set RAY_AUTH_MODE=disabled (and more) at import."""
    code = ("import os, ray, ray.tune, optuna, wandb; before = dict(os.environ); "  # theirs, not ours
            "import search.run, search.runner, ablations.run; "
            "print(sorted(set(os.environ.items()) ^ set(before.items())))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TUNE_"))})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_private_ray_instance_refuses_a_client_without_its_token(tmp_path) -> None:
    """Ray 2.60 listens on every interface, so the private instance requires a token."""
    code = """
import os, subprocess, sys
from search import runner
import ray
runner.init_ray(None, 0, 1)
addr = ray.get_runtime_context().gcs_address
env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
env["HOME"] = sys.argv[1]
p = subprocess.run([sys.executable, "-c", f"import ray; ray.init(address='{addr}')"], env=env,
                   capture_output=True, text=True, timeout=150)
print(p.returncode, "InvalidAuthToken" in p.stderr)
ray.shutdown()
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         timeout=240, env=env)
    assert out.stdout.strip().splitlines()[-1] == "1 True", out.stdout[-500:] + out.stderr[-2000:]


def test_trust_signs_an_unsigned_folder_of_this_user_only(tmp_path) -> None:
    """A search made before signatures (2026-12) could not be resumed at all; the refusal names
    ``python -m search.trust``, which signs the user's own folder and nothing else."""
    from search.trust import main

    exp = tmp_path / "old"
    (exp / "tune").mkdir(parents=True)
    (exp / "experiment.json").write_text(json.dumps({"name": "old", "kind": "search"}))
    with pytest.raises(claim.UntrustedExperiment, match=f"python -m search.trust {exp}"):
        claim.verify(exp)
    (exp / "tune").chmod(0o777)
    assert main([str(exp)]) == 1 and not (exp / claim.SIGNATURE).exists()
    (exp / "tune").chmod(0o755)
    assert main([str(tmp_path)]) == 1  # not an experiment folder
    assert main([str(exp)]) == 0
    claim.verify(exp)


def test_path_keys_from_any_source_are_made_absolute_and_checked(tmp_path, monkeypatch) -> None:
    """Trials run in their own folders: a relative --set data.db=... would be missing there."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fe.db").write_bytes(b"")
    base = runner.base_overrides(None, None, None, None, {"data.db": "fe.db"})
    assert base["data.db"] == str(tmp_path / "fe.db")
    with pytest.raises(FileNotFoundError, match="train.init_from=nowhere/best.pt: no such file"):
        runner.base_overrides(None, None, None, None, {"train.init_from": "nowhere/best.pt"})
    with pytest.raises(FileNotFoundError, match="--data missing.db: no such database"):
        runner.base_overrides(None, "missing.db", None, None)


def test_resume_refuses_a_command_line_asking_for_another_search(tmp_path, monkeypatch, capsys) -> None:
    """--resume ran the stored experiment whatever else the command line said: --trials 64
    to extend a 16-trial search silently ran 16. Options given again must agree."""
    from search import resume
    from search.run import main

    monkeypatch.chdir(tmp_path)
    exp = runner.Experiment(name="s", kind="search", base={"train.epochs": 3, "train.seed": 1,
                                                           "model.m0": 8}, max_epochs=3, trials=16,
                            space="irreps_basis", seed=1, preset="cpu",
                            results_dir=str(tmp_path / "results"))
    exp.save(tmp_path / "runs" / "s")
    same = {"space": "irreps_basis", "trials": 16, "max_epochs": 3, "seed": 1, "preset": "cpu",
            "results_dir": "results", "extra": {"model.m0": 8}}
    assert resume.conflicts(exp, same) == []  # the starting command again, plus --resume
    assert resume.conflicts(exp, {}) == []    # --name and --resume alone
    assert resume.conflicts(exp, {"extra": {"model.m0": "8", "train.lr": "1e-3"}}) == []  # as typed
    # --seed wins over --set train.seed in a new run, so the command it started with still matches
    assert resume.conflicts(exp, {"seed": 1, "extra": {"train.seed": 5}},
                            lambda x: runner.base_overrides(None, None, 3, 1, x)) == []
    differs = resume.conflicts(exp, {**same, "trials": 64, "extra": {"model.m0": 16, "model.m1": 4}})
    assert differs == ["--trials 64 (started with 16)", "model.m0=16 (started with 8)",
                       "model.m1=4 (started with 16)"]
    assert resume.conflicts(exp, {"data": "my.db"}) == [
        f"--data {tmp_path / 'my.db'} (started with the embedded data set)"]
    rc = main(["--name", "s", "--resume", "--trials", "64", "--experiments-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and "--trials 64 (started with 16)" in err and "start a new --name" in err
    assert not (tmp_path / "runs" / "s" / "tune").exists()  # nothing ran


def test_many_processes_on_a_fresh_config_folder_read_one_key(tmp_path) -> None:
    """Issue 31: the key was checked for, then created: two first runs at once raised
    FileExistsError (3 of 30 tries) or read an empty key (1 of 30)."""
    from races import race

    for k in range(3):
        config = tmp_path / f"config{k}"
        outs = race("from search import claim", "print(claim._key().decode())", 12,
                    tmp_path / f"gate{k}", env={"XANE3_CONFIG_DIR": str(config)})
        assert len(set(outs)) == 1 and len(outs[0]) == 64, outs
        assert outs[0] == (config / "key").read_text() and [p.name for p in config.iterdir()] == ["key"]
