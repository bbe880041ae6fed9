"""train.ema_decay: the weight average is what is validated and saved as best, and resumes."""

from __future__ import annotations

import pytest

from xane3.config import Config, with_overrides
from xane3.data.dataset import XASDataset
from xane3.overlays import preset
from xane3.train import fit
from xane3.train.callbacks import Callback, StopTraining
from xane3.train.checkpoint import read_checkpoint


@pytest.fixture(scope="module")
def real_ds(xanesnet_records):
    return XASDataset.from_records(xanesnet_records, with_overrides(Config(), preset("tiny")).data)


def tiny(**extra) -> Config:
    return with_overrides(Config(), {**preset("tiny"), "train.max_steps_per_epoch": 3,
                                     "train.lr": 3e-3, "train.patience": 50, **extra})


def _differ(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].is_floating_point() and a[k].numel())


def test_best_is_the_average_not_the_raw_weights(real_ds, tmp_path) -> None:
    run = fit(tiny(**{"train.epochs": 2, "train.ema_decay": 0.9}), real_ds, tmp_path / "ema",
              progress=False)
    last, best = read_checkpoint(tmp_path / "ema" / "last.pt"), read_checkpoint(run.checkpoint)
    avg = {k.removeprefix("module."): v for k, v in last["ema"].items() if k.startswith("module.")}
    steps = int(next(iter(last["optimizer"]["state"].values()))["step"])
    assert steps >= 2 and int(last["ema"]["n_averaged"]) == steps  # one update per optimiser step
    if run.best_epoch == 1:  # best.pt is the last epoch's average, not its raw weights
        assert _differ(best["model"], avg) == 0.0
    assert _differ(last["model"], avg) > 0  # the raw weights trained on past the average
    off = fit(tiny(**{"train.epochs": 2}), real_ds, tmp_path / "off", progress=False)
    assert "ema" not in read_checkpoint(tmp_path / "off" / "last.pt")
    assert off.history[0]["val_total"] != run.history[0]["val_total"]


def test_resume_continues_the_average(real_ds, tmp_path) -> None:
    class StopAfter(Callback):
        def on_epoch_end(self, epoch, metrics, checkpoint):
            if epoch == 1:
                raise StopTraining

    cfg = tiny(**{"train.ema_decay": 0.8, "train.epochs": 3})
    whole = fit(cfg, real_ds, tmp_path / "whole", progress=False)
    fit(cfg, real_ds, tmp_path / "piece", callbacks=[StopAfter()], progress=False)
    more = fit(cfg, real_ds, tmp_path / "piece", resume=True, progress=False)
    assert more.history[-1]["val_total"] == pytest.approx(whole.history[-1]["val_total"], rel=1e-6)
    a = read_checkpoint(tmp_path / "whole" / "last.pt")["ema"]
    b = read_checkpoint(tmp_path / "piece" / "last.pt")["ema"]
    assert int(b["n_averaged"]) == int(a["n_averaged"]) and _differ(a, b) < 1e-6


def test_decay_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match="ema_decay"):
        with_overrides(Config(), {"train.ema_decay": 1.0})
