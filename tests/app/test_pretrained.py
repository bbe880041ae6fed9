"""The packaged model: `python -m xane3.predict my.cif` works right after install."""

from __future__ import annotations

import numpy as np
from ase.io import write

from xane3 import load_checkpoint, predict
from xane3.datagen.structures import bulk, to_atoms
from xane3.ensemble import PRETRAINED
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
