"""Target options: raw absolute-grid targets are the files' own numbers."""

from __future__ import annotations

import numpy as np

from xane3.config import Config, with_overrides
from xane3.data.dataset import XASDataset

XANESNET_GRID = {"data.normalization": "none", "data.energy_axis": "absolute",
                 "data.e_min": 7097.0, "data.e_max": 7172.0, "data.n_points": 226}


def test_raw_absolute_target_reproduces_the_files(xanesnet_records) -> None:
    cfg = with_overrides(Config(), XANESNET_GRID)
    recs = xanesnet_records[:10]
    ds = XASDataset.from_records(recs, cfg.data)
    assert cfg.model.n_points == 226 and cfg.model.e_min == 7097.0
    for rec, sample in zip(recs, ds.samples):
        assert sample.mask.all()
        np.testing.assert_array_equal(sample.spectrum, rec.mu)
        assert sample.absorbers == rec.absorbers


def test_relative_normalised_target_is_the_default(xanesnet_records) -> None:
    ds = XASDataset.from_records(xanesnet_records[:5], Config().data)
    s = ds.samples[0]
    assert ds.energy[0] == -30.0 and len(ds.energy) == 150
    post = s.spectrum[(ds.energy > 40) & s.mask]
    assert abs(np.mean(post) - 1.0) < 0.2
