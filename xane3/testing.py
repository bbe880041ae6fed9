"""Reusable checks for users and tests: structures and the symmetry test.

Like nequip's equivariance mixin, ``assert_invariant_spectra`` is the one check
every model variant must pass: rotations, reflections, translations, atom
permutations and periodic supercells must leave predicted spectra unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk, surface
from scipy.spatial.transform import Rotation

from xane3.data.graphs import StructureGraph, collate


def feo_slab(layers: int = 2, vacuum: float = 6.0, seed: int = 0, rattle: float = 0.05) -> Atoms:
    """A small rattled FeO(001) slab: periodic in plane, vacuum along z."""
    slab = surface(bulk("FeO", "rocksalt", a=4.33), (0, 0, 1), layers, vacuum=vacuum)
    slab.pbc = True
    slab.rattle(rattle, seed=seed)  # break symmetry so the check is not trivially passed
    return slab


def predict_groups(model: torch.nn.Module, atoms: Atoms, groups: list[list[int]],
                   dtype: torch.dtype) -> torch.Tensor:
    graph = StructureGraph.from_atoms(atoms, model.config.r_max)
    batch = collate([graph], [(0, g) for g in groups]).to("cpu", dtype)
    with torch.no_grad():
        return model(batch)["spectrum"]


def assert_invariant_spectra(model: torch.nn.Module, atoms: Atoms, absorber: int,
                             dtype: torch.dtype = torch.float64, seed: int = 0) -> None:
    """Raise AssertionError if any symmetry operation changes the prediction."""
    tol = 1e-8 if dtype == torch.float64 else 1e-4
    model = model.to(dtype).eval()
    ref = predict_groups(model, atoms, [[absorber]], dtype)
    rng = np.random.default_rng(seed)

    def check(name: str, other: Atoms, group: list[int]) -> None:
        out = predict_groups(model, other, [group], dtype)
        err = (out - ref).abs().max().item()
        scale = max(ref.abs().max().item(), 1.0)
        assert err <= tol * scale, f"{name}: max |change| {err:.3e} > {tol:.0e}"

    rot = Rotation.random(random_state=int(rng.integers(1 << 31))).as_matrix()
    for name, op in (("rotation", rot), ("reflection", rot @ np.diag([1.0, 1.0, -1.0]))):
        moved = atoms.copy()
        moved.set_cell(atoms.cell.array @ op.T, scale_atoms=False)
        moved.positions = atoms.positions @ op.T
        check(name, moved, [absorber])
    shifted = atoms.copy()
    shifted.positions += rng.normal(size=3) * 3.0
    check("translation", shifted, [absorber])
    perm = rng.permutation(len(atoms))
    check("permutation", atoms[perm], [int(np.where(perm == absorber)[0][0])])
    if atoms.pbc[0] and atoms.pbc[1]:
        sc = atoms.repeat((2, 2, 1))
        images = [absorber + k * len(atoms) for k in range(4)]
        check("2x2x1 supercell", sc, images)
