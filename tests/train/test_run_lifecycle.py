"""A run's life beyond one fit: replacing it, resuming it after early stopping, what its log
records, what may ship (review findings of 2026-12-03, each reproduced before the fix)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from xane3.config import Config, with_overrides
from xane3.data.dataset import XASDataset
from xane3.overlays import preset
from xane3.train import fit
from xane3.train.checkpoint import package_checkpoint, read_checkpoint
from xane3.train.schedule import derivative_factor


@pytest.fixture(scope="module")
def real_ds(xanesnet_records):
    return XASDataset.from_records(xanesnet_records, with_overrides(Config(), preset("tiny")).data)


def tiny(**extra) -> Config:
    return with_overrides(Config(), {**preset("tiny"), "train.max_steps_per_epoch": 2, **extra})


def test_overwrite_keeps_the_old_run_until_the_new_one_can_start(real_ds, tmp_path) -> None:
    """--overwrite removed best.pt before reading the data or train.init_from, so a typo in the
    DB path, or a fine-tuning of the run in its own folder, destroyed the run."""
    cfg = tiny(**{"train.epochs": 1})
    fit(cfg, real_ds, tmp_path, progress=False)
    before = (tmp_path / "best.pt").read_bytes()
    with pytest.raises(FileNotFoundError):
        fit(tiny(**{"train.epochs": 1, "data.db": str(tmp_path / "none.db")}), None, tmp_path,
            progress=False, overwrite=True)
    assert (tmp_path / "best.pt").read_bytes() == before
    res = fit(tiny(**{"train.epochs": 1, "train.init_from": str(tmp_path / "best.pt")}), real_ds,
              tmp_path, progress=False, overwrite=True)  # fine-tuned in place: its source read first
    assert res.checkpoint.exists() and res.checkpoint.read_bytes() != before


def test_resume_after_early_stopping_trains_nothing_unless_patience_grows(real_ds, tmp_path, capsys) -> None:
    cfg = tiny(**{"train.epochs": 12, "train.patience": 1, "train.lr": 3e-2})
    first = fit(cfg, real_ds, tmp_path, progress=False)
    assert first.stopped_early
    n = len(first.history)
    again = fit(cfg, real_ds, tmp_path, resume=True, progress=False)
    assert again.stopped_early and len(pd.read_parquet(tmp_path / "metrics.parquet")) == n
    assert "stopped early" in capsys.readouterr().err
    longer = fit(with_overrides(cfg, {"train.patience": 3}), real_ds, tmp_path, resume=True, progress=False)
    assert len(longer.history) > n  # train.patience may change on resume, like train.epochs


def test_resume_on_another_device_setting_and_resume_overwrite_without_last(real_ds, tmp_path) -> None:
    cfg = tiny(**{"train.epochs": 2})
    fit(with_overrides(cfg, {"train.epochs": 1}), real_ds, tmp_path, progress=False)
    res = fit(with_overrides(cfg, {"train.device": "cpu", "train.num_threads": 1}), real_ds, tmp_path,
              resume=True, progress=False)  # 'auto' resumes anywhere; naming the device is no change
    assert len(res.history) == 2
    (tmp_path / "last.pt").unlink()
    res = fit(cfg, real_ds, tmp_path, resume=True, overwrite=True, progress=False)  # both: replace
    assert len(res.history) == 2 and (tmp_path / "last.pt").exists()


def test_the_logged_lr_is_the_one_the_epoch_trained_at(real_ds, tmp_path) -> None:
    """The lr column was read after the plateau step: one epoch ahead of the training."""
    from xane3.train.callbacks import Callback

    after = []  # the lr each epoch leaves to the next, as last.pt stores it

    class LeftLr(Callback):
        def on_epoch_end(self, epoch, metrics, checkpoint):
            after.append(read_checkpoint(checkpoint)["optimizer"]["param_groups"][0]["lr"])

    cfg = tiny(**{"train.epochs": 8, "train.plateau_patience": 1, "train.lr": 3e-2, "train.patience": 20})
    fit(cfg, real_ds, tmp_path, callbacks=[LeftLr()], progress=False)
    hist = pd.read_parquet(tmp_path / "metrics.parquet")
    assert len(set(after)) > 1, "the plateau never cut the lr: this check needs a run where it does"
    assert hist["lr"].tolist() == [3e-2, *after[:-1]]


def test_ramp_fractions_and_a_ramp_the_run_never_finishes() -> None:
    whole = [derivative_factor(e, 7, 5, 25) for e in range(6, 12)]
    assert [derivative_factor(e, 0.28, 0.2, 25) for e in range(6, 12)] == whole  # 0.28 x 25 = 7.0000...1
    from xane3.train.schedule import warn_unfinished_ramp

    with pytest.warns(UserWarning, match=r"full derivative weights from epoch 35, but "
                                         r"train.epochs=10: its last epoch trains them at 0.00"):
        warn_unfinished_ramp(with_overrides(Config(), {"train.epochs": 10}).train)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_unfinished_ramp(Config().train)  # the paper's 150 epochs: full from epoch 35
        warn_unfinished_ramp(with_overrides(Config(), {"train.epochs": 10, "train.lambda_grad": 0,
                                                       "train.lambda_curv": 0}).train)


def test_package_refuses_last_pt(real_ds, tmp_path) -> None:
    fit(tiny(**{"train.epochs": 1}), real_ds, tmp_path, progress=False)
    with pytest.raises(ValueError, match="last.pt .*package the run's best.pt"):
        package_checkpoint(tmp_path / "last.pt", tmp_path / "ship.pt")
    package_checkpoint(tmp_path / "best.pt", tmp_path / "ship.pt")
    assert "optimizer" not in read_checkpoint(tmp_path / "ship.pt")


def test_train_cli_missing_experiment_file_is_one_line(tmp_path, capsys) -> None:
    from xane3.train.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path / "r"), "--preset", "tiny", "--experiment", str(tmp_path / "no.yaml")])
    assert exc.value.code == 2 and "no.yaml" in capsys.readouterr().err


def test_threads_flag_and_a_hint_when_the_machine_is_busy(real_ds, small_real_db, tmp_path, capsys) -> None:
    """Issue 31: README promised train --threads (train.num_threads); a run slowed 12x beside
    another job said nothing. The hint names the load (here a load source reading 8 on 2 cores)."""
    import json

    from xane3.train.__main__ import main

    rc = main(["--db", str(small_real_db), "--preset", "tiny", "--out", str(tmp_path / "cli"), "--epochs", "1",
               "--threads", "1", "--quiet", "--set", "train.max_steps_per_epoch=1"])
    assert rc == 0 and json.loads((tmp_path / "cli/config.json").read_text())["train"]["num_threads"] == 1
    capsys.readouterr()
    from xane3.train.callbacks import SlowEpochHint

    fit(tiny(**{"train.epochs": 2}), real_ds, tmp_path / "busy", progress=False,
        callbacks=[SlowEpochHint(load=lambda: (8.0, 8.0, 8.0), cores=2)])
    err = capsys.readouterr().err
    assert err.count("hint: epoch 1 took") == 1 and "load average 8.0 on 2 cores" in err
    hint = SlowEpochHint(load=lambda: (1.0, 1.0, 1.0), cores=2)  # idle machine, one slow epoch
    for epoch, took in enumerate([2.0, 2.1, 9.0]):
        hint.on_epoch_end(epoch, {"epoch_time_s": took}, None)
    assert "hint: epoch 3 took 9.0 s, 4.5x the fastest (2.0 s); load average 1.0" in capsys.readouterr().err


def test_resume_names_a_changed_data_field(small_real_db, tmp_path) -> None:
    """Issue 31: a changed data.subset said "other data (hash ...)" and a changed split setting "the
    structures changed while the spectra did not?"; the field is named, as model.* and train.* are."""
    cfg = tiny(**{"train.epochs": 1, "data.db": str(small_real_db), "data.subset": 30})
    fit(cfg, None, tmp_path, progress=False)
    for key, value, said in [("data.subset", 20, "data.subset: 30 -> 20"),
                             ("data.split_seed", 1, "data.split_seed: 0 -> 1"),
                             ("data.val_fraction", 0.2, "data.val_fraction: 0.1 -> 0.2"),
                             ("data.split", "structure", "data.split: 'random' -> 'structure'")]:
        with pytest.raises(ValueError, match=re.escape(said)):
            fit(with_overrides(cfg, {key: value}), None, tmp_path, resume=True, progress=False)
