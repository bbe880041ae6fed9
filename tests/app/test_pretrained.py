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
