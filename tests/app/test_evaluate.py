"""Evaluation, figures and the experiment overlay on a short real training run."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import torch

from xane3 import compare_experiment
from xane3.config import Config, with_overrides
from xane3.evaluate import breakdown, main
from xane3.overlays import preset
from xane3.train import fit
from xane3.train.checkpoint import read_checkpoint

FIGURES = ("examples", "derivatives", "errors", "learning_curves", "attention")


@pytest.fixture(scope="module")
def tiny_run(small_real_db, tmp_path_factory):
    """Two epochs of the tiny model on 40 real XANESNET spectra (Fe K-edge): once per module."""
    out = tmp_path_factory.mktemp("run")
    cfg = with_overrides(Config(), {**preset("tiny"), "train.epochs": 2, "data.db": str(small_real_db)})
    result = fit(cfg, out_dir=out, progress=False)
    return out, result


def assert_png(path) -> None:
    assert path.exists(), path
    assert path.stat().st_size > 20_000, path  # a real figure at 300 dpi, not an empty canvas
    img = mpimg.imread(path)
    assert img.shape[0] > 300 and img.shape[1] > 300
    assert img[..., :3].std() > 0.05, f"{path} looks blank"


def test_evaluate_writes_tables_and_figures(tiny_run, tmp_path, capsys) -> None:
    run_dir, result = tiny_run
    assert main(["--checkpoint", str(run_dir / "best.pt"), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "XANE(3)" in printed and "baseline" in printed and "mean training spectrum" in printed
    meta = read_checkpoint(run_dir / "best.pt")["meta"]
    assert meta["elements"] and 26 in meta["elements"]
    per = pd.read_parquet(tmp_path / "per_spectrum.parquet")
    n_test = len(meta["splits"]["test"])
    assert per.groupby("predictor").size().to_dict() == {"XANE(3)": n_test, "baseline": n_test}
    assert sorted(per["sample"].unique()) == sorted(meta["splits"]["test"])
    for col in ("mse_spectrum", "mse_gradient", "mse_curvature", "err_edge_ev", "err_wl_ev",
                "err_wl_height", "err_pre_ev", "pearson", "spearman", "err_e0"):
        assert col in per, col
    summary = pd.read_parquet(tmp_path / "summary.parquet")
    model = summary[(summary.predictor == "XANE(3)") & (summary.group_by == "all")].iloc[0]
    # the pooled MSEs are the trainer's own test numbers
    for term in ("spectrum", "gradient", "curvature"):
        assert model[f"mse_{term}"] == pytest.approx(result.test[term], rel=1e-4)
    assert np.isfinite(model["mae_e0"]) and np.isfinite(model["mae_edge_ev"])
    assert (tmp_path / "summary.txt").read_text().strip()
    npz = np.load(tmp_path / "spectra.npz")
    assert npz["prediction"].shape == (n_test, 150)
    for name in FIGURES:
        assert_png(tmp_path / "figures" / f"{name}.png")


def test_named_db_and_changed_data(tiny_run, small_real_db, tmp_path, capsys) -> None:
    run_dir, _ = tiny_run
    # the training DB named explicitly: recognised by its hash, scored on the test split
    assert main(["--checkpoint", str(run_dir / "best.pt"), "--db", str(small_real_db), "--out",
                 str(tmp_path / "same"), "--no-figures"]) == 0
    per = pd.read_parquet(tmp_path / "same" / "per_spectrum.parquet")
    n_test = len(read_checkpoint(run_dir / "best.pt")["meta"]["splits"]["test"])
    assert len(per) == 2 * n_test
    # a checkpoint whose data changed since training: a clear error, not a silent wrong split
    payload = torch.load(run_dir / "best.pt", weights_only=True)
    meta = json.loads(payload["meta"])
    meta["data_hash"] = "0" * 16
    payload["meta"] = json.dumps(meta)
    stale = tmp_path / "stale.pt"
    torch.save(payload, stale)
    capsys.readouterr()
    assert main(["--checkpoint", str(stale), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "changed since training" in err and "--db" in err
    # ... but that DB as other data is scored whole
    assert main(["--checkpoint", str(stale), "--db", str(small_real_db), "--out", str(tmp_path / "all"),
                 "--no-figures"]) == 0
    assert len(pd.read_parquet(tmp_path / "all" / "per_spectrum.parquet")) == 2 * 40


def test_training_db_cut_by_subset_is_still_own_data(small_real_db, tmp_path) -> None:
    """Trained on data.subset of a DB, then scored with --db that DB: its test split, not all
    40 spectra (which would score training spectra as unseen)."""
    cfg = with_overrides(Config(), {**preset("tiny"), "train.epochs": 1, "data.subset": 30,
                                    "train.max_steps_per_epoch": 1, "data.db": str(small_real_db)})
    fit(cfg, out_dir=tmp_path / "run", progress=False)
    assert main(["--checkpoint", str(tmp_path / "run" / "best.pt"), "--db", str(small_real_db),
                 "--out", str(tmp_path / "ev"), "--no-figures"]) == 0
    n_test = len(read_checkpoint(tmp_path / "run" / "best.pt")["meta"]["splits"]["test"])
    assert len(pd.read_parquet(tmp_path / "ev" / "per_spectrum.parquet")) == 2 * n_test


def test_compare_experiment_overlay(tiny_run, tmp_path, capsys) -> None:
    """The code path of the experiment overlay (a 2-epoch model: the numbers mean nothing)."""
    run_dir, _ = tiny_run
    assert compare_experiment.main(["--checkpoint", str(run_dir / "best.pt"), "--out", str(tmp_path)]) == 0
    assert "hematite" in capsys.readouterr().out
    assert_png(tmp_path / "compare_experiment.png")
    res = json.loads((tmp_path / "compare_experiment.json").read_text())
    assert [p["phase"] for p in res["phases"]] == ["hematite", "magnetite", "wustite"]
    assert {p["fe_sites"] for p in res["phases"]} == {12, 24, 4}
    # provenance that means something on another machine: relative paths and the checkpoint's hash
    from xane3.provenance import file_sha256

    assert not any(Path(p).is_absolute() for p in [*res["checkpoints"], res["experiment_dir"]])
    assert (Path.cwd() / res["checkpoints"][0]).resolve() == (run_dir / "best.pt").resolve()
    assert res["checkpoint_sha256"] == [file_sha256(run_dir / "best.pt")]
    curves = pd.read_csv(tmp_path / "compare_experiment.csv")
    measured = curves["hematite_measured"].to_numpy()
    # the measured spectrum is re-normalised: ~0 before the edge, ~1 after it
    assert abs(np.nanmean(measured[:20])) < 0.05 and 0.8 < np.nanmean(measured[-60:]) < 1.3
    # issue 16: the broadening and shift fit, with errors, agreement before and after
    for p in res["phases"]:
        assert p["fit_gamma"] >= 0 and p["fit_sigma"] >= 0 and "fit_shift_stderr" in p  # NaN at a bound
        assert p["fit_mse_after"] <= p["fit_mse_before"] + 1e-12
    assert "hematite_predicted_broadened" in curves


def test_breakdown_by_labels() -> None:
    """Per-phase/facet/site-kind rows appear when the data carry those labels."""
    from xane3.metrics import metrics_table

    e = np.linspace(-30, 100, 150)
    ref = np.stack([1 / (1 + np.exp(-(e - s))) for s in (0.0, 1.0, 2.0, 3.0)])
    df = metrics_table(e, ref + 0.01, ref, np.ones_like(ref, bool))
    df["phase"] = ["FeO", "FeO", "Fe3O4", "Fe3O4"]
    df["facet"] = ["(001)", "(110)", "(001)", "(110)"]
    df["site_kind"] = pd.array([None] * 4, dtype="string")
    df["predictor"] = "XANE(3)"
    s = breakdown(df, 150.0, 200.0)
    assert set(zip(s.group_by, s.group)) == {("all", "all"), ("phase", "FeO"), ("phase", "Fe3O4"),
                                             ("facet", "(001)"), ("facet", "(110)")}
    assert (s.n_spectra[s.group_by == "phase"] == 2).all()


def test_help() -> None:
    for cli in (main, compare_experiment.main):
        with pytest.raises(SystemExit) as exc:
            cli(["--help"])
        assert exc.value.code == 0


def test_predictions_refuse_graphs_of_another_cutoff(tiny_run, small_real_db) -> None:
    """Mean aggregation counts every neighbour, so 5 Å graphs under a 4 Å model change its
    spectra silently; scoring a searched r_max must rebuild the graphs instead."""
    import dataclasses

    from xane3.data.dataset import XASDataset
    from xane3.evaluate import predict_samples
    from xane3.train import load_checkpoint

    out, _ = tiny_run
    model = load_checkpoint(out / "best.pt")
    assert model.config.r_max == 4.0
    wide = XASDataset.from_db(small_real_db, dataclasses.replace(model.metadata.config.data, r_max=5.0))
    with pytest.raises(ValueError, match="r_max=5.0"):
        predict_samples(model, wide, [0, 1])


def test_elements_never_seen_in_training_are_warned_and_scored_apart(tiny_run, xanesnet_records,
                                                                     tmp_path, capsys) -> None:
    """Issue 31: evaluate --db scored structures holding elements the model never saw (predict
    refuses them) without a word, inside its headline numbers."""
    import copy

    from xane3.data.database import ingest

    recs = copy.deepcopy(xanesnet_records[:6])
    for r in recs[:2]:
        r.atoms.numbers[np.flatnonzero(r.atoms.numbers == 1)[0]] = 9  # an H made F: no training structure has F
    ingest(recs, tmp_path / "f.db", progress=False)
    run_dir, _ = tiny_run
    assert main(["--checkpoint", str(run_dir / "best.pt"), "--db", str(tmp_path / "f.db"),
                 "--out", str(tmp_path / "ev"), "--no-figures"]) == 0
    err = capsys.readouterr().err
    assert "warning: 2 of 6 spectra contain elements the checkpoint never saw in training (F)" in err
    per = pd.read_parquet(tmp_path / "ev" / "per_spectrum.parquet")
    assert sorted(per[per.predictor == "XANE(3)"]["unseen_elements"]) == [""] * 4 + ["F"] * 2
    summary = pd.read_parquet(tmp_path / "ev" / "summary.parquet")
    apart = summary[(summary.predictor == "XANE(3)") & (summary.group_by == "elements")]
    assert dict(zip(apart.group, apart.n_spectra)) == {"seen in training": 4, "unseen in training": 2}
