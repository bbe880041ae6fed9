"""xane3.train.soup: the weight mean of fine-tunings, scored on their val split, or refused."""

from __future__ import annotations

import pytest
import torch

from xane3.config import Config, with_overrides
from xane3.data.dataset import XASDataset
from xane3.overlays import preset
from xane3.train import fit
from xane3.train.checkpoint import read_checkpoint
from xane3.train.soup import average, main, make_soup


@pytest.fixture(scope="module")
def real_ds(xanesnet_records):
    return XASDataset.from_records(xanesnet_records, with_overrides(Config(), preset("tiny")).data)


def tiny(**extra) -> Config:
    return with_overrides(Config(), {**preset("tiny"), "train.max_steps_per_epoch": 2, **extra})


@pytest.fixture(scope="module")
def runs(real_ds, tmp_path_factory):
    """A source run, two one-epoch fine-tunings of it and an unrelated cold start."""
    root = tmp_path_factory.mktemp("soup")
    src = fit(tiny(**{"train.epochs": 3, "train.lr": 3e-3}), real_ds, root / "src", progress=False)
    fts = [fit(tiny(**{"train.epochs": 1, "train.lr": 1e-3, "train.seed": s,
                       "train.init_from": str(src.checkpoint)}), real_ds, root / f"ft{s}",
               progress=False).checkpoint for s in (1, 2)]
    cold = fit(tiny(**{"train.epochs": 1, "train.lr": 1e-6, "train.seed": 9}), real_ds,
               root / "cold", progress=False).checkpoint  # an untrained model of another seed
    return root, src.checkpoint, fts, cold


def test_uniform_soup_is_the_weight_mean_and_records_its_measured_val_total(real_ds, runs) -> None:
    root, src, fts, _ = runs
    out = root / "soup.pt"
    res = make_soup([src, *fts], out, dataset=real_ds, progress=False)
    states = [read_checkpoint(p)["model"] for p in (src, *fts)]
    soup = read_checkpoint(out)
    key = next(k for k, v in states[0].items()  # a weight the fine-tunings moved
               if v.is_floating_point() and not torch.equal(v, states[1][k]))
    assert torch.allclose(soup["model"][key], sum(s[key] for s in states) / 3, atol=1e-6)
    assert not torch.equal(soup["model"][key], states[0][key])
    meta = soup["meta"]
    assert meta["best"] == pytest.approx(res["val_total"]) and all(i["kept"] for i in meta["soup"])
    assert soup["config"].train.init_from is None and "uniform soup" in meta["init_from"]
    # the trainer, warm-started from the soup with an LR that cannot move it, scores the same
    still = fit(tiny(**{"train.epochs": 1, "train.lr": 1e-12, "train.init_from": str(out)}), real_ds,
                root / "still", progress=False)
    assert still.history[0]["val_total"] == pytest.approx(res["val_total"], rel=1e-3)


def test_greedy_soup_leaves_out_what_does_not_help(real_ds, runs) -> None:
    root, src, fts, cold = runs
    res = make_soup([cold, src, *fts], root / "greedy.pt", greedy=True, dataset=real_ds, progress=False)
    by_file = {i["file"]: i for i in res["ingredients"]}
    assert not by_file[cold.name]["kept"]  # an unrelated model is no fine-tuning of the others
    assert res["val_total"] <= min(i["val_total"] for i in res["ingredients"])
    kept = [i for i in res["ingredients"] if i["kept"]]
    assert kept and read_checkpoint(root / "greedy.pt")["meta"]["soup"] == res["ingredients"]


def test_soup_refuses_another_split_and_reports_bad_files(real_ds, runs, tmp_path, capsys) -> None:
    root, src, fts, _ = runs
    other = fit(tiny(**{"train.epochs": 1, "data.split_seed": 7}), real_ds, tmp_path / "other",
                progress=False).checkpoint
    with pytest.raises(ValueError, match="another split"):
        make_soup([src, other], tmp_path / "x.pt", dataset=real_ds, progress=False)
    with pytest.raises(ValueError, match="at least two"):
        make_soup([src], tmp_path / "x.pt", dataset=real_ds, progress=False)
    assert main([str(src), str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.pt")]) == 2
    assert "none.pt: no such checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
    a = {"w": torch.ones(2), "n": torch.tensor(1)}
    with pytest.raises(ValueError, match="non-float tensor n"):
        average([a, {"w": torch.zeros(2), "n": torch.tensor(2)}], "src")


def test_soup_scores_on_what_its_runs_selected_on(real_ds, runs, tmp_path) -> None:
    """Runs selecting on the spectrum MSE (the XANESNET experiment) were souped on the total and
    their soup's best recorded the total under a config saying select_on=spectrum."""
    root, src, _, _ = runs
    spec = [fit(tiny(**{"train.epochs": 1, "train.seed": s, "train.select_on": "spectrum",
                        "train.init_from": str(src)}), real_ds, tmp_path / f"s{s}",
                progress=False).checkpoint for s in (3, 4)]
    res = make_soup(spec, tmp_path / "soup.pt", greedy=True, dataset=real_ds, progress=False)
    meta = read_checkpoint(tmp_path / "soup.pt")["meta"]
    assert res["select_on"] == "spectrum" and meta["best"] == res["val_selected"] != res["val_total"]
    assert [i["val_selected"] for i in res["ingredients"]] == pytest.approx(
        [read_checkpoint(p)["meta"]["best"] for p in spec], rel=1e-4)  # rescored: the runs' own best
    still = fit(tiny(**{"train.epochs": 1, "train.lr": 1e-12, "train.select_on": "spectrum",
                        "train.init_from": str(tmp_path / "soup.pt")}), real_ds, tmp_path / "still",
                progress=False)
    assert still.history[0]["val_spectrum"] == pytest.approx(meta["best"], rel=1e-3)
    assert meta["best_total"] == pytest.approx(still.history[0]["val_total"], rel=1e-3)
