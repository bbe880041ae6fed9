"""FDMNES files: the output table (``read_fdmnes_output``) and the input file's structure
and keywords (``read_fdmnes_input``). A run folder, with its energy reference, is
``xane3.data.readers.fdmnes_run``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.geometry import cellpar_to_cell

from xane3.data.readers import read_text
from xane3.data.readers.structures import read_structure

STRUCTURE_KEYS = {"crystal", "cristal", "molecule"}
NAME_KEYS = {"filout", "cif_file", "pdb_file", "conv_out", "fdmnes_out", "edge"}  # "Edge\n K": a name


class FdmnesError(ValueError):
    """An FDMNES file that cannot be parsed or used; the message names the file."""


def _floats(tokens: list[str]) -> list[float] | None:
    try:
        return [float(t.replace("D", "E").replace("d", "e")) for t in tokens]
    except ValueError:
        return None


@dataclass
class FdmnesOutput:
    """One FDMNES spectrum file (per-site output or convolution), any header style.

    header: the ``values = names`` header(s): E_edge, Z, E_cut/E_Fermi, Epsii,
    Gamma_hole, Shift, ... A name given more values than names gets ``_2``, ``_3``.
    columns: every data column by its header name (``Energy``, ``<xanes>``, ...).
    """

    path: Path
    header: dict[str, float]
    columns: dict[str, np.ndarray]
    comments: list[str] = field(default_factory=list)

    @property
    def energy(self) -> np.ndarray:
        """The first column: energies as written (relative eV, or absolute for XANESNET)."""
        return next(iter(self.columns.values()))

    @property
    def mu(self) -> np.ndarray:
        """The isotropic absorption ``<xanes>`` (else the second column)."""
        for name, col in self.columns.items():
            if name.lower() == "<xanes>":
                return col
        return list(self.columns.values())[1]

    @property
    def e_edge(self) -> float | None:
        return self.header.get("E_edge")

    @property
    def e_cut(self) -> float | None:
        """Fermi level on the relative axis (``E_cut``, ``E_Fermi`` before 2023)."""
        return self.header.get("E_cut", self.header.get("E_Fermi"))

    @property
    def epsii(self) -> float | None:
        return self.header.get("Epsii")

    @property
    def multiplicity(self) -> float:
        return self.header.get("natomsym_f", 1.0)


def _parse_header_line(line: str, header: dict[str, float]) -> bool:
    """``v1 v2 ... = name1, name2, ...`` -> header; False if the line is not one."""
    if "=" not in line:
        return False
    left, right = line.lstrip("#").split("=", 1)
    values = _floats(left.split())
    names = [n.strip() for n in right.split(",") if n.strip()]
    if not values or not names:
        return False
    for k, v in enumerate(values):
        name = names[k] if k < len(names) else f"{names[-1]}_{k - len(names) + 2}"
        header[name] = v
    return True


def _shape(token: str) -> str:
    """A number's written form: 4.6629969E-01 -> d.dddddddEdd. Signs and the integer part's
    length are free (9.9E-01 then 1.0E+00, 99.9 then 100.0); a cut number is shorter."""
    t = re.sub(r"[eEdD][+-]?", "E", token.lstrip("+-"))
    return re.sub(r"\d", "d", re.sub(r"^\d+", "d", t))


def _check_last_row(path: Path, text: str, rows: list[list[float]]) -> None:
    """A file cut mid-number still parses (``4.6629969E-01`` cut to ``4.``): its last line has
    no newline and is written unlike the rows before it."""
    if text.endswith("\n") or len(rows) < 2:
        return
    tail = [ln.split() for ln in text.splitlines() if ln.strip()][-2:]
    if [_shape(t) for t in tail[1]] != [_shape(t) for t in tail[0]]:
        raise FdmnesError(f"{path}: the last line {' '.join(tail[1])[:60]!r} ends without a newline "
                          "and is written unlike the rows before it (truncated file?)")


def read_fdmnes_output(path: str | Path) -> FdmnesOutput:
    """Parse an FDMNES spectrum file: 2025/classic (bare header), 2022 (``#``), XANESNET."""
    path = Path(path)
    text = read_text(path, FdmnesError)
    lines = text.splitlines()
    header: dict[str, float] = {}
    comments: list[str] = []
    names: list[str] | None = None
    rows: list[list[float]] = []
    for n, line in enumerate(lines, 1):
        tokens = line.split()
        if not tokens:
            continue
        if rows:  # data block started: every further line must be a full numeric row
            vals = _floats(tokens)
            if vals is None or len(vals) != len(rows[0]):
                raise FdmnesError(f"{path}: line {n}: expected {len(rows[0])} numbers, got "
                                  f"{line.strip()[:60]!r} (truncated or corrupt file?)")
            rows.append(vals)
        elif line.lstrip().startswith("#") or "=" in line:
            if not _parse_header_line(line, header):
                comments.append(line.lstrip("# ").rstrip())
        elif (vals := _floats(tokens)) is not None:
            rows.append(vals)
        else:  # the last text line before the data names the columns
            if names is not None:
                comments.append(" ".join(names))
            names = tokens
    if not rows:
        raise FdmnesError(f"{path}: no data rows (empty or truncated file)")
    _check_last_row(path, text, rows)
    data = np.asarray(rows, dtype=float)
    if data.shape[1] < 2:
        raise FdmnesError(f"{path}: need at least two columns (energy, mu), got {data.shape[1]}")
    if names is None or len(names) != data.shape[1]:
        names = ["Energy"] + [f"col{k}" for k in range(1, data.shape[1])]
    columns = {name: data[:, k] for k, name in enumerate(names)}
    return FdmnesOutput(path=path, header=header, columns=columns, comments=comments)


@dataclass
class FdmnesInput:
    """What an FDMNES input says about the structure and the run."""

    path: Path
    atoms: Atoms
    z_absorber: int
    filout: str
    edge: str | None = None
    absorbers: list[int] | None = None  # from an ``Absorber`` keyword, else all Z_absorber atoms
    keywords: dict[str, list[str]] = field(default_factory=dict)


def _keyword_blocks(path: Path) -> dict[str, list[str]]:
    """Keyword (lower case) -> the lines that follow it ('!' comments dropped)."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    expect_name = False  # Filout, Cif_file, Edge take a (non-numeric) name argument
    for raw in read_text(path, FdmnesError).splitlines():
        line = raw.split("!", 1)[0].strip()
        if not line:
            continue
        if _floats(line.split()[:1]) is None and not expect_name:
            key = line.split()[0].lower()
            if key == "end":
                break
            current = blocks.setdefault(key, [])
            expect_name = key in NAME_KEYS
        elif current is not None:
            current.append(line)
            expect_name = False
    return blocks


def read_fdmnes_input(path: str | Path) -> FdmnesInput:
    """Structure (Crystal/Cristal: fractional, periodic; Molecule: same a b c α β γ
    frame, non-periodic), Z_absorber and Filout from an FDMNES input file.

    Molecule coordinates are multiplied by the cell like Crystal ones (FDMNES's
    convention; with ``1 1 1 90 90 90`` they are plain Cartesian Å). ``Cif_file``
    inputs are read with ASE. Never assumes an element: without ``Z_absorber`` the
    absorber is the first atom's element, as in FDMNES.
    """
    path = Path(path)
    if not path.is_file():
        raise FdmnesError(f"{path}: no such FDMNES input file")
    kw = _keyword_blocks(path)
    struct_keys = [k for k in kw if k in STRUCTURE_KEYS]
    if "cif_file" in kw and kw["cif_file"]:
        atoms = read_structure(path.parent / kw["cif_file"][0].split()[0])
    elif struct_keys:
        key = struct_keys[0]
        if "atom" in kw:
            raise FdmnesError(f"{path}: 'Atom' keyword (species by type index) is not supported")
        if "spgroup" in kw:
            raise FdmnesError(f"{path}: 'Spgroup' (asymmetric unit only) is not supported")
        rows = [_floats(line.split()) for line in kw[key]]
        if not rows or rows[0] is None or len(rows[0]) < 6:
            raise FdmnesError(f"{path}: {key} block needs 'a b c alpha beta gamma' first")
        cell = cellpar_to_cell(rows[0][:6])
        atom_rows = rows[1:]
        if not atom_rows or any(r is None or len(r) < 4 for r in atom_rows):
            raise FdmnesError(f"{path}: {key} block needs lines 'Z x y z'")
        numbers = [int(round(r[0])) for r in atom_rows]  # type: ignore[index]
        coords = np.array([r[1:4] for r in atom_rows])  # type: ignore[index]
        periodic = key != "molecule"
        atoms = Atoms(numbers=numbers, positions=coords @ cell,
                      cell=cell if periodic else None, pbc=periodic)
    else:
        raise FdmnesError(f"{path}: no Crystal, Molecule or Cif_file block (no structure)")
    absorbers: list[int] | None = None
    if kw.get("absorber"):  # explicit sites (1-based); FDMNES adds their symmetry images
        absorbers = [int(float(t)) - 1 for line in kw["absorber"] for t in line.split()]
        if any(not 0 <= a < len(atoms) for a in absorbers):
            raise FdmnesError(f"{path}: Absorber indices {[a + 1 for a in absorbers]} out of 1..{len(atoms)}")
    if kw.get("z_absorber"):
        z_abs = int(float(kw["z_absorber"][0].split()[0]))
    elif absorbers:
        z_abs = int(atoms.numbers[absorbers[0]])
    else:
        z_abs = int(atoms.numbers[0])
    filout = kw["filout"][0].split()[0] if kw.get("filout") else path.stem
    edge = kw["edge"][0].split()[0] if kw.get("edge") else None
    return FdmnesInput(path, atoms, z_abs, filout, edge, absorbers, kw)
