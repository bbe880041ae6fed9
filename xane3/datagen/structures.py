"""Bulk iron oxides, their slabs and seeded rattled copies (the structures FEFF sees).

Bulk cells are built from space group, lattice constants and Wyckoff positions so every
number is traceable to a publication (cited next to it). Slabs are cut from pymatgen's
oriented unit cell: we stack it, find the atomic planes along the surface normal and
keep the thinnest stoichiometric window of >= 6 planes, because pymatgen's own slab
thickness counts whole oriented cells (18 planes for hematite (001)), not atomic layers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list
from pymatgen.core import Lattice, Structure
from pymatgen.core.surface import SlabGenerator

from xane3.data.identity import stored, structure_id

PHASES = ("alpha-Fe2O3", "beta-Fe2O3", "gamma-Fe2O3", "Fe3O4", "FeO")
FACETS = ((0, 0, 1), (0, 1, 2), (1, 0, 4), (1, 1, 0))
N_LAYERS = 6
VACUUM = 15.0  # Å between periodic slab images
N_RATTLED = 10
MIN_THICK = 4.0  # Å: used only where atomic planes are not resolved (thickness of 6 planes)
FE_O_BOND = 2.45  # Å: Fe-O first shell cutoff (bulk Fe-O 1.85-2.17 Å; FeO 2.17 Å)


def bulk(phase: str) -> Structure:
    """Conventional bulk cell of one phase (pymatgen Structure)."""
    if phase == "alpha-Fe2O3":
        # Hematite, R-3c (hexagonal axes): a, c, Fe 12c z, O 18e x from
        # Blake, Hessevick, Zoltai & Finger, Am. Mineral. 51, 123 (1966).
        lat = Lattice.hexagonal(5.0356, 13.7489)
        return Structure.from_spacegroup("R-3c", lat, ["Fe", "O"],
                                         [[0, 0, 0.35530], [0.3059, 0, 0.25]])
    if phase == "beta-Fe2O3":
        # Bixbyite type, Ia-3 (origin at -3): a = 9.393 Å (ICDD PDF 00-039-0238, beta-Fe2O3).
        # Positional parameters of the bixbyite type from In2O3, Marezio, Acta Cryst. 20,
        # 723 (1966): M1 8b (1/4,1/4,1/4), M2 24d x = -0.0335, O 48e (0.3905, 0.1529, 0.3832);
        # beta-Fe2O3 refinements give values within ~0.005 of these.
        lat = Lattice.cubic(9.393)
        return Structure.from_spacegroup("Ia-3", lat, ["Fe", "Fe", "O"],
                                         [[0.25, 0.25, 0.25], [-0.0335, 0, 0.25],
                                          [0.3905, 0.1529, 0.3832]])
    if phase == "gamma-Fe2O3":
        return _maghemite()
    if phase == "Fe3O4":
        # Magnetite, Fd-3m: a = 8.3941 Å, O u = 0.2549 (origin 2) from Fleet, Acta Cryst.
        # B37, 917 (1981). pymatgen's from_spacegroup(227) uses ORIGIN CHOICE 1: Fe(A) 8a at
        # (0,0,0), Fe(B) 16d at (5/8,5/8,5/8), O 32e x = u + 1/8 = 0.3799.
        lat = Lattice.cubic(8.3941)
        return Structure.from_spacegroup(227, lat, ["Fe", "Fe", "O"],
                                         [[0, 0, 0], [0.625, 0.625, 0.625],
                                          [0.3799, 0.3799, 0.3799]])
    if phase == "FeO":
        # Wustite, rocksalt Fm-3m: a = 4.332 Å, stoichiometric end member extrapolated by
        # McCammon & Liu, Phys. Chem. Minerals 10, 106 (1984).
        lat = Lattice.cubic(4.332)
        return Structure.from_spacegroup("Fm-3m", lat, ["Fe", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    raise ValueError(f"unknown phase {phase!r}; known: {PHASES}")


def _maghemite() -> Structure:
    """Maghemite as a cubic P4_332 ordered-vacancy cell (Fe21 O32, 53 atoms).

    Shmakov et al., J. Appl. Cryst. 28, 141 (1995) refine gamma-Fe2O3 in P4_332,
    a = 8.3457 Å, with the octahedral vacancies on the 4b site (occupancy ~1/3), i.e.
    the LiFe5O8 structure with Li replaced by 1/3 Fe. Positions are those of the
    LiFe5O8 type (Fe(A) 8c x = -0.0023, Fe(B) 12d (1/8, y, 1/4-y) y = 0.3684, O 8c x = 0.3851,
    O 24e (0.1157, 0.1269, 0.3845); Braun, Nature 170, 1123 (1952) / Tomas et al.).
    An ordered 53-atom cell cannot hold 1.33 Fe on 4b: we fill ONE of the four 4b
    sites (Fe21O32 = Fe2.625O4, 1.6 % Fe-poor versus Fe2.667O4, density 1 % low).
    The exact stoichiometry needs the 160-atom tetragonal P4_12_12 supercell, too large
    for six-layer slabs of four facets.
    """
    lat = Lattice.cubic(8.3457)
    full = Structure.from_spacegroup("P4_332", lat, ["Fe", "Fe", "O", "O", "Li"],
                                     [[-0.0023, -0.0023, -0.0023], [0.125, 0.3684, 0.25 - 0.3684],
                                      [0.3851, 0.3851, 0.3851], [0.1157, 0.1269, 0.3845],
                                      [0.625, 0.625, 0.625]])
    li = [i for i, s in enumerate(full) if s.specie.symbol == "Li"]
    full.replace(li[0], "Fe")  # one 4b site filled; the other three are the vacancies
    full.remove_sites(li[1:])
    return full


def density(struct: Structure | Atoms) -> float:
    """Mass density in g/cm^3."""
    if isinstance(struct, Structure):
        return float(struct.density)
    return float(sum(struct.get_masses()) / struct.get_volume() * 1.66053906660)


def to_atoms(struct: Structure) -> Atoms:
    return Atoms(numbers=[s.specie.Z for s in struct], positions=struct.cart_coords,
                 cell=struct.lattice.matrix, pbc=True)


@dataclass
class Slab:
    """A periodic slab (vacuum along z) with its provenance."""

    atoms: Atoms
    phase: str
    facet: str
    rattle: int  # 0 = unrattled parent
    parent: str = ""  # structure id of the unrattled slab
    surface_fe: list[int] = field(default_factory=list)  # Fe with a missing Fe-O bond
    inner_fe: list[int] = field(default_factory=list)
    rattle_sigma: tuple[float, float] = (0.0, 0.0)  # (position Å, cell Å)

    @property
    def id(self) -> str:
        return structure_id(stored(self.atoms))  # the id its shard rows are read back with


def _planes(heights: np.ndarray, tol: float = 0.3) -> list[np.ndarray]:
    """Group atom indices into planes: a gap > tol Å along the normal starts a new one."""
    order = np.argsort(heights)
    groups, cur = [], [order[0]]
    for a, b in zip(order[:-1], order[1:]):
        if heights[b] - heights[a] > tol:
            groups.append(np.array(cur))
            cur = []
        cur.append(b)
    groups.append(np.array(cur))
    return groups


def _fe_o_cn(atoms: Atoms) -> np.ndarray:
    """Number of O within FE_O_BOND of every atom (O: number of Fe)."""
    i, j = neighbor_list("ij", atoms, FE_O_BOND)
    z = atoms.numbers
    mixed = z[i] != z[j]
    return np.bincount(i[mixed], minlength=len(atoms))


def make_slab(phase: str, miller: tuple[int, int, int], n_layers: int = N_LAYERS,
              vacuum: float = VACUUM, target_fe: int = 27) -> Slab:
    """Thinnest stoichiometric slab of >= n_layers atomic planes, tens of Fe sites."""
    blk = bulk(phase)
    ouc = SlabGenerator(blk, miller, 10.0, 10.0, primitive=True).oriented_unit_cell
    a, b, c = ouc.lattice.matrix
    normal = np.cross(a, b)
    normal /= np.linalg.norm(normal)
    per_cell = len(_planes(ouc.cart_coords @ normal))
    reps = max(3, int(np.ceil(60 / per_cell)))
    stack = to_atoms(ouc).repeat((1, 1, reps))
    stack.set_cell([a, b, c * reps + normal * 50.0], scale_atoms=False)  # break z periodicity
    stack.pbc = (True, True, False)
    heights = stack.positions @ normal
    planes, min_thick = _planes(heights), 0.0
    if per_cell < 2:  # planes not resolved (e.g. bixbyite (012)): every height is a plane
        planes, min_thick = _planes(heights, 0.02), MIN_THICK
    bulk_cn = _fe_o_cn(stack)
    ratio = sum(s.specie.symbol == "Fe" for s in blk) / len(blk)
    mid = len(planes) // 2
    best = None
    for n in range(n_layers, len(planes) // 2):
        for start in range(max(1, mid - 2 * n), min(len(planes) - n - 1, mid + n)):
            idx = np.concatenate(planes[start:start + n])
            nfe = int((stack.numbers[idx] == 26).sum())
            if abs(nfe / len(idx) - ratio) > 1e-9:
                continue
            if np.ptp(heights[idx]) < min_thick:
                continue
            sub = stack[idx]
            cn = _fe_o_cn(sub)
            deficit = bulk_cn[idx] - cn
            score = (int(cn[sub.numbers == 26].min()), -int(deficit.sum()), -start)
            if best is None or score > best[0]:
                best = (score, idx)
        if best is not None:
            break
    if best is None:
        raise RuntimeError(f"no stoichiometric {n_layers}-plane window for {phase} {miller}")
    idx = best[1]
    h = heights[idx]
    thick = float(h.max() - h.min())
    cell = np.array([a, b, normal * (thick + vacuum)])
    pos = stack.positions[idx] - normal * (h.min() - vacuum / 2)
    slab = Atoms(numbers=stack.numbers[idx], positions=pos, cell=cell, pbc=True)
    slab.wrap()
    # Rotate to a standard frame (a along x, normal along z) for readability.
    slab.set_cell(slab.cell.standard_form()[0], scale_atoms=True)
    surf = bulk_cn[idx] > _fe_o_cn(slab)
    na, nb = _in_plane_repeat(slab, target_fe)
    slab = slab.repeat((na, nb, 1))
    surf = np.tile(surf, na * nb)
    fe = slab.numbers == 26
    facet = "".join(str(m) for m in miller)
    s = Slab(slab, phase, facet, 0,
             surface_fe=[int(i) for i in np.where(fe & surf)[0]],
             inner_fe=[int(i) for i in np.where(fe & ~surf)[0]])
    s.parent = s.id
    return s


def _in_plane_repeat(slab: Atoms, target_fe: int) -> tuple[int, int]:
    """In-plane repetition giving ~target_fe Fe sites on a not-too-elongated cell."""
    nfe = int((slab.numbers == 26).sum())
    la, lb = np.linalg.norm(slab.cell[0]), np.linalg.norm(slab.cell[1])
    best = None
    for na in range(1, 5):
        for nb in range(1, 5):
            n = nfe * na * nb
            aspect = max(la * na, lb * nb) / min(la * na, lb * nb)
            score = (n < 16, abs(np.log(n / target_fe)) + 0.3 * np.log(aspect))
            if best is None or score < best[0]:
                best = (score, (na, nb))
    return best[1]


def _seed_key(atoms: Atoms) -> str:
    """What the rattle seeds are drawn from: the SHA-1 digest slabs were named by until
    2026-12, kept so the embedded set's rattled copies regenerate as they were. Not an id
    (that is :func:`xane3.data.identity.structure_id`)."""
    h = hashlib.sha1()
    h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    for arr in (atoms.positions, atoms.cell.array):
        h.update(np.round(np.asarray(arr, dtype=np.float64), 4).tobytes())
    return h.hexdigest()[:16]


def rattle(parent: Slab, k: int) -> Slab:
    """The k-th seeded rattled copy of a parent slab.

    Interpretation of the issue's sigmas: position sigma s_p ~ U(0.01, 0.1) Å is the std
    of an isotropic Gaussian displacement of every atom; "lattice strain sigma"
    s_l ~ U(0.02, 0.1) is the std, in Å, of Gaussian noise on each Cartesian component
    of the two in-plane cell vectors (atoms follow the cell), i.e. ~0.2-1 % strain on a
    10 Å cell. Read as a fractional strain (2-10 %) it would compress Fe-O bonds by up to
    0.4 Å, far outside what a rattled minimum represents. The vacuum vector is untouched.
    """
    if k == 0:
        return parent
    seed = int(hashlib.sha1(f"{_seed_key(parent.atoms)}:{k}".encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    s_pos, s_cell = rng.uniform(0.01, 0.1), rng.uniform(0.02, 0.1)
    atoms = parent.atoms.copy()
    cell = atoms.cell.array.copy()
    cell[:2, :2] += rng.normal(0.0, s_cell, size=(2, 2))
    atoms.set_cell(cell, scale_atoms=True)
    atoms.positions += rng.normal(0.0, s_pos, size=atoms.positions.shape)
    return Slab(atoms, parent.phase, parent.facet, k, parent.parent,
                list(parent.surface_fe), list(parent.inner_fe), (float(s_pos), float(s_cell)))


def all_slabs(n_rattled: int = N_RATTLED, phases: tuple[str, ...] = PHASES,
              facets: tuple[tuple[int, int, int], ...] = FACETS) -> list[Slab]:
    """Every slab, ordered rattle-major: all unrattled parents first, then rattle 1, ...

    This order makes any prefix of the generation balanced over phases and facets.
    """
    parents = [make_slab(p, f) for p in phases for f in facets]
    return [rattle(p, k) for k in range(n_rattled + 1) for p in parents]


def layer_count(atoms: Atoms, tol: float = 0.3) -> int:
    """Number of atomic planes along z (slab in standard form)."""
    return len(_planes(atoms.positions[:, 2], tol))


def thickness_and_vacuum(atoms: Atoms) -> tuple[float, float]:
    """Slab thickness and vacuum gap along z (Å)."""
    z = atoms.positions[:, 2]
    thick = float(z.max() - z.min())
    return thick, float(atoms.cell[2, 2] - thick)
