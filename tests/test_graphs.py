"""Radius graphs: a cell-less structure's edges, and the memory they take."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from ase.neighborlist import neighbor_list

from xane3.data.graphs import StructureGraph


def test_cell_less_molecule_has_the_same_edges_as_ase_gives(xanesnet_records) -> None:
    atoms = xanesnet_records[0].atoms
    assert not atoms.pbc.any()
    g = StructureGraph.from_atoms(atoms, 5.0)
    i, j, d = neighbor_list("ijd", atoms, 5.0)
    got = sorted(zip(g.edge_index[0].tolist(), g.edge_index[1].tolist()))
    assert got == sorted(zip(i.tolist(), j.tolist()))
    np.testing.assert_allclose(sorted(np.linalg.norm(g.edge_vec.numpy(), axis=1)), sorted(d), atol=1e-9)


def test_large_cell_less_structure_fits_in_memory() -> None:
    """Issue 17: 4,000 cell-less atoms took 3.4 GB in ASE's neighbor_list, 10,000 MemoryError."""
    code = ("import resource, numpy as np; from ase import Atoms; from xane3.data.graphs import StructureGraph; "
            "n = 6000; rng = np.random.default_rng(0); side = (n / 0.05) ** (1 / 3); "
            "StructureGraph.from_atoms(Atoms(['Fe'] * n, positions=rng.uniform(0, side, (n, 3))), 5.0); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip()) < 1500, f"peak RSS {out.stdout.strip()} MB"
