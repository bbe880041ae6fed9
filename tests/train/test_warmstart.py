"""train.init_from: a run starts from a checkpoint's weights, or says why it cannot."""

from __future__ import annotations

import pytest

from xane3.config import Config, with_overrides
from xane3.data.dataset import XASDataset
from xane3.overlays import preset
from xane3.train import fit
from xane3.train.checkpoint import read_checkpoint


@pytest.fixture(scope="module")
def real_ds(xanesnet_records):
    return XASDataset.from_records(xanesnet_records, with_overrides(Config(), preset("tiny")).data)


def tiny(**extra) -> Config:
    return with_overrides(Config(), {**preset("tiny"), "train.max_steps_per_epoch": 2, **extra})


def test_warm_start_begins_where_the_checkpoint_ended(real_ds, tmp_path) -> None:
    src = fit(tiny(**{"train.epochs": 3, "train.lr": 3e-3}), real_ds, tmp_path / "src", progress=False)
    # an LR too small to move the weights: epoch 0 scores what the source's best.pt scores
    still = {"train.epochs": 1, "train.lr": 1e-12, "train.plateau_patience": 1}
    warm = fit(tiny(**still, **{"train.init_from": str(src.checkpoint)}), real_ds,
               tmp_path / "warm", progress=False)
    cold = fit(tiny(**still), real_ds, tmp_path / "cold", progress=False)
    best = read_checkpoint(src.checkpoint)["meta"]["best"]
    assert warm.history[0]["val_total"] == pytest.approx(best, rel=1e-3)
    assert abs(cold.history[0]["val_total"] - best) > 0.05 * best
    meta = read_checkpoint(warm.checkpoint)["meta"]
    assert meta["init_from"] == str(src.checkpoint) and meta["init_epochs"] == 3
    # resuming the warm-started run keeps its record (read from last.pt with the rest)
    more = fit(tiny(**{**still, "train.epochs": 2, "train.init_from": str(src.checkpoint)}), real_ds,
               tmp_path / "warm", resume=True, progress=False)
    assert len(more.history) == 2
    assert read_checkpoint(tmp_path / "warm" / "last.pt")["meta"]["init_from"] == str(src.checkpoint)


def test_warm_start_refuses_another_model_or_split(real_ds, tmp_path) -> None:
    src = fit(tiny(**{"train.epochs": 1}), real_ds, tmp_path / "src", progress=False)
    init = {"train.epochs": 1, "train.init_from": str(src.checkpoint)}
    with pytest.raises(ValueError, match=r"model\.m0 \(.*\)"):
        fit(tiny(**init, **{"model.m0": 12}), real_ds, tmp_path / "m0", progress=False)
    with pytest.raises(ValueError, match="another split"):
        fit(tiny(**init, **{"data.split_seed": 7}), real_ds, tmp_path / "seed", progress=False)
    grown = XASDataset(real_ds.atoms, real_ds.samples[:-3], real_ds.energy, real_ds.r_max)
    with pytest.warns(UserWarning, match="trained on other data"):  # no split to compare: say so
        fit(tiny(**init), grown, tmp_path / "grown", progress=False)
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        fit(tiny(**{"train.init_from": str(tmp_path / "none.pt")}), real_ds, tmp_path / "x",
            progress=False)


def test_packaging_a_warm_started_run_keeps_its_weights_and_drops_the_path(real_ds, tmp_path) -> None:
    """xane3.train.package: what ships has no resume state and no training-machine path, and
    predicts what the run's best.pt predicts."""
    import torch

    from xane3.train.checkpoint import load_checkpoint
    from xane3.train.package import main

    src = fit(tiny(**{"train.epochs": 1}), real_ds, tmp_path / "src", progress=False)
    warm = fit(tiny(**{"train.epochs": 1, "train.init_from": str(src.checkpoint),
                       "train.ema_decay": 0.9}), real_ds, tmp_path / "warm", progress=False)
    shipped = tmp_path / "ship.pt"
    assert main([str(warm.checkpoint), str(shipped), "--note", "from the tiny source"]) == 0
    payload = read_checkpoint(shipped)
    assert payload["config"].train.init_from is None
    assert payload["meta"]["init_from"] == "from the tiny source"
    assert not {"optimizer", "scheduler", "rng", "ema"} & set(payload)
    a, b = load_checkpoint(warm.checkpoint), load_checkpoint(shipped)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    assert main([str(tmp_path / "none.pt"), str(tmp_path / "x.pt")]) == 2
    assert not (tmp_path / "x.pt").exists()
