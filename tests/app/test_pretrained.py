"""The packaged model: `python -m xane3.predict my.cif` works right after install."""

from __future__ import annotations

import numpy as np
import pytest
from ase.io import write

from xane3 import load_checkpoint, predict
from xane3.datagen.structures import bulk, to_atoms
from xane3.ensemble import PRETRAINED, PRETRAINED_ENSEMBLE
from xane3.predict_cli import main


def test_packaged_model_predicts_every_fe_site(tmp_path) -> None:
    assert PRETRAINED.exists(), "the packaged pretrained model is missing"
    model = load_checkpoint(PRETRAINED)
    atoms = to_atoms(bulk("alpha-Fe2O3"))
    spectra = predict(model, atoms)
    n_fe = int((atoms.numbers == 26).sum())
    assert spectra.shape == (n_fe, len(model.energy)) and np.isfinite(spectra).all()
    # a sensible Fe K-edge: low before E0, edge-step ~1 far above it
    e = model.energy.numpy()
    assert abs(spectra[:, e < -15].mean()) < 0.2 and 0.6 < spectra[:, e > 60].mean() < 1.4
    cif = tmp_path / "hematite.cif"
    write(cif, atoms)
    assert main([str(cif), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "hematite.csv").exists()


def test_committed_evaluation_is_what_the_packaged_model_scores(tmp_path) -> None:
    """docs/pretrained/eval is regenerated whenever the shipped checkpoint changes (issue 16):
    the packaged model, scored on its own test split, gives the committed summary."""
    import pandas as pd

    from xane3.evaluate import evaluate_checkpoint

    committed = pd.read_parquet(PRETRAINED.parents[2] / "docs/pretrained/eval/summary.parquet")
    now = evaluate_checkpoint(None, tmp_path, figures=False)["summary"]
    cols = ["n_spectra", "mse_spectrum", "total", "pearson_mean", "mae_edge_ev", "mae_e0"]
    key = ["predictor", "group_by", "group"]
    both = committed.merge(now, on=key, suffixes=("_was", "_now"))
    assert len(both) == len(committed) == len(now)
    for c in cols:
        np.testing.assert_allclose(both[f"{c}_now"], both[f"{c}_was"], rtol=1e-4, err_msg=c)


def test_packaged_ensemble_predicts_a_scaled_band(tmp_path) -> None:
    """--ensemble pretrained: the shipped model and its siblings (or the members it is the weight
    mean of), with their val-fitted scale."""
    import json

    import pandas as pd
    import torch

    from xane3.calibration import read_scale
    from xane3.ensemble import ensemble_members
    from xane3.train.checkpoint import read_checkpoint
    from xane3.train.soup import average

    members = ensemble_members("pretrained")
    assert len(members) >= 2 and all(p.parent == PRETRAINED_ENSEMBLE for p in members)
    scale = read_scale(PRETRAINED_ENSEMBLE, members)  # refuses members changed since the fit
    assert scale is not None and scale > 1
    shipped = load_checkpoint(PRETRAINED).state_dict()
    soup = [i["file"] for i in read_checkpoint(PRETRAINED)["meta"].get("soup", []) if i["kept"]]
    if soup:  # a model soup (xane3.train.soup): the weight mean of members
        by_name = {p.name: p for p in members}
        assert set(soup) <= set(by_name), f"the shipped soup's ingredients {soup} are not all members"
        mean = average([read_checkpoint(by_name[f])["model"] for f in soup])
        assert all(torch.allclose(v, mean[k], atol=1e-6) for k, v in shipped.items())
    else:
        assert any(all(torch.equal(v, load_checkpoint(p).state_dict()[k]) for k, v in shipped.items())
                   for p in members), "the shipped model is not one of the ensemble's members"
    cif = tmp_path / "hematite.cif"
    write(cif, to_atoms(bulk("alpha-Fe2O3")))
    assert main([str(cif), "--ensemble", "pretrained", "--out", str(tmp_path / "out"), "--no-plots"]) == 0
    table = pd.read_csv(tmp_path / "out" / "hematite.csv")
    assert (table["Fe0_std"] > 0).all()
    # the sites' and their average's spread are the members' raw spread times the scale
    from xane3.ensemble import load_ensemble
    from xane3.sites import site_average

    ens = load_ensemble(directory=PRETRAINED_ENSEMBLE)
    sites = [c for c in table.columns if c.startswith("Fe") and c[2:].isdigit()]
    pred = ens.predict(to_atoms(bulk("alpha-Fe2O3")), [[int(c[2:])] for c in sites])
    np.testing.assert_allclose(table["Fe0_std"], scale * pred["std"][0], rtol=1e-4, atol=1e-6)
    avgs = [site_average(ens.energy, m, pred["e0"])[1] for m in pred["members"]]
    np.testing.assert_allclose(table["site_average_std"], scale * np.std(avgs, axis=0),
                               rtol=1e-4, atol=1e-6)
    assert json.loads((tmp_path / "out" / "predictions.json").read_text())["std_scale"] == scale


def test_ensemble_alias_without_a_packaged_ensemble_says_so(tmp_path, monkeypatch, capsys) -> None:
    from xane3 import ensemble

    monkeypatch.setattr(ensemble, "PRETRAINED_ENSEMBLE", tmp_path / "absent")
    cif = tmp_path / "hematite.cif"
    write(cif, to_atoms(bulk("alpha-Fe2O3")))
    assert main([str(cif), "--ensemble", "pretrained", "--out", str(tmp_path / "out")]) == 2
    assert "no packaged ensemble" in capsys.readouterr().err


@pytest.mark.slow
def test_committed_calibration_is_what_the_packaged_ensemble_scores(tmp_path) -> None:
    """docs/pretrained/calibration is what the packaged members' spread covers (3 min)."""
    import json

    from xane3.calibration import calibrate

    committed = json.loads((PRETRAINED.parents[2] / "docs/pretrained/calibration/calibration.json")
                           .read_text())
    now = calibrate("pretrained", tmp_path, plots=False)
    assert now["scale"] == pytest.approx(committed["scale"], rel=1e-4)
    for split in ("val", "test"):
        for key in ("coverage_2std_raw", "coverage_2std_scaled", "rmse_of_mean"):
            assert now[split][key] == pytest.approx(committed[split][key], rel=1e-3), (split, key)
