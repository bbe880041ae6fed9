"""FDMNES runs: structure from the input file, convolved spectrum as the target.

Energy reference (documented choice; see ``fdmnes_e0``): FDMNES writes photoelectron
energies on a relative axis whose zero sits at the tabulated edge energy ``E_edge``
on the absolute (photon) scale, i.e. E_photon = E + E_edge (the XANESNET files are
written exactly so). ``E_cut`` (labelled ``E_Fermi`` in 2022 headers) is the Fermi
level on that axis, where the convolution cuts occupied states; it varies with the
structure. So E0 = E_edge + E_cut is the Fermi level on the absolute scale (the
paper's "E0 referenced to the Fermi energy"). A multi-site convolution is written
on the axis of the site with the smallest core level ``Epsii`` (FDMNES shifts site
i by Epsii_i - min Epsii, the ``Shift`` printed per site in its log), so the run's
E0 uses that reference site's E_cut.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.geometry import cellpar_to_cell

from xane3.data.readers.structures import absorbers_of, read_structure
from xane3.data.record import SpectrumRecord

STRUCTURE_KEYS = {"crystal", "cristal", "molecule"}
FILENAME_KEYS = {"filout", "cif_file", "pdb_file", "conv_out", "fdmnes_out"}


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


def read_fdmnes_output(path: str | Path) -> FdmnesOutput:
    """Parse an FDMNES spectrum file: 2025/classic (bare header), 2022 (``#``), XANESNET."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise FdmnesError(f"{path}: cannot read ({exc})") from exc
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
    expect_name = False  # Filout/Cif_file take a (non-numeric) file name argument
    for raw in path.read_text().splitlines():
        line = raw.split("!", 1)[0].strip()
        if not line:
            continue
        if _floats(line.split()[:1]) is None and not expect_name:
            key = line.split()[0].lower()
            if key == "end":
                break
            current = blocks.setdefault(key, [])
            expect_name = key in FILENAME_KEYS
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


def find_input(run_dir: Path) -> Path | None:
    """The run's input: the first file named in fdmfile.txt, else ``*_in.txt``."""
    fdmfile = run_dir / "fdmfile.txt"
    if fdmfile.is_file():
        names = fdmfile.read_text().split()
        for name in names[1:]:
            if (run_dir / name).is_file():
                return run_dir / name
    candidates = sorted(run_dir.glob("*_in.txt"))
    return candidates[0] if candidates else None


def site_outputs(run_dir: Path, filout: str) -> list[Path]:
    """Per-absorbing-site outputs ``Filout.txt`` or ``Filout_1..k.txt``, in site order."""
    stem = Path(filout).name
    pat = re.compile(rf"^{re.escape(stem)}(?:_(\d+))?\.(?:txt|dat)$")
    found = [(int(m.group(1) or 0), p) for p in run_dir.iterdir() if (m := pat.match(p.name))]
    return [p for _, p in sorted(found)]


def conv_output(run_dir: Path, filout: str) -> Path | None:
    stem = Path(filout).name
    for name in (f"{stem}_conv.txt", f"{stem}_conv.dat"):
        if (run_dir / name).is_file():
            return run_dir / name
    found = sorted(run_dir.glob("*_conv.txt")) + sorted(run_dir.glob("*_conv.dat"))
    return found[0] if found else None


def site_shifts(sites: list[FdmnesOutput]) -> np.ndarray:
    """Shift FDMNES applies to each site in the convolution: Epsii_i - min Epsii."""
    eps = np.array([s.epsii if s.epsii is not None else np.nan for s in sites])
    if np.isnan(eps).any():
        return np.zeros(len(sites))
    return eps - eps.min()


def fdmnes_e0(sites: list[FdmnesOutput], conv: FdmnesOutput | None = None) -> tuple[float, float]:
    """(E0, E_edge) for a convolution of ``sites`` (see module docstring).

    E0 = E_edge + E_cut of the reference site (zero shift). Without per-site
    outputs, a convolution header with E_edge (2022 style) gives E_edge + E_cut.
    """
    if sites:
        src = sites[int(np.argmin(site_shifts(sites)))]
    elif conv is not None:
        src = conv
    else:
        raise FdmnesError("no FDMNES output to take E_edge from")
    if src.e_edge is None:
        raise FdmnesError(f"{src.path}: no E_edge in header: cannot place energies on the absolute scale")
    return src.e_edge + (src.e_cut or 0.0), src.e_edge


def read_fdmnes_run(run_dir: str | Path) -> list[SpectrumRecord]:
    """One record per run: the convolved spectrum, whose absorbers are ALL atoms with
    Z == Z_absorber (FDMNES computes and averages every one), or the sites an
    ``Absorber`` keyword names. Energies absolute (relative + E_edge), E0 per
    ``fdmnes_e0``; meta keeps per-site E_cut and shifts."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FdmnesError(f"{run_dir}: not a directory")
    inp_path = find_input(run_dir)
    if inp_path is None:
        raise FdmnesError(f"{run_dir}: no FDMNES input (fdmfile.txt / *_in.txt): "
                          "a spectrum without a structure cannot be ingested")
    inp = read_fdmnes_input(inp_path)
    conv_path = conv_output(run_dir, inp.filout)
    if conv_path is None:
        raise FdmnesError(f"{run_dir}: no convolved output {inp.filout}_conv.txt")
    conv = read_fdmnes_output(conv_path)
    sites = [read_fdmnes_output(p) for p in site_outputs(run_dir, inp.filout)]
    try:
        e0, e_edge = fdmnes_e0(sites, conv)
    except FdmnesError as exc:
        raise FdmnesError(f"{conv_path}: {exc}") from exc
    for s in sites:
        z = s.header.get("Z")
        if z is not None and int(z) != inp.z_absorber:
            raise FdmnesError(f"{s.path}: Z={int(z)} but the input says Z_absorber={inp.z_absorber}")
    absorbers = inp.absorbers if inp.absorbers else absorbers_of(inp.atoms, inp.z_absorber)
    if not absorbers:
        raise FdmnesError(f"{inp_path}: no absorber atom (no atom with Z={inp.z_absorber})")
    meta: dict = {"code": "fdmnes", "convolved": True, "edge": inp.edge, "e_edge": e_edge,
                  "n_sites": len(sites), "e_cut_sites": [s.e_cut for s in sites],
                  "shift_sites": site_shifts(sites).tolist(), "input": str(inp_path)}
    meta_path = run_dir / "run_metadata.json"
    if meta_path.is_file():
        try:
            info = json.loads(meta_path.read_text())
            if isinstance(info.get("structure"), str):
                meta["structure_name"] = info["structure"]
        except (json.JSONDecodeError, AttributeError):
            pass
    return [SpectrumRecord(energy=conv.energy + e_edge, mu=conv.mu, source=str(conv_path),
                           absorber_z=inp.z_absorber, e0=e0, e0_kind="fermi", atoms=inp.atoms,
                           absorbers=absorbers, meta=meta)]


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "fdmfile.txt").is_file() or any(path.glob("*_conv.txt"))
                              or any(path.glob("*_conv.dat")))


def find_runs(root: str | Path) -> list[Path]:
    """``root`` itself if it is a run, else every run directory below it."""
    root = Path(root)
    if is_run_dir(root):
        return [root]
    return sorted((p for p in root.rglob("*") if is_run_dir(p)), key=lambda p: str(p))
