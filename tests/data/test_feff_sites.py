"""Sites of one crystal ingested from FEFF runs: feff.inp holds only a cluster cut around
each absorber, so they are told apart by structure and kept together by ``--parent-folder``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from data_fixtures import feff_small  # noqa: F401  (fixture)

from xane3.config import DataConfig
from xane3.data.cli import main
from xane3.data.dataset import XASDataset
from xane3.data.splits import split_indices


@pytest.fixture(scope="module")
def two_sites(feff_small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """ROOT/feo/{bulk,surface}/: the committed FeO run, and a real FEFF10 run of the same
    cluster with its +z oxygen removed (a surface-like site, ~8 s)."""
    feff10 = pytest.importorskip("feff10")
    root = tmp_path_factory.mktemp("sites")
    shutil.copytree(feff_small, root / "feo" / "bulk")
    surface = root / "feo" / "surface"
    surface.mkdir()
    lines = (feff_small / "feff.inp").read_text().splitlines()
    top = [ln for ln in lines if ln.split()[:4] == ["0.00000", "0.00000", "2.16500", "1"]]
    assert len(top) == 1, "the committed feff.inp changed: update this fixture"
    (surface / "feff.inp").write_text("\n".join(ln for ln in lines if ln not in top) + "\n")
    feff10.run(str(surface / "feff.inp"), str(surface))
    return root


def _dataset(root: Path, db: Path, *flags: str) -> XASDataset:
    assert main(["ingest", "--feff", str(root), "--db", str(db), "--no-progress", *flags]) == 0
    return XASDataset.from_db(db, DataConfig(db=str(db)))


def test_parent_folder_keeps_the_sites_of_one_crystal_together(two_sites: Path, tmp_path: Path) -> None:
    ds = _dataset(two_sites, tmp_path / "grouped.db", "--parent-folder")
    assert len(ds) == 2 and ds.n_structures == 2  # two different clusters
    parents = ds.group_labels("parent")
    assert parents == [str((two_sites / "feo").resolve())] * 2
    split = split_indices(parents, "parent", 0.0, 0.5, seed=0)
    assert sorted(split["test"] + split["train"]) == [0, 1] and len(split["train"]) in (0, 2)


def test_a_structure_split_of_feff_clusters_warns(two_sites: Path, tmp_path: Path) -> None:
    ds = _dataset(two_sites, tmp_path / "plain.db")
    with pytest.warns(UserWarning, match="--parent-folder"):
        labels = ds.group_labels("structure")
    assert len(set(labels)) == 2  # each site its own 'structure': what the warning is about
    with pytest.raises(ValueError, match="--parent-folder"):
        ds.group_labels("parent")
