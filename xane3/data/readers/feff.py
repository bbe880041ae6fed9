"""FEFF runs: ``xmu.dat`` (omega e k mu mu0 chi) with the ``feff.inp`` that made it.

Energy reference: xmu's ``e`` axis is omega minus a constant, and the header's
``Mu=`` is the Fermi level on that axis (k = 0 there), so the Fermi level on the
absolute scale is E0 = omega - e + Mu, the same at every row (checked).
The structure is the feff.inp ATOMS cluster (non-periodic; FEFF has no cell
there) and the absorber is its potential-0 atom. FEFF's mu already carries the
core-hole lifetime broadening, so the record is marked ``convolved``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from xane3.data.readers import read_text
from xane3.data.record import SpectrumRecord

XMU_COLUMNS = ("omega", "e", "k", "mu", "mu0", "chi")
_MU_RE = re.compile(r"\bMu\s*=\s*([-+]?\d*\.?\d+(?:[EeDd][-+]?\d+)?)")


class FeffError(ValueError):
    """A FEFF file that cannot be parsed or used; the message names the file."""


@dataclass
class XmuData:
    """The columns of an xmu.dat and its header; ``fermi`` is Mu on the e axis."""

    path: Path
    omega: np.ndarray
    e: np.ndarray
    k: np.ndarray
    mu: np.ndarray
    mu0: np.ndarray
    chi: np.ndarray
    fermi: float
    header: list[str] = field(default_factory=list)

    @property
    def e0(self) -> float:
        """Fermi level on the absolute (omega) scale: omega - e + Mu."""
        return float(np.median(self.omega - self.e) + self.fermi)


def read_xmu(path: str | Path) -> XmuData:
    """Parse xmu.dat; a missing ``Mu=`` line, ragged rows or an inconsistent
    omega - e offset are errors naming the file."""
    path = Path(path)
    text = read_text(path, FeffError)
    header = [ln for ln in text.splitlines() if ln.lstrip().startswith("#")]
    fermi = None
    for ln in header:
        if m := _MU_RE.search(ln):
            fermi = float(m.group(1).replace("D", "E").replace("d", "e"))
            break
    if fermi is None or not np.isfinite(fermi):
        raise FeffError(f"{path}: no 'Mu=' (Fermi level) in the header")
    rows = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not rows:
        raise FeffError(f"{path}: no data rows (empty or truncated file)")
    bad = [i for i, r in enumerate(rows) if len(r) != len(XMU_COLUMNS)]
    if bad:
        raise FeffError(f"{path}: data row {bad[0] + 1} has {len(rows[bad[0]])} columns, expected "
                        f"{len(XMU_COLUMNS)} (truncated or corrupt file?)")
    try:
        data = np.array(rows, dtype=float)
    except ValueError as exc:
        raise FeffError(f"{path}: non-numeric data ({exc})") from exc
    offset = data[:, 0] - data[:, 1]
    if np.ptp(offset) > 1e-3:
        raise FeffError(f"{path}: omega - e is not constant (spread {np.ptp(offset):.3g} eV)")
    cols = dict(zip(XMU_COLUMNS, data.T))
    return XmuData(path=path, fermi=fermi, header=header, **cols)


@dataclass
class FeffCluster:
    """The ATOMS cluster of a feff.inp and its absorber (potential 0)."""

    path: Path
    atoms: Atoms
    absorber: int
    absorber_z: int
    edge: str | None


def read_feff_inp(path: str | Path) -> FeffCluster:
    """Cluster and absorber from feff.inp, parsed with the feff10 bindings."""
    path = Path(path)
    if not path.is_file():
        raise FeffError(f"{path}: no such feff.inp")
    try:
        import feff10
    except ImportError as exc:  # pragma: no cover - feff10-rs is a declared dependency
        raise FeffError(f"{path}: reading feff.inp needs the feff10-rs package") from exc
    try:
        inp = feff10.FeffInput.from_file(str(path))
    except feff10.FeffError as exc:
        raise FeffError(f"{path}: cannot parse feff.inp ({exc})") from exc
    pots = {p.ipot: p.z for p in inp.potentials}
    atoms_in = inp.atoms
    if not atoms_in:
        raise FeffError(f"{path}: no ATOMS block (CIF/RECIPROCAL inputs are not supported)")
    missing = sorted({a.ipot for a in atoms_in} - set(pots))
    if missing:
        raise FeffError(f"{path}: ATOMS use potentials {missing} not defined in POTENTIALS")
    absorbers = [i for i, a in enumerate(atoms_in) if a.ipot == 0]
    if len(absorbers) != 1:
        raise FeffError(f"{path}: expected one absorber (potential 0) in ATOMS, found {len(absorbers)}")
    atoms = Atoms(numbers=[pots[a.ipot] for a in atoms_in],
                  positions=[[a.x, a.y, a.z] for a in atoms_in], pbc=False)
    return FeffCluster(path, atoms, absorbers[0], int(pots[0]), inp.edge)


def read_feff_dir(run_dir: str | Path) -> list[SpectrumRecord]:
    """One record from ``run_dir/xmu.dat`` + ``run_dir/feff.inp``."""
    run_dir = Path(run_dir)
    xmu_path, inp_path = run_dir / "xmu.dat", run_dir / "feff.inp"
    if not xmu_path.is_file():
        raise FeffError(f"{run_dir}: no xmu.dat")
    if not inp_path.is_file():
        raise FeffError(f"{xmu_path}: no feff.inp beside it: a spectrum without a structure "
                        "cannot be ingested")
    xmu = read_xmu(xmu_path)
    cl = read_feff_inp(inp_path)
    meta = {"code": "feff", "convolved": True, "edge": cl.edge, "fermi_e": xmu.fermi,
            "input": str(inp_path)}
    return [SpectrumRecord(energy=xmu.omega, mu=xmu.mu, source=str(xmu_path), absorber_z=cl.absorber_z,
                           e0=xmu.e0, e0_kind="fermi", atoms=cl.atoms, absorbers=[cl.absorber],
                           meta=meta)]


def find_feff_runs(root: str | Path) -> list[Path]:
    """Directories at or below ``root`` holding an xmu.dat."""
    root = Path(root)
    if (root / "xmu.dat").is_file():
        return [root]
    return sorted({p.parent for p in root.rglob("xmu.dat")}, key=str)
