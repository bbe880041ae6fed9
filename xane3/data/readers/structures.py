"""Structures to predict on or train with: anything ASE reads, plus sanity checks.

Every error names the file, because a bad structure found deep inside a batch of
thousands is otherwise impossible to trace.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.io import read

from xane3.data.graphs import neighbours

MIN_DISTANCE = 0.5  # Å; closer pairs are duplicated or broken atoms, never chemistry
# a pair closer than this fraction of its covalent-radius sum is not chemistry either
# (H-H 0.37 Å, C-H 0.64 Å, Fe-O 1.19 Å; real bonds: 0.74, 1.09, >= 1.8 Å)
PAIR_FACTOR = 0.6
# more atoms than this: refused before the file is parsed where its format says how many (ASE's
# CIF reader is quadratic in them: 2,000 atoms 25 s, 10,000 ~10 min); training saw at most 224
MAX_ATOMS = 5_000


class StructureError(ValueError):
    """A structure that cannot be read or is not physically usable."""


def atom_count(path: Path, format: str | None = None) -> int | None:
    """How many atoms a structure file holds (at least), read cheaply: an xyz/extxyz's first
    line, a CIF's atom-site rows (their multiplicities when given); None for other formats or
    a file that does not say (the reader proper then tells what is wrong)."""
    kind = (format or path.suffix.lstrip(".")).lower()
    try:
        if kind in ("xyz", "extxyz"):
            with open(path) as fh:
                return int(fh.readline().split()[0])
        if kind == "cif":
            from ase.io.cif import parse_cif  # ASE's tokenizer alone: fast; its crystal() is the slow part

            counts = []
            for block in parse_cif(str(path)):
                sites = block.get("_atom_site_fract_x") or block.get("_atom_site_cartn_x") or []
                mult = block.get("_atom_site_symmetry_multiplicity") or []
                whole = len(mult) == len(sites) and all(isinstance(m, (int, float)) for m in mult)
                counts.append(int(sum(mult)) if whole else len(sites))
            return max(counts, default=None)
    except Exception:  # noqa: BLE001 - a malformed file is the full reader's to report
        return None
    return None


def too_many_atoms(path: str | Path, n: int, max_atoms: int = MAX_ATOMS) -> str:
    """The refusal of a structure of ``n`` atoms, or ""."""
    if n <= max_atoms:
        return ""
    return (f"{path}: {n:,} atoms, more than the {max_atoms:,} a structure may hold: cut a cluster "
            "around the absorbing sites")


def read_structure(path: str | Path, index: int | None = None, format: str | None = None,
                   max_atoms: int = MAX_ATOMS) -> Atoms:
    """Read one structure (CIF, POSCAR, extxyz, ... whatever ASE reads).

    index: which image of a multi-image file; by default the file must hold exactly one
    (a trajectory or multi-block CIF is refused, not silently cut to one frame). Sites
    ASE would merge (two within its tolerance) and partial or mixed occupancies are
    refused: the model needs one ordered structure. More than ``max_atoms`` atoms are refused,
    before parsing when the file says how many (:func:`atom_count`).
    """
    path = Path(path)
    if not path.is_file():
        raise StructureError(f"{path}: no such structure file")
    if problem := too_many_atoms(path, atom_count(path, format) or 0, max_atoms):
        raise StructureError(problem)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            atoms = read(str(path), index=":" if index is None else index, format=format)
    except Exception as exc:  # ASE raises many types; the caller needs one, naming the file
        raise StructureError(f"{path}: cannot read structure ({type(exc).__name__}: {exc})") from exc
    if isinstance(atoms, list):  # ":" or a slice returns a list
        if len(atoms) != 1:
            raise StructureError(f"{path}: holds {len(atoms)} structures (frames or CIF blocks), "
                                 "expected one: write each to its own file")
        atoms = atoms[0]
    if len(atoms) == 0:
        raise StructureError(f"{path}: structure has no atoms")
    if problem := too_many_atoms(path, len(atoms), max_atoms):
        raise StructureError(problem)
    merged = [str(w.message) for w in caught if "equivalent" in str(w.message)]
    for w in caught:  # the rest are ASE's to tell the user, as before they were recorded
        if "equivalent" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    problem = (f"two sites coincide ({merged[0]}) and ASE keeps only one" if merged
               else _occupancy_problem(atoms))
    if problem:
        raise StructureError(f"{path}: {problem}")
    return atoms


def _occupancy_problem(atoms: Atoms) -> str:
    """A CIF site ASE merged into another, or a partial/mixed occupancy, or ""."""
    occ = atoms.info.get("occupancy")
    if not occ:
        return ""
    kinds = {str(k) for k in atoms.arrays.get("spacegroup_kinds", range(len(atoms)))}
    lost = sorted(set(map(str, occ)) - kinds)
    if lost:
        return f"site(s) {', '.join(lost)} coincide with another site and ASE keeps only one"
    for kind, species in occ.items():
        if str(kind) in kinds and (len(species) > 1 or abs(sum(species.values()) - 1.0) > 1e-3):
            shares = ", ".join(f"{el} {x:g}" for el, x in species.items())
            return (f"site {kind} has partial or mixed occupancy ({shares}): the model needs an "
                    "ordered structure (e.g. pymatgen's OrderDisorderedStructureTransformation)")
    return ""


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
    problem = geometry_problem(atoms, min_dist)
    if problem:
        raise StructureError(f"{source}: {problem}")
    if absorbers is not None or absorber_z is not None:
        absorber_sites(atoms, source, absorber_z, absorbers)


def absorber_sites(atoms: Atoms, source: str, absorber_z: int | None = None,
                   chosen: Sequence[int] | None = None) -> list[int]:
    """The absorbing sites of ``atoms``: ``chosen`` checked (in range and, with ``absorber_z``,
    of that element) or, without it, every atom of ``absorber_z``. The one place that
    decides which atoms absorb, for ingest, ``predict`` and the Python API; a
    StructureError names ``source``."""
    if chosen is None:
        if absorber_z is None:
            raise ValueError("absorber_sites: give the sites or the absorbing element")
        idx = [int(i) for i in np.flatnonzero(atoms.numbers == absorber_z)]
        if not idx:
            raise StructureError(f"{source}: no absorber atom (no atom with Z={absorber_z}: "
                                 f"{atoms.get_chemical_formula()} has no {chemical_symbols[absorber_z]} atom)")
        return idx
    chosen = [int(a) for a in chosen]
    if not chosen:
        raise StructureError(f"{source}: no absorber atom")
    bad = [a for a in chosen if not 0 <= a < len(atoms)]
    if bad:
        raise StructureError(f"{source}: absorber indices {bad} out of range (0..{len(atoms) - 1})")
    if absorber_z is not None:
        wrong = [a for a in chosen if atoms.numbers[a] != absorber_z]
        if wrong:
            said = ", ".join(f"{a} ({atoms[a].symbol})" for a in wrong)
            raise StructureError(f"{source}: absorbers [{said}] are not "
                                 f"{chemical_symbols[absorber_z]} (Z={absorber_z})")
    return chosen


def geometry_problem(atoms: Atoms, min_dist: float = MIN_DISTANCE, pair_factor: float = PAIR_FACTOR) -> str:
    """The first physical impossibility of a structure, or "" (ingest, generation, prediction).

    Non-finite positions or cell; periodic along a direction with no cell vector, or a
    fully periodic cell of (near) zero volume; two atoms (or an atom and a periodic image)
    closer than ``min_dist`` or than ``pair_factor`` x their covalent-radius sum.
    """
    from ase.data import covalent_radii

    bad = np.flatnonzero((atoms.numbers < 1) | (atoms.numbers >= len(chemical_symbols)))
    if len(bad):
        return f"atom {bad[0]} has atomic number {atoms.numbers[bad[0]]}, not an element (1-118)"
    if not np.all(np.isfinite(atoms.positions)):
        return "non-finite atomic positions"
    if any(atoms.pbc):
        cell = atoms.cell.array
        if not np.all(np.isfinite(cell)):
            return "non-finite cell"
        if atoms.cell.rank < int(np.sum(atoms.pbc)):
            return "periodic along a direction with no cell vector"
        if all(atoms.pbc) and abs(atoms.cell.volume) < 1.0:
            return f"periodic cell of volume {abs(atoms.cell.volume):.2g} Å^3"
    radii = covalent_radii[atoms.numbers]
    reach = max(min_dist, pair_factor * 2 * float(radii.max()))
    i, j, d = neighbours("ijd", atoms, reach)
    limit = np.maximum(min_dist, pair_factor * (radii[i] + radii[j]))
    close = np.flatnonzero(d < limit)
    if close.size:
        k = close[np.argmin(d[close] / limit[close])]
        a, b = int(i[k]), int(j[k])
        return (f"overlapping atoms {a} ({atoms[a].symbol}) and {b} ({atoms[b].symbol}) at {d[k]:.3f} Å "
                f"< {limit[k]:.2f} Å (duplicated or broken atoms, not a bond)")
    return ""


def absorber_problem(atoms: Atoms, groups: Sequence[Sequence[int]], r_max: float,
                     min_neighbours: int = 1) -> str:
    """An absorber with fewer than ``min_neighbours`` atoms within ``r_max``, or ""."""
    i = neighbours("i", atoms, r_max)
    counts = np.bincount(i, minlength=len(atoms))
    for group in groups:
        for a in group:
            if counts[int(a)] < min_neighbours:
                return (f"absorber {int(a)} ({atoms[int(a)].symbol}) has {int(counts[int(a)])} neighbour(s) "
                        f"within {r_max:g} Å (at least {min_neighbours} needed): isolated or cut out")
    return ""


def absorbers_of(atoms: Atoms, z: int) -> list[int]:
    """Indices of every atom of element ``z`` (the sites an FDMNES run averages)."""
    return [int(i) for i in np.flatnonzero(atoms.numbers == z)]
