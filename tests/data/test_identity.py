"""One structure id wherever a structure comes from (issue 15): database, shards, generator."""

from __future__ import annotations

import numpy as np
from ase.build import bulk

from xane3.data.database import iter_rows
from xane3.data.embedded import read_shards
from xane3.data.identity import stored, structure_id
from xane3.datagen.structures import Slab


def test_embedded_ids_are_recomputable_from_the_atoms_read_back() -> None:
    recs = read_shards()
    ids = {r.meta["structure_id"] for r in recs}
    assert all(r.meta["structure_id"] == structure_id(r.atoms) for r in recs)
    assert {r.meta["parent"] for r in recs} <= ids  # every parent is a structure of the set
    assert all(r.meta["parent"] == r.meta["structure_id"] for r in recs if r.meta["rattle"] == 0)
    assert len(ids) == 220 and len({r.meta["parent"] for r in recs}) == 20


def test_generator_names_a_slab_by_its_stored_positions() -> None:
    """Rounding float64 and float32 positions to 1e-4 Å disagrees somewhere in a large slab:
    the generator hashes what its shard will store, so the stored row is named the same."""
    rng = np.random.default_rng(0)
    atoms = bulk("FeO", "rocksalt", a=4.33, cubic=True).repeat((4, 4, 4))
    atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
    slab = Slab(atoms, "FeO", "001", 0)
    read_back = atoms.copy()
    read_back.positions = atoms.positions.astype(np.float32).astype(np.float64)
    assert slab.id == structure_id(read_back) == structure_id(stored(atoms))
    assert structure_id(atoms) != structure_id(read_back)  # why: the float64 id would not survive


def test_database_rows_use_the_same_id(small_real_db) -> None:
    rows = list(iter_rows(small_real_db))
    assert rows and all(r["structure_id"] == structure_id(r["atoms"]) for r in rows)
