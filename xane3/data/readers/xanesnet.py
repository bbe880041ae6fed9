"""The XANESNET data format: ``xyz/STEM.xyz`` paired with ``xanes/STEM.txt``.

xyz: atom count, a comment, then ``Z x y z`` rows (the first column is the atomic
number, so ASE's xyz reader does not apply). The absorber sits at the origin; its
element is read from the file, never assumed. Spectra are FDMNES per-site outputs
(two header lines, absolute energies, unconvolved) with no Fermi level recorded,
so E0 is left to the normaliser (inflection point, ``e0_kind="inflection"``).
Molecules: no cell, no periodic boundaries.

:func:`write_xanesnet_spectrum` writes a spectrum in the same layout (header
lines and column widths as the data set's files), so a scorer that reads
XANESNET spectra reads our predictions unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from xane3.atomic import write_text_atomic
from xane3.data.readers import read_text
from xane3.data.readers.fdmnes import FdmnesError, read_fdmnes_output
from xane3.data.readers.structures import MAX_ATOMS, too_many_atoms
from xane3.data.record import SpectrumRecord

ORIGIN_TOL = 1e-3  # Å: how close to (0, 0, 0) the absorber must be


class XanesnetError(ValueError):
    """A XANESNET file that cannot be used; the message names the file."""


def read_xanesnet_xyz(path: str | Path, max_atoms: int = MAX_ATOMS) -> Atoms:
    """Molecule from a XANESNET xyz (``Z x y z`` rows), non-periodic; more than ``max_atoms``
    (the first line's count) refused before the rows are read."""
    path = Path(path)
    lines = read_text(path, XanesnetError).splitlines()
    try:
        n = int(lines[0].split()[0])
    except (IndexError, ValueError) as exc:
        raise XanesnetError(f"{path}: first line must be the atom count") from exc
    if problem := too_many_atoms(path, n, max_atoms):
        raise XanesnetError(problem)
    rows = [ln for ln in lines[2:] if ln.strip()]  # line 2 is the comment, even when empty
    if len(rows) != n:
        raise XanesnetError(f"{path}: the first line says {n} atoms, the file holds {len(rows)} "
                            "atom rows (truncated, or a wrong count?)")
    try:
        numbers = [int(r.split()[0]) for r in rows]
        positions = [[float(x) for x in r.split()[1:4]] for r in rows]
        arr = np.array(positions, dtype=float)
    except (ValueError, IndexError) as exc:
        raise XanesnetError(f"{path}: atom rows must be 'Z x y z' ({exc})") from exc
    if arr.shape != (n, 3):
        raise XanesnetError(f"{path}: atom rows must be 'Z x y z'")
    return Atoms(numbers=numbers, positions=arr, pbc=False)


def absorber_at_origin(atoms: Atoms, source: str | Path, tol: float = ORIGIN_TOL) -> int:
    """Index of the single atom at the origin (XANESNET's absorber convention)."""
    at_origin = np.flatnonzero(np.linalg.norm(atoms.positions, axis=1) < tol)
    if len(at_origin) != 1:
        raise XanesnetError(f"{source}: expected one absorber atom at the origin, found {len(at_origin)}")
    return int(at_origin[0])


def read_xanesnet_pair(xyz_path: str | Path, xanes_path: str | Path,
                       absorber_z: int | None = None) -> SpectrumRecord:
    """One record: the molecule, its absorber (at the origin) and the raw spectrum."""
    xyz_path, xanes_path = Path(xyz_path), Path(xanes_path)
    atoms = read_xanesnet_xyz(xyz_path)
    idx = absorber_at_origin(atoms, xyz_path)
    z = int(atoms.numbers[idx])
    if absorber_z is not None and z != absorber_z:
        raise XanesnetError(f"{xyz_path}: atom at the origin has Z={z}, expected {absorber_z}")
    try:
        out = read_fdmnes_output(xanes_path)
    except FdmnesError as exc:
        raise XanesnetError(str(exc)) from exc
    meta = {"code": "fdmnes", "convolved": False, "name": xyz_path.stem, "structure_file": str(xyz_path)}
    return SpectrumRecord(energy=out.energy.copy(), mu=out.mu.copy(), source=str(xanes_path),
                          absorber_z=z, e0=None, e0_kind="inflection", atoms=atoms,
                          absorbers=[idx], meta=meta)


def xanesnet_pairs(root: str | Path, limit: int | None = None) -> list[tuple[Path, Path]]:
    """(xyz, spectrum) file pairs matched by stem, sorted; a spectrum without its
    xyz (or vice versa) is an error naming it, since the set would silently shrink."""
    root = Path(root)
    xyz_dir, xanes_dir = root / "xyz", root / "xanes"
    if not xyz_dir.is_dir() or not xanes_dir.is_dir():
        raise XanesnetError(f"{root}: expected subfolders xyz/ and xanes/")
    xyz = {p.stem: p for p in xyz_dir.glob("*.xyz")}
    xanes = {p.stem: p for p in xanes_dir.glob("*.txt")}
    missing = sorted(set(xyz) ^ set(xanes))
    if missing:
        raise XanesnetError(f"{root}: {len(missing)} unpaired files, e.g. {missing[0]!r}")
    stems = sorted(xyz)
    if limit is not None:
        stems = stems[:limit]
    return [(xyz[s], xanes[s]) for s in stems]


def read_xanesnet_dir(root: str | Path, limit: int | None = None,
                      absorber_z: int | None = None) -> list[SpectrumRecord]:
    """Every pair under ``root`` (first ``limit`` by name); raises on the first bad one."""
    return [read_xanesnet_pair(x, s, absorber_z) for x, s in xanesnet_pairs(root, limit)]


HEADER = ("    FDMNES", "    energy     <xanes>")  # the data set's two header lines


def is_xanesnet_xyz(path: str | Path) -> bool:
    """True for an xyz whose atom rows start with an atomic number (not a symbol)."""
    try:
        with open(path) as fh:
            lines = [fh.readline() for _ in range(3)]
        int(lines[0].split()[0])
        return lines[2].split()[0].isdigit()
    except (OSError, IndexError, ValueError, UnicodeDecodeError):
        return False


def format_xanesnet_spectrum(energy: np.ndarray, mu: np.ndarray) -> str:
    """Two header lines, then ``energy intensity`` rows as FDMNES prints them."""
    energy, mu = np.asarray(energy, float), np.asarray(mu, float)
    if energy.shape != mu.shape or energy.ndim != 1:
        raise ValueError(f"energy {energy.shape} and intensity {mu.shape} must be equal 1-D arrays")
    rows = [f"{e:10.2f}{y:15.7E}" for e, y in zip(energy, mu)]
    return "\n".join([*HEADER, *rows]) + "\n"


def write_xanesnet_spectrum(path: str | Path, energy: np.ndarray, mu: np.ndarray) -> Path:
    """Write one spectrum file atomically (temp file, then rename)."""
    return write_text_atomic(path, format_xanesnet_spectrum(energy, mu))
