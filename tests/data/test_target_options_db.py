"""Every target option from a database: the DB keeps the raw spectrum (issue 8).

A raw absolute-grid target (XANESNET's: 7097-7172 eV, 226 points, raw FDMNES
intensities) built from an ingested DB must be the files' own numbers, exactly,
on a sample spread over the whole real set; a DB without raw spectra (written
before they were stored) must say so instead of training on something else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.db import connect

from xane3.config import Config, with_overrides
from xane3.data.database import ingest, iter_rows
from xane3.data.dataset import XASDataset
from xane3.data.readers.fdmnes import read_fdmnes_output
from xane3.data.readers.xanesnet import read_xanesnet_pair, xanesnet_pairs
from xane3.overlays import experiment, preset

XANESNET_TARGET = experiment("xanesnet")  # its axis, split and selection


@pytest.fixture(scope="module")
def spread_sample(shared_data: Path) -> list:
    """24 real pairs spread over all 4,079 (not only the first names)."""
    pairs = xanesnet_pairs(shared_data / "xanesnet-fe-train")
    return [read_xanesnet_pair(x, s) for x, s in pairs[:: len(pairs) // 24][:24]]


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory, spread_sample) -> Path:
    path = tmp_path_factory.mktemp("raw") / "sample.db"
    report = ingest(spread_sample, path, progress=False)
    assert report.skipped == []
    return path


def _data_cfg(db: Path, overrides: dict) -> object:
    return with_overrides(Config(), {**overrides, "data.db": str(db)}).data


def test_raw_absolute_target_from_db_is_the_files_exactly(sample_db, spread_sample) -> None:
    ds = XASDataset.from_db(sample_db, _data_cfg(sample_db, XANESNET_TARGET))
    assert len(ds) == len(spread_sample) == 24
    np.testing.assert_allclose(ds.energy[[0, -1]], [7097.0, 7172.0])
    by_source = {str(Path(s.meta["source"]).name): s for s in ds.samples}
    for rec in spread_sample:
        sample = by_source[Path(rec.source).name]
        raw = read_fdmnes_output(rec.source)  # the file read again, independently of the record
        assert sample.mask.all()
        np.testing.assert_array_equal(sample.spectrum, raw.mu)
        assert np.max(np.abs(ds.energy - raw.energy)) < 0.006  # files print energies to 0.01 eV
        assert sample.absorbers == rec.absorbers and np.isfinite(sample.e0)
        assert not ds.atoms[sample.graph].pbc.any()


def test_db_rows_keep_the_raw_spectrum(sample_db, spread_sample) -> None:
    db = connect(str(sample_db))
    rec = spread_sample[0]
    row = next(r for r in db.select() if Path(r.source).name == Path(rec.source).name)
    np.testing.assert_array_equal(row.data["raw_energy"], rec.energy)
    np.testing.assert_array_equal(row.data["raw_mu"], rec.mu)


@pytest.mark.parametrize("overrides", [
    {},  # ours: stored normalised spectrum
    {"data.e_min": -10.0, "data.e_max": 10.0, "data.n_points": 401},  # rebuilt, not interpolated
    {"data.normalization": "none"},
    {"data.energy_axis": "absolute", "data.e_min": 7100.0, "data.e_max": 7170.0, "data.n_points": 141},
    XANESNET_TARGET,
], ids=["edge_step-relative", "edge_step-relative-fine", "none-relative", "edge_step-absolute", "none-absolute"])
def test_every_option_from_db_equals_from_records(sample_db, spread_sample, overrides) -> None:
    cfg = _data_cfg(sample_db, overrides)
    from_db = XASDataset.from_db(sample_db, cfg)
    from_recs = XASDataset.from_records(spread_sample, cfg)
    assert len(from_db) == len(from_recs)
    for a, b in zip(from_db.samples, from_recs.samples):
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_allclose(a.spectrum[a.mask], b.spectrum[b.mask], rtol=1e-12, atol=1e-12)
        assert a.e0 == pytest.approx(b.e0, abs=1e-9)


def test_old_db_without_raw_spectra_says_so(tmp_path, sample_db) -> None:
    """Rows as an older ingest wrote them: the default target works, a raw one fails clearly."""
    old = tmp_path / "old.db"
    src, dst = connect(str(sample_db)), connect(str(old))
    with dst:
        for row in src.select():
            data = {k: v for k, v in row.data.items() if k not in ("raw_energy", "raw_mu")}
            dst.write(row.toatoms(), key_value_pairs=row.key_value_pairs, data=data)
    dst.metadata = src.metadata
    assert len(XASDataset.from_db(old, _data_cfg(old, {}))) == 24
    assert all("raw_mu" not in r["meta"] for r in iter_rows(old))
    with pytest.raises(ValueError, match=r"no raw spectrum .* ingest the files again"):
        XASDataset.from_db(old, _data_cfg(old, XANESNET_TARGET))


def test_absolute_axis_model_starts_its_edge_step_at_the_mean_edge(sample_db) -> None:
    """On an absolute grid a background centred at 0 eV would be a constant that never learns."""
    from xane3.train.trainer import build_model

    cfg = with_overrides(Config(), {**preset("tiny"), **XANESNET_TARGET, "data.db": str(sample_db)})
    ds = XASDataset.from_db(sample_db, cfg.data)
    model = build_model(cfg, ds, range(len(ds)))
    e0 = np.mean([s.e0 for s in ds.samples])
    c = float(model.background.center.detach())
    assert c == pytest.approx(e0, abs=1e-3) and 7097.0 < c < 7172.0
    bg = model.background(model.energy).detach().numpy()
    assert bg[0] < 0.05 and bg[-1] > 0.95  # a step inside the grid, not a constant
    # physics-initialised centres crowd ~15 eV above that edge, as on the relative axis,
    # not at the low end of the grid (the bump of a relative axis seen 7 keV away)
    assert model.config.centers_init == "physics"
    sharp = model.basis.centers.detach().numpy()[: model.config.n_gaussians // len(model.config.basis_widths)]
    assert e0 + 5.0 < np.median(sharp) < e0 + 30.0
    from xane3.model.basis import initial_basis

    rel, _ = initial_basis(-30.0, 100.0, model.config.n_gaussians, model.config.basis_widths, "physics")
    shifted, _ = initial_basis(-30.0 + e0, 100.0 + e0, model.config.n_gaussians,
                               model.config.basis_widths, "physics", edge=e0)
    np.testing.assert_allclose(shifted - e0, rel, atol=1e-6)  # the same layout about the edge
