"""The training loop on real data: learning, determinism, resume, checkpoints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xane3.config import Config, with_overrides
from xane3.data.dataset import XASDataset
from xane3.overlays import preset
from xane3.train import fit, load_checkpoint
from xane3.train.checkpoint import read_checkpoint
from xane3.train.schedule import derivative_factor


@pytest.fixture(scope="module")
def real_ds(xanesnet_records):
    cfg = with_overrides(Config(), preset("tiny"))
    return XASDataset.from_records(xanesnet_records, cfg.data, name="xanesnet40")


def tiny(**extra) -> Config:
    return with_overrides(Config(), {**preset("tiny"), **extra})


def test_validation_loss_goes_down_on_real_data(real_ds, tmp_path) -> None:
    cfg = tiny(**{"train.epochs": 5, "train.lr": 3e-3})
    res = fit(cfg, real_ds, tmp_path, progress=False)
    hist = pd.read_parquet(tmp_path / "metrics.parquet")
    assert len(hist) == 5
    assert hist["val_spectrum"].iloc[-1] < 0.7 * hist["val_spectrum"].iloc[0]
    assert res.best_val_total == pytest.approx(hist["val_total"].min())
    # the derivative ramp happened inside the run
    assert hist["deriv_factor"].iloc[0] == 0 and hist["deriv_factor"].iloc[-1] == 1
    assert {"train_spectrum", "train_gradient", "val_gradient_weighted", "val_e0_mae_ev"} <= set(hist)
    # issue 15: the names the search's tables keep are the ones the trainer reports, all of them
    from xane3.objective import EPOCH_METRICS, EVAL_TERMS

    assert set(hist) - {"epoch"} == set(EPOCH_METRICS)
    assert set(res.test) == set(EVAL_TERMS)


def test_deterministic_and_resumable(real_ds, tmp_path) -> None:
    """Same seed, same numbers; a run stopped after epoch 2 and resumed matches an unbroken one."""
    from xane3.train.callbacks import Callback, StopTraining

    cfg = tiny(**{"train.epochs": 3, "train.max_steps_per_epoch": 2})
    a = fit(cfg, real_ds, tmp_path / "a", progress=False)
    b = fit(cfg, real_ds, tmp_path / "b", progress=False)
    assert [h["val_total"] for h in a.history] == [h["val_total"] for h in b.history]

    class StopAfter(Callback):
        def on_epoch_end(self, epoch, metrics, checkpoint):
            if epoch == 1:
                raise StopTraining

    part = fit(cfg, real_ds, tmp_path / "part", callbacks=[StopAfter()], progress=False)
    assert len(part.history) == 2 and part.stopped_early
    resumed = fit(cfg, real_ds, tmp_path / "part", resume=True, progress=False)
    assert len(resumed.history) == 3
    np.testing.assert_allclose([h["val_total"] for h in resumed.history],
                               [h["val_total"] for h in a.history], rtol=1e-6)
    assert len(pd.read_parquet(tmp_path / "part" / "metrics.parquet")) == 3
    other = tiny(**{"train.epochs": 3, "train.max_steps_per_epoch": 2, "train.lr": 1e-4})
    with pytest.raises(ValueError, match=r"config differs .*train.lr: [0-9.e-]+ -> 0.0001"):
        fit(other, real_ds, tmp_path / "part", resume=True, progress=False)
    with pytest.raises(ValueError, match=r"3 epochs already run; train.epochs=2"):
        fit(tiny(**{"train.epochs": 2, "train.max_steps_per_epoch": 2}), real_ds, tmp_path / "part",
            resume=True, progress=False)


def test_resume_extends_a_run_by_more_epochs(real_ds, tmp_path, capsys) -> None:
    """Issue 14: training a converging run longer is a resume with a larger train.epochs; the
    extended run equals one planned that long from the start (a ramp in whole epochs)."""
    cfg = tiny(**{"train.epochs": 4, "train.max_steps_per_epoch": 2, "train.ramp_start": 1,
                  "train.ramp_epochs": 2})
    whole = fit(cfg, real_ds, tmp_path / "whole", progress=False)
    fit(with_overrides(cfg, {"train.epochs": 2}), real_ds, tmp_path / "ext", progress=False)
    ext = fit(cfg, real_ds, tmp_path / "ext", resume=True, progress=False)
    assert "extending the run from 2 to 4 epochs (2 done)" in capsys.readouterr().err
    assert len(ext.history) == 4
    np.testing.assert_allclose([h["val_total"] for h in ext.history],
                               [h["val_total"] for h in whole.history], rtol=1e-6)
    assert read_checkpoint(tmp_path / "ext" / "last.pt")["config"].train.epochs == 4


def test_checkpoint_round_trip_and_mismatch(real_ds, tmp_path) -> None:
    res = fit(tiny(**{"train.epochs": 1, "train.max_steps_per_epoch": 1}), real_ds, tmp_path, progress=False)
    model = load_checkpoint(tmp_path / "best.pt")
    assert model.metadata.data_hash == real_ds.data_hash() and model.metadata.e0_trained
    assert sorted(sum(model.metadata.splits.values(), [])) == list(range(len(real_ds)))
    other = with_overrides(Config(), {**preset("tiny"), "model.m0": 12})
    with pytest.raises(ValueError, match="do not fit this model config"):
        load_checkpoint(tmp_path / "best.pt", config=other)
    same_shapes = with_overrides(Config(), {**preset("tiny"), "data.e_max": 200.0})
    with pytest.raises(ValueError, match="model.e_max=100.0"):  # loads, but on another grid
        load_checkpoint(tmp_path / "best.pt", config=same_shapes)
    assert res.device == "cpu"


def test_bad_checkpoint_file_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_checkpoint(bad)


@pytest.mark.parametrize("split", ["random", "structure"])
def test_splits_cover_every_spectrum_once(real_ds, split) -> None:
    from xane3.data.splits import split_indices

    s = split_indices(real_ds.group_labels(split), split, 0.1, 0.1, 0)
    assert sorted(s["train"] + s["val"] + s["test"]) == list(range(len(real_ds)))
    assert len(s["test"]) == pytest.approx(0.1 * len(real_ds), abs=1)


def test_derivative_schedule_in_epochs_and_fractions() -> None:
    assert derivative_factor(19, 20, 15, 150) == 0.0
    assert derivative_factor(20, 20, 15, 150) == pytest.approx(1 / 15)
    assert derivative_factor(34, 20, 15, 150) == 1.0
    assert derivative_factor(1, 0.25, 0.5, 8) == 0.0
    assert derivative_factor(5, 0.25, 0.5, 8) == 1.0


def test_diverging_run_raises(real_ds, tmp_path) -> None:
    from xane3.train import TrainingDiverged

    with pytest.raises(TrainingDiverged):
        fit(tiny(**{"train.epochs": 2, "train.lr": 1e12, "train.grad_clip": 0.0,
                    "train.max_steps_per_epoch": 2}), real_ds,
            tmp_path, progress=False)


@pytest.mark.parametrize("select_on", ["total", "spectrum"])
def test_select_on_drives_best_checkpoint(real_ds, tmp_path, select_on) -> None:
    """best.pt, early stopping and the plateau watch ``train.select_on``; best_val_total is
    the selected epoch's total either way."""
    cfg = tiny(**{"train.epochs": 4, "train.lr": 3e-3, "train.select_on": select_on,
                  "train.ramp_start": 0.0, "train.ramp_epochs": 0.5})
    res = fit(cfg, real_ds, tmp_path, progress=False)
    hist = pd.read_parquet(tmp_path / "metrics.parquet")
    best = int(hist[f"val_{select_on}"].idxmin())
    assert res.best_epoch == best
    assert res.best_val_total == pytest.approx(hist["val_total"].iloc[best])
    assert hist["best_val_selected"].iloc[-1] == pytest.approx(hist[f"val_{select_on}"].min())
    assert load_checkpoint(tmp_path / "best.pt").metadata.run["best_epoch"] == best


def test_select_on_rejects_unknown_metric() -> None:
    with pytest.raises(ValueError, match="train.select_on"):
        tiny(**{"train.select_on": "pearson"})


def test_an_earlier_run_is_never_silently_replaced(real_ds, tmp_path, capsys) -> None:
    """Issue 17: --out DIR without --resume replaced metrics.parquet, best.pt, last.pt."""
    cfg = tiny(**{"train.epochs": 1, "train.max_steps_per_epoch": 1})
    fit(cfg, real_ds, tmp_path, progress=False)
    before = (tmp_path / "best.pt").read_bytes()
    with pytest.raises(FileExistsError, match="holds an earlier run"):
        fit(cfg, real_ds, tmp_path, progress=False)
    assert (tmp_path / "best.pt").read_bytes() == before
    broken = tiny(**{"train.epochs": 1, "data.split": "facet"})  # fails before its first epoch
    with pytest.raises(ValueError, match="facet"):
        fit(broken, real_ds, tmp_path, progress=False, overwrite=True)
    assert (tmp_path / "best.pt").read_bytes() == before, "a run that never began removed the old one"
    from xane3.train import TrainingDiverged

    with pytest.raises(TrainingDiverged):  # stopped in its first epoch, after the old run was removed
        fit(tiny(**{"train.epochs": 1, "train.lr": 1e12, "train.grad_clip": 0.0}), real_ds, tmp_path,
            progress=False, overwrite=True)
    assert not any((tmp_path / n).exists() for n in ("best.pt", "last.pt", "test.json")), \
        "the replaced run's best.pt would be taken for the new run's"
    fit(cfg, real_ds, tmp_path, progress=False, overwrite=True)
    fit(cfg, real_ds, tmp_path / "new", resume=True, progress=False)
    assert "no last.pt to resume from; starting from scratch" in capsys.readouterr().err
    (tmp_path / "last.pt").unlink()  # deleted to save space: --resume must not start over on top
    with pytest.raises(FileExistsError, match="last.pt, which is missing"):
        fit(cfg, real_ds, tmp_path, resume=True, progress=False)
    assert (tmp_path / "best.pt").exists() and (tmp_path / "metrics.parquet").exists()


@pytest.mark.parametrize("key,value,message", [
    ("train.batch_size", "0", "train.batch_size=0: expected >= 1"),
    ("train.epochs", "-1", "train.epochs=-1: expected >= 1"),
    ("train.device", "tpu", "expected auto, cpu, cuda or cuda:N"),
    ("train.lr", "abc", "train.lr='abc': not a valid float"),
    ("data.val_fraction", "0.9", "together < 1"),
])
def test_nonsense_settings_are_refused_up_front(key, value, message) -> None:
    """Issue 17: batch_size=0 failed every trial with ZeroDivisionError; epochs=-1 exited 0."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        with_overrides(Config(), {key: value})


def test_unknown_key_suggests_the_nearest() -> None:
    with pytest.raises(KeyError, match="did you mean model.m0"):
        with_overrides(Config(), {"model.mo": 3})


def test_derived_model_keys_are_not_settable() -> None:
    """Issue 15: --set model.r_max=6 was accepted and silently ran 5 Å (overwritten from data.*)."""
    for key, source in [("model.r_max", "data.r_max"), ("model.n_points", "data.n_points")]:
        with pytest.raises(KeyError, match=f"{key} is derived from {source}"):
            with_overrides(Config(), {key: "7"})
    cfg = with_overrides(Config(), {"data.r_max": 6.0, "model.r_max": 6.0})  # a saved config's own
    assert cfg.model.r_max == 6.0 and Config.from_dict(cfg.to_dict()).model.r_max == 6.0


def test_config_file_with_a_non_object_section_is_one_line(tmp_path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"model": 5}')
    with pytest.raises(ValueError, match="'model' must be objects"):
        Config.load(path)


def test_cli_prints_test_figures_beside_the_mean_spectrum(small_real_db, tmp_path, capsys) -> None:
    import json

    from xane3.train.__main__ import main

    rc = main(["--db", str(small_real_db), "--preset", "tiny", "--out", str(tmp_path), "--epochs", "1",
               "--quiet", "--set", "train.max_steps_per_epoch=1"])
    out = capsys.readouterr().out
    assert rc == 0 and "mean spectrum" in out and "spectrum MSE" in out and "{" not in out
    saved = json.loads((tmp_path / "test.json").read_text())
    assert saved["mean_training_spectrum_test"]["spectrum"] > 0


def test_cli_unwritable_output_is_one_line(small_real_db, tmp_path, capsys) -> None:
    from xane3.train.__main__ import main

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rc = main(["--db", str(small_real_db), "--preset", "tiny", "--out", str(blocker / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and "Traceback" not in err


def test_cli_divergence_is_a_failed_job_and_device_is_a_flag(small_real_db, tmp_path, capsys) -> None:
    """Exit 1: the job ran and failed (README's exit-code rule); ``--device`` sets train.device."""
    import json

    from xane3.train.__main__ import main

    rc = main(["--db", str(small_real_db), "--preset", "tiny", "--out", str(tmp_path), "--epochs", "2",
               "--quiet", "--device", "cpu", "--set", "train.lr=1e12", "--set", "train.grad_clip=0",
               "--set", "train.max_steps_per_epoch=2"])
    assert rc == 1 and "error: " in capsys.readouterr().err
    assert json.loads((tmp_path / "config.json").read_text())["train"]["device"] == "cpu"


def test_an_empty_test_split_is_said_not_passed_off(real_ds, tmp_path) -> None:
    """data.test_fraction=0: the 'test' figures are another split's, and the run says so."""
    cfg = tiny(**{"data.test_fraction": 0.0, "train.epochs": 1, "train.max_steps_per_epoch": 1})
    with pytest.warns(UserWarning, match="test split of .* is empty .* are the val split's"):
        fit(cfg, real_ds, tmp_path / "run", progress=False)


def test_resume_refuses_data_that_now_split_differently(real_ds, tmp_path) -> None:
    """The data hash covers the spectra, not the structures' ids: re-ingested structures regroup
    a structure split while the hash stays, and a resume would train on held-out spectra."""
    import copy
    import dataclasses

    cfg = tiny(**{"train.epochs": 1, "train.max_steps_per_epoch": 1, "data.split": "structure"})
    fit(cfg, real_ds, tmp_path, progress=False)
    regrouped = copy.copy(real_ds)
    regrouped.samples = [dataclasses.replace(s, meta={**s.meta, "structure_id": f"g{i // 4}"})
                         for i, s in enumerate(real_ds.samples)]
    assert regrouped.data_hash() == real_ds.data_hash()
    with pytest.raises(ValueError, match="split differently"):
        fit(cfg, regrouped, tmp_path, resume=True, progress=False)
