"""Radius graphs: a cell-less structure's edges, and the memory they take."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from ase.neighborlist import neighbor_list
from conftest import REPO

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
    """Issue 17: 4,000 cell-less atoms took 3.4 GB in ASE's neighbor_list, 10,000 MemoryError.

    The child's own high-water mark (VmHWM, per address space) after the imports and after the
    graph: ``ru_maxrss`` would not do, Linux carries the parent's (pytest's) peak across exec.
    """
    code = ("import re, numpy as np; from ase import Atoms; from xane3.data.graphs import StructureGraph\n"
            "hwm = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1]) // 1024\n"
            "before = hwm(); n = 6000; rng = np.random.default_rng(0); side = (n / 0.05) ** (1 / 3)\n"
            "StructureGraph.from_atoms(Atoms(['Fe'] * n, positions=rng.uniform(0, side, (n, 3))), 5.0)\n"
            "print(hwm() - before)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip()) < 600, f"the graph of 6,000 atoms raised the peak by {out.stdout.strip()} MB"


@pytest.mark.slow
def test_a_structure_too_large_for_memory_is_refused_with_an_estimate() -> None:
    """Issue 17: a 10,000-atom xyz died with MemoryError; now too large is a clear refusal
    naming the size (here 40,000 atoms, ~0.9 M edges: ~36 GB for the default model)."""
    from ase import Atoms

    from xane3.inference import available_bytes, backbone_bytes, predict
    from xane3.train.checkpoint import load_checkpoint

    model = load_checkpoint(REPO / "xane3" / "pretrained" / "xane3-feff-fe.pt")
    rng = np.random.default_rng(0)
    n = 40_000
    side = (n / 0.05) ** (1 / 3)
    atoms = Atoms(["Fe"] + ["O"] * (n - 1), positions=rng.uniform(0, side, (n, 3)))
    assert backbone_bytes(model, 900_000) > available_bytes()  # what this machine can hold
    with pytest.raises(ValueError, match=r"40,000 atoms with .* edges within 5 Å need ~\d+\.\d GB"):
        predict(model, atoms, [0])
