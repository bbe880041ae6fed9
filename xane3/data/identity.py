"""One identity for a structure, wherever it came from (issue 15).

``structure_id`` is what the database stores, what the embedded shards are read back
with, what the data generator names its slabs and what the structure/parent splits
group by. It hashes the atoms as a user holds them: a structure generated in float64
and stored in float32 (the embedded shards) gets its id from the stored positions
(``stored``), so the id can always be recomputed from what was written.
"""

from __future__ import annotations

import hashlib

import numpy as np
from ase import Atoms

POSITION_DTYPE = np.float32  # what a shard stores positions in (datagen.generate.SCHEMA)


def structure_id(atoms: Atoms, decimals: int = 4) -> str:
    """Stable 16-hex id: numbers, positions, cell (rounded to ``decimals`` Å) and pbc."""
    h = hashlib.sha256()
    h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    for arr in (atoms.positions, atoms.cell.array):
        h.update((np.round(np.asarray(arr, dtype=np.float64), decimals) + 0.0).tobytes())  # +0.0: no -0.0
    h.update(np.asarray(atoms.pbc, dtype=np.int8).tobytes())
    return h.hexdigest()[:16]


def stored(atoms: Atoms, dtype=POSITION_DTYPE) -> Atoms:
    """``atoms`` with its positions at the precision a shard stores them in."""
    out = atoms.copy()
    out.positions = np.asarray(atoms.positions, dtype).astype(np.float64)
    return out


def spectrum_id(structure: str, absorbers, energy, mu) -> str:
    """Stable 16-hex id of one spectrum: its structure's id, absorbing sites and the spectrum as
    read, so the same file ingested from a copied or moved folder is known as the same spectrum."""
    h = hashlib.sha256(str(structure).encode())
    for arr, dtype in ((absorbers, np.int64), (energy, np.float64), (mu, np.float64)):
        h.update(np.ascontiguousarray(arr, dtype=dtype).tobytes())
    return h.hexdigest()[:16]
