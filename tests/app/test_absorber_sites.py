"""Issue 15: which atoms absorb is decided by one rule, for ingest, predict and the Python API."""

from __future__ import annotations

import pytest
from ase.build import bulk

from xane3.data.readers.structures import StructureError, absorber_sites
from xane3.ensemble import PRETRAINED
from xane3.inference import absorber_groups, predict
from xane3.train.checkpoint import load_checkpoint


def test_api_refuses_a_non_absorber_site_and_defaults_to_every_fe() -> None:
    """An O site is refused (not predicted as if it were Fe); the default is every Fe, in order."""
    atoms = bulk("FeO", "rocksalt", a=4.33, cubic=True)
    with pytest.raises(StructureError, match=r"absorbers \[1 \(O\)\] are not Fe \(Z=26\)"):
        predict(load_checkpoint(PRETRAINED), atoms, [[1]])
    fe = absorber_sites(atoms, "FeO", 26)
    assert fe == [i for i, z in enumerate(atoms.numbers) if z == 26] and len(fe) == 4
    assert absorber_groups(atoms, None) == [[i] for i in fe]
    with pytest.raises(StructureError, match="FeO: absorber indices \\[9\\] out of range"):
        absorber_sites(atoms, "FeO", 26, [9])
