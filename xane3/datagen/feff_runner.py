"""One FEFF10 Fe K-edge XANES calculation: input writing, running, checking, reading.

Each calculation runs in a child Python process so that (1) the glibc malloc variables,
which make FEFF's SCF ~3x faster with bit-identical output, are in the environment of
every FEFF stage worker from its start, (2) FEFF's very chatty stdout goes to a log file
instead of the generator's terminal, and (3) a hung run can be killed as a whole.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from xane3.data.readers.feff import FeffError, read_xmu
from xane3.data.readers.structures import PAIR_FACTOR, geometry_problem

FEFF_ENV = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_MAX_": "0",
            "MALLOC_TRIM_THRESHOLD_": "100000000000", "MALLOC_TOP_PAD_": "536870912"}


@dataclass(frozen=True)
class FeffSettings:
    """Physics and numerics of one calculation; its JSON is part of the cache key.

    Defaults follow the measurements in docs/data.md: SCF 3 Å with damped mixing 0.05
    (no SCF puts the edge 9 eV low; mixing 0.2 crashed on magnetite), FMS 5 Å, FSR core
    hole (RPA gives unphysical pre-edges on tetrahedral/surface Fe), EXCHANGE 0 (HL), and
    an EGRID from 35 eV below to k = 6.0 1/Å (~137 eV) above the Fermi level (0.2 eV steps
    over the edge, -5..+20 eV; ~260 points; points are cheap next to the SCF), covering
    the [-30, +100] eV window the model uses.
    """

    scf_radius: float = 3.0
    scf_mix: float = 0.05
    scf_iterations: int = 30
    fms_radius: float = 5.0
    cluster_radius: float = 7.0
    corehole: str = "FSR"
    exchange: int = 0
    egrid: tuple[str, ...] = ("e_grid -35 -5 0.5", "e_grid last 20 0.2", "k_grid last 6.0 0.05")
    xanes_kmax: float = 6.0
    min_distance: float = 1.2  # Å: closer pairs are rejected before FEFF (duplicates pass FEFF)
    pair_factor: float = PAIR_FACTOR  # and pairs closer than this x their covalent-radius sum
    stage_timeout: float = 900.0  # s per FEFF stage

    def __post_init__(self) -> None:  # --settings-json reaches here unchecked: a FEFF input must not
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "egrid":
                if not isinstance(v, tuple) or not all(isinstance(x, str) for x in v):
                    raise ValueError(f"egrid={v!r}: expected a list of FEFF EGRID lines (strings)")
            elif f.name == "corehole":
                if not isinstance(v, str) or not v:
                    raise ValueError(f"corehole={v!r}: expected a FEFF COREHOLE name such as FSR")
            elif isinstance(v, bool) or not isinstance(v, int if f.type in ("int", int) else (int, float)):
                raise ValueError(f"{f.name}={v!r}: expected a {'whole ' if f.type in ('int', int) else ''}number")
            elif v < 0 or (v == 0 and f.name.endswith(("radius", "timeout", "iterations", "kmax"))):
                raise ValueError(f"{f.name}={v!r}: expected a positive value")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def differs_in(self, stored_json: str) -> list[str]:
        """The fields that shape a spectrum and differ from a shard's stored settings (the
        geometry checks and the timeout do not; fields a shard predates are not compared)."""
        stored = json.loads(stored_json)
        return sorted(k for k, v in asdict(self).items() if k not in NOT_IN_SPECTRUM and k in stored
                      and json.loads(json.dumps(v)) != stored[k])


NOT_IN_SPECTRUM = ("min_distance", "pair_factor", "stage_timeout")  # checks and limits, not physics


QUALITY = {
    "default": FeffSettings(),
    "high": FeffSettings(scf_radius=4.5, fms_radius=7.0, cluster_radius=8.5,
                         stage_timeout=3600.0),
}


class FeffFailure(RuntimeError):
    """A calculation that produced no usable spectrum; ``log`` holds FEFF's own words."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


@dataclass
class FeffResult:
    energy: np.ndarray  # absolute energies (omega column), eV
    mu: np.ndarray
    e0: float  # absolute Fermi level: omega - e + Mu
    scf_converged: bool
    seconds: float


def cluster(atoms: Atoms, absorber: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Atomic numbers and positions (absorber at the origin, first) within ``radius``.

    Periodic images are included along every periodic axis; the 15 Å vacuum of a slab
    keeps images across the vacuum out of a 7-8.5 Å cluster.
    """
    i, j, vec = neighbor_list("ijD", atoms, radius)
    mine = i == absorber
    j, vec = j[mine], vec[mine]
    order = np.lexsort((j, np.round(np.linalg.norm(vec, axis=1), 6)))
    numbers = np.concatenate([[atoms.numbers[absorber]], atoms.numbers[j[order]]])
    pos = np.vstack([np.zeros(3), vec[order]])
    return numbers, pos


def feff_input(atoms: Atoms, absorber: int, settings: FeffSettings, title: str = "") -> str:
    """The feff.inp text for an Fe K edge at ``atoms[absorber]``."""
    if atoms.numbers[absorber] != 26:
        raise ValueError(f"absorber {absorber} is Z={atoms.numbers[absorber]}, not Fe")
    numbers, pos = cluster(atoms, absorber, settings.cluster_radius)
    species = sorted(set(int(z) for z in numbers[1:]))
    ipot = {z: k + 1 for k, z in enumerate(species)}
    from ase.data import chemical_symbols
    s = settings
    lines = [f"TITLE {title}" if title else "TITLE xane3", "EDGE K", "S02 1.0",
             "CONTROL 1 1 1 1 1 1", "PRINT 0 0 0 0 0 0", f"EXCHANGE {s.exchange}",
             f"COREHOLE {s.corehole}",
             f"SCF {s.scf_radius} 0 {s.scf_iterations} {s.scf_mix} 1",
             f"FMS {s.fms_radius} 0", f"XANES {s.xanes_kmax} 0.07 0.0"]
    if s.egrid:
        lines += ["EGRID", *s.egrid]
    lines += ["", "POTENTIALS", f"  0 26 {chemical_symbols[26]} -1 -1 0.001"]
    for z in species:
        lines.append(f"  {ipot[z]} {z} {chemical_symbols[z]} -1 -1 {int((numbers[1:] == z).sum())}")
    lines += ["", "ATOMS"]
    for k, (z, p) in enumerate(zip(numbers, pos)):
        pot = 0 if k == 0 else ipot[int(z)]
        lines.append(f"  {p[0]:12.6f} {p[1]:12.6f} {p[2]:12.6f} {pot} "
                     f"{chemical_symbols[int(z)]} {np.linalg.norm(p):9.5f}")
    lines += ["END", ""]
    return "\n".join(lines)


_CHILD = """
import sys, feff10
work, timeout = sys.argv[1], float(sys.argv[2])
inp = feff10.FeffInput.from_file(work + "/feff.inp")
cfg = feff10.FeffConfig(work, inp, stage_timeout=timeout)
try:
    feff10.FeffPipeline(cfg).run()
except feff10.FeffError as err:
    print("FEFF10 ERROR:", type(err).__name__, err, flush=True)
    sys.exit(3)
"""


def scf_converged(work: Path) -> bool:
    """False when FEFF's SCF stopped without converging (FEFF only warns about it).

    log1.dat says "Convergence reached in N iterations" or "Convergence not reached";
    failing that, the last column of convergence.scf's final row is the converged flag.
    """
    log1 = work / "log1.dat"
    if log1.exists():
        txt = log1.read_text(errors="replace").lower()
        if "convergence not reached" in txt:
            return False
        if "convergence reached" in txt:
            return True
    conv = work / "convergence.scf"
    if conv.exists():
        rows = [r.split() for r in conv.read_text(errors="replace").splitlines()
                if r.strip() and not r.lstrip().startswith("#")]
        return bool(rows) and rows[-1][-1] == "1"
    return False


def _log_tail(work: Path, limit: int = 6000) -> str:
    parts = []
    for name in ("feff.stdout", "log1.dat", "log.dat", "convergence.scf"):
        p = work / name
        if p.exists():
            parts.append(f"==> {name} <==\n" + p.read_text(errors="replace")[-limit:])
    return "\n".join(parts)


def run_feff(inp: str, work: Path, stage_timeout: float = 900.0, keep: bool = False) -> FeffResult:
    """Run one FEFF10 calculation in ``work`` (deleted afterwards unless ``keep``).

    Raises FeffFailure (with FEFF's log) when FEFF fails, times out or gives no spectrum.
    """
    work = Path(work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / "feff.inp").write_text(inp)
    env = {**os.environ, **FEFF_ENV, "OMP_NUM_THREADS": "1"}
    t0 = time.time()
    try:
        with open(work / "feff.stdout", "w") as out:
            proc = subprocess.run([sys.executable, "-c", _CHILD, str(work), str(stage_timeout)],
                                  stdout=out, stderr=subprocess.STDOUT, env=env,
                                  timeout=stage_timeout * 6)
        seconds = time.time() - t0
        xmu = work / "xmu.dat"
        if proc.returncode != 0 or not xmu.exists():
            raise FeffFailure(f"FEFF exit code {proc.returncode}, xmu.dat "
                              f"{'present' if xmu.exists() else 'missing'}", _log_tail(work))
        try:  # the one xmu.dat reader: (omega, mu) and the Fermi level on the omega scale
            x = read_xmu(xmu)
        except FeffError as err:
            raise FeffFailure(str(err), _log_tail(work)) from None
        energy, mu, fermi = x.omega, x.mu, x.e0
        if len(energy) < 10 or not np.all(np.isfinite(mu)) or np.any(np.diff(energy) <= 0):
            raise FeffFailure(f"bad xmu.dat ({len(energy)} rows)", _log_tail(work))
        return FeffResult(energy, mu, fermi, scf_converged(work), seconds)
    except subprocess.TimeoutExpired as err:
        raise FeffFailure(f"FEFF timed out after {err.timeout:.0f} s", _log_tail(work)) from None
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def calculate(atoms: Atoms, absorber: int, settings: FeffSettings, work: Path,
              title: str = "") -> FeffResult:
    """Validate the structure, write the input and run FEFF (the one-call entry point)."""
    problem = geometry_problem(atoms, settings.min_distance, settings.pair_factor)
    if problem:  # the check ingest and prediction run
        raise FeffFailure(f"{problem}: structure rejected before FEFF")
    inp = feff_input(atoms, absorber, settings, title)
    return run_feff(inp, work, settings.stage_timeout)
