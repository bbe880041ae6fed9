"""Structures to predict on or train with: anything ASE reads, plus sanity checks.

Every error names the file, because a bad structure found deep inside a batch of
thousands is otherwise impossible to trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read
from ase.neighborlist import neighbor_list

MIN_DISTANCE = 0.5  # Å; closer pairs are duplicated or broken atoms, never chemistry


class StructureError(ValueError):
    """A structure that cannot be read or is not physically usable."""


def read_structure(path: str | Path, index: int = -1, format: str | None = None) -> Atoms:
    """Read one structure (CIF, POSCAR, extxyz, ... whatever ASE reads).

    index: which image of a multi-image file (default: the last one).
    """
    path = Path(path)
    if not path.is_file():
        raise StructureError(f"{path}: no such structure file")
    try:
        atoms = read(str(path), index=index, format=format)
    except Exception as exc:  # ASE raises many types; the caller needs one, naming the file
        raise StructureError(f"{path}: cannot read structure ({type(exc).__name__}: {exc})") from exc
    if isinstance(atoms, list):  # a slice index returns a list
        raise StructureError(f"{path}: index {index!r} selects {len(atoms)} images, expected one")
    if len(atoms) == 0:
        raise StructureError(f"{path}: structure has no atoms")
    return atoms


def min_distance(atoms: Atoms, cutoff: float = MIN_DISTANCE) -> float:
    """Smallest interatomic distance below ``cutoff`` (periodic images included), else inf."""
    if len(atoms) == 0:
        return float("inf")
    if any(atoms.pbc) and atoms.cell.rank < int(np.sum(atoms.pbc)):
        raise StructureError("periodic along a direction with no cell vector")
    d = neighbor_list("d", atoms, cutoff)
    return float(d.min()) if d.size else float("inf")


def validate_structure(
    atoms: Atoms,
    source: str | Path,
    absorbers: Sequence[int] | None = None,
    absorber_z: int | None = None,
    min_dist: float = MIN_DISTANCE,
) -> None:
    """Raise StructureError (naming ``source``) for unusable structures.

    Checks: at least one atom, finite positions, no two atoms (or an atom and a
    periodic image) closer than ``min_dist``, and an absorber: the given indices
    must exist (and have Z == absorber_z when both are given); with only
    ``absorber_z``, at least one atom of that element must be present.
    """
    if len(atoms) == 0:
        raise StructureError(f"{source}: structure has no atoms")
    if not np.all(np.isfinite(atoms.positions)):
        raise StructureError(f"{source}: non-finite atomic positions")
    try:
        dmin = min_distance(atoms, min_dist)
    except StructureError as exc:
        raise StructureError(f"{source}: {exc}") from exc
    if dmin < min_dist:
        i, j, d = neighbor_list("ijd", atoms, min_dist)
        k = int(np.argmin(d))
        raise StructureError(
            f"{source}: overlapping atoms {int(i[k])} ({atoms[int(i[k])].symbol}) and "
            f"{int(j[k])} ({atoms[int(j[k])].symbol}) at {d[k]:.3f} Å < {min_dist} Å"
        )
    if absorbers is not None:
        if len(absorbers) == 0:
            raise StructureError(f"{source}: no absorber atom")
        bad = [a for a in absorbers if not 0 <= int(a) < len(atoms)]
        if bad:
            raise StructureError(f"{source}: absorber indices {bad} out of range (0..{len(atoms) - 1})")
        if absorber_z is not None:
            wrong = [int(a) for a in absorbers if atoms.numbers[int(a)] != absorber_z]
            if wrong:
                raise StructureError(f"{source}: absorbers {wrong} are not Z={absorber_z}")
    elif absorber_z is not None and not np.any(atoms.numbers == absorber_z):
        raise StructureError(f"{source}: no absorber atom (no atom with Z={absorber_z})")


def absorbers_of(atoms: Atoms, z: int) -> list[int]:
    """Indices of every atom of element ``z`` (the sites an FDMNES run averages)."""
    return [int(i) for i in np.flatnonzero(atoms.numbers == z)]
